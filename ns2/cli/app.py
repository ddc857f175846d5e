"""``ns2 app``: the demo page (Gradio) over one or more checkpoints; see configs/app.yaml.

::

    ns2 app ckpt=my_voice.pt                     # serves http://127.0.0.1:7860
    ns2 app ckpt=a.ckpt +eval/system@systems.ns2_ft=ns2 systems.ns2_ft.path=ft.pt systems.ns2_ft.name=ns2_ft

The page binds 127.0.0.1 unless ``host=`` says otherwise; ``share=true`` asks Gradio for a public link.
"""
from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from ns2.cli.common import config_dir

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def load_systems(systems: Mapping[str, Any]) -> dict[str, Any]:
    """``{name: Synthesizer config}`` -> ``{name: Synthesizer}``; entries that are null or whose ``path``
    is null are left out. Raises ValueError (one line) naming the system that does not load."""
    from hydra.utils import instantiate

    out: dict[str, Any] = {}
    for name, spec in systems.items():
        if spec is None or ("path" in spec and spec["path"] in (None, "")):
            continue
        try:
            out[str(name)] = instantiate(spec)
        except Exception as e:  # noqa: BLE001 - Hydra wraps the system's own error
            cause = e.__cause__ or e
            raise ValueError(f"systems.{name}: {' '.join(str(cause).split())}") from None
    if not out:
        raise ValueError("no system to serve: pass ckpt=PATH (an NS2 checkpoint or exported .pt) or systems.<name>.path=PATH")
    return out


def limits_of(cfg: Mapping[str, Any]):
    from ns2.app.core import UploadLimits

    lim = dict(cfg.get("limits") or {})
    if "formats" in lim:
        lim["formats"] = tuple(lim["formats"])
    return UploadLimits(**lim)


def run_app(cfg: DictConfig | Mapping[str, Any], block: bool = True) -> tuple[Any, str]:
    """Load the systems of ``cfg`` (configs/app.yaml), build the page and serve it. -> (page, url)."""
    from ns2.app.ui import build_app, launch

    opt = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
    limits = limits_of(opt)
    systems = load_systems(opt.get("systems") or {})
    for name, s in systems.items():
        print(f"{name}: {s!r}")
    host = str(opt.get("host") or "127.0.0.1")
    if host not in LOOPBACK:
        print(f"ns2 app: serving on {host}: the page is reachable from other machines", file=sys.stderr)
    page = build_app(systems, limits, title=str(opt.get("title") or "ns2"))
    url = launch(page, host=host, port=opt.get("port"), share=bool(opt.get("share")), limits=limits, block=block)
    return page, url


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="app")
def _main(cfg: DictConfig) -> None:
    try:
        run_app(cfg)
    except ValueError as e:
        raise SystemExit(f"ns2 app: {' '.join(str(e).split())}") from None


def main() -> None:
    _main()


if __name__ == "__main__":
    main()
