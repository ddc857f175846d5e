"""``ns2 compare``: the NaturalSpeech 2 paper's comparison on one test list, as one command.

``ns2 eval`` with ``configs/compare.yaml``: ground truth, the codec's resynthesis of it, NS2 and every
baseline checkpoint given, scored by the same metrics on the same items; the report's table holds SIM,
WER, the four pitch and four duration prosody gaps and the real-time factor per system, with paired
bootstrap CIs of every system against NS2 and a plot per metric::

    ns2 compare fallbacks=true system.ns2.path=<ns2 .ckpt> system.resynth.codec=<codec file>
    ns2 compare ... systems=[groundtruth,resynth,ns2,valle] system.valle.path=<valle .ckpt>
"""
from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from ns2.cli.common import config_dir
from ns2.cli.eval import expand_aliases, run


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="compare")
def _main(cfg: DictConfig) -> None:
    run(cfg, "ns2 compare")


def main() -> None:
    sys.argv = [sys.argv[0], *expand_aliases(sys.argv[1:])]
    _main()


if __name__ == "__main__":  # python -m ns2.cli.compare
    main()
