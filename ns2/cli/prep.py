"""``ns2 prep``: build a corpus (synthetic or a recipe), run the preparation stages, extract codec codes."""
from __future__ import annotations

import os

import hydra
from hydra.utils import instantiate
from omegaconf import DictConfig

from ns2.cli.common import config_dir, one_line_errors, require_settings, setup_logging


def codec_source(source: str | None) -> str | None:
    """``data.prep.codec`` as given, a release name, or a path made absolute against the launch directory."""
    from hydra.utils import to_absolute_path

    from ns2.codec.load import PRETRAINED

    if source is None or str(source).strip() == "":
        return None
    source = str(source)
    if source in PRETRAINED:
        return source
    return to_absolute_path(os.path.expanduser(source))


def run_prep(cfg: DictConfig) -> dict:
    """Build the corpus named by ``cfg.data`` and run ``cfg.data.prep``'s stages (then the codes of
    ``data.prep.codec`` when set); return the summary."""
    from ns2.data.prepare import format_summary, prepare

    log = setup_logging()
    data = cfg.data
    codec = codec_source(data.prep.get("codec"))
    corpus = instantiate(data.corpus) if data.get("corpus") is not None else None
    summary = prepare(
        corpus,
        data.root,
        stages=list(data.prep.stages),
        sample_rate=data.sample_rate,
        hop_length=data.hop_length,
        num_workers=data.prep.num_workers,
        durations_source=data.prep.durations_source,
        textgrid_dir=data.prep.get("textgrid_dir"),
        language=data.language,
        codec=codec,
        codes_options=data.prep.get("codes"),
        **(data.prep.get("options") or {}),
    )
    log.info("prepared %s", data.root)
    print(format_summary(summary))
    return summary


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="prep")
def main(cfg: DictConfig) -> None:
    require_settings(cfg, "ns2 prep")
    with one_line_errors("ns2 prep"):
        run_prep(cfg)


if __name__ == "__main__":  # python -m ns2.cli.prep
    main()
