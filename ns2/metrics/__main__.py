"""``python -m ns2.metrics {list,download,record,verify} [NAMES]``: manage the metric backbones."""
from ns2.metrics.backbones import main

raise SystemExit(main())
