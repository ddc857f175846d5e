"""``ns2 summary``: a prepared corpus's summary and parameter counts of the chosen codec / model."""
from __future__ import annotations

from pathlib import Path

import hydra
import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from ns2.cli.common import config_dir, count_parameters, one_line_errors


def format_counts(title: str, counts: dict[str, int]) -> str:
    width = max(map(len, counts))
    lines = [title]
    for name, n in counts.items():
        lines.append(f"  {name:<{width}}  {n:>13,d}  ({n / 1e6:.2f}M)")
    return "\n".join(lines)


def run_summary(cfg: DictConfig) -> dict:
    out: dict = {}
    manifest = Path(cfg.data.root) / "prepared" / "manifest.jsonl"
    if manifest.exists():
        from ns2.data.manifest import read_manifest, summarize

        out["data"] = summarize(read_manifest(manifest))
        print(f"corpus {cfg.data.name}: {out['data']}")
    else:
        print(f"corpus {cfg.data.name}: not prepared ({manifest} missing; run `ns2 prep data={cfg.data.name.split('-')[0]}`)")
    for key in ("codec", "model"):
        node = cfg.get(key)
        if node is None:
            continue
        # a LightningModule config holds its network under ``net``; count that
        node = node.net if "net" in node and "_target_" in node.net else node
        with torch.device("meta"):
            module = instantiate(node)
        out[key] = count_parameters(module)
        print(format_counts(f"{key} {type(module).__name__} parameters:", out[key]))
    return out


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="summary")
def main(cfg: DictConfig) -> None:
    with one_line_errors("ns2 summary"):
        run_summary(cfg)


if __name__ == "__main__":  # python -m ns2.cli.summary
    main()
