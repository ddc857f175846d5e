"""``ns2 eval``: score systems on the test lists of a protocol (see :mod:`ns2.eval.runner`, eval/README.md).

``protocol=<name>`` selects ``configs/eval/protocol/<name>.yaml`` (shorthand for Hydra's
``eval/protocol@protocol=<name>``); ``systems=[groundtruth,folder]`` picks systems configured under
``system.<name>``.
"""
from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from ns2.cli.common import config_dir, one_line_errors, setup_logging

ALIASES = {"protocol=": "eval/protocol@protocol="}


def expand_aliases(argv: list[str]) -> list[str]:
    """``protocol=x`` -> ``eval/protocol@protocol=x``; everything else unchanged."""
    out = []
    for a in argv:
        for short, full in ALIASES.items():
            if a.startswith(short):
                a = full + a[len(short):]
        out.append(a)
    return out


def run(cfg: DictConfig, command: str = "ns2 eval") -> None:
    """Score, then report (``ns2 eval`` and ``ns2 compare`` differ only in their top config)."""
    from ns2.eval.runner import run_eval
    from ns2.metrics import BackboneChecksumError, MissingBackboneError

    log = setup_logging()
    with one_line_errors(command):
        try:
            result = run_eval(cfg)
        except MissingBackboneError as e:
            raise SystemExit(f"{command}: {e} (fallbacks=true)") from None
        except BackboneChecksumError as e:
            raise SystemExit(f"{command}: {e}") from None
    if "report" in result:
        log.info("report: %s", result["report"]["markdown"])


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
def _main(cfg: DictConfig) -> None:
    run(cfg)


def main() -> None:
    sys.argv = [sys.argv[0], *expand_aliases(sys.argv[1:])]
    _main()


if __name__ == "__main__":  # python -m ns2.cli.eval
    main()
