"""``ns2 <command> [hydra overrides]``: one command line, each command a Hydra app.

Each command lives in ``ns2/cli/<command>.py`` and owns a top config ``configs/<command>.yaml``,
so everything Hydra offers works per command: overrides, ``-m`` sweeps, ``--cfg job``, ``--help``.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys

COMMANDS: dict[str, str] = {
    "prep": "make or download a corpus and run the preparation stages (manifest, audio, phonemes, durations, F0, codes)",
    "train": "train any LightningModule from an experiment config (codec, aligner, ns2, ...)",
    "synth": "synthesize speech from text and a speech prompt with a trained checkpoint",
    "eval": "score systems on a test list: speaker similarity, WER, prosody, MOS proxies",
    "compare": "the paper's comparison on one list: ground truth, codec resynthesis, NS2 and baselines, paired CIs vs NS2",
    "summary": "print a prepared corpus's summary and codec/model parameter counts",
    "bench": "speed and memory benchmarks, written under experiments/",
    "app": "the demo page (Gradio) over checkpoints: text + prompt -> audio side by side, VC and SE tabs",
    "demo": "the end-to-end job on the embedded synthetic corpus (what `make demo` runs)",
}

USAGE = "usage: ns2 <command> [hydra overrides ...]   (ns2 <command> --help for a command's config)"


def print_help() -> None:
    print(USAGE)
    print("\ncommands:")
    width = max(map(len, COMMANDS))
    for name, text in COMMANDS.items():
        print(f"  {name:<{width}}  {text}")
    print("\nexamples:\n  ns2 prep data=synthetic data.size=mini\n  ns2 train experiment=codec/tiny trainer=cpu\n  ns2 summary codec=ns2_paper")


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print_help()
        return
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"ns2: unknown command {command!r}; expected one of {', '.join(COMMANDS)}", file=sys.stderr)
        raise SystemExit(2)
    module = importlib.import_module(f"ns2.cli.{command}")
    sys.argv = [f"ns2-{command}", *rest]
    # Launchers that start more ranks by re-running this process's command (Lightning's DDP subprocess
    # launcher) run `python -m <__main__.__spec__.name>`: make that the command's own module.
    import __main__

    __main__.__spec__ = importlib.util.find_spec(f"ns2.cli.{command}")
    module.main()


if __name__ == "__main__":
    main()
