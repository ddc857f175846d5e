"""``hydra/launcher=slurm``: the composed launcher submits through submitit's real sbatch writer (with a
fake ``sbatch`` on PATH that keeps the script) and asks for what the config says: nodes, one task per GPU,
the partition, the time limit, the pre-emption warning; the run folder does not depend on the clock."""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
COMMAND = ["hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.account=lab", "hydra.launcher.nodes=2",
           "experiment=ns2/paper", "trainer.devices=8", "trainer.num_nodes=2", "run_name=ns2_paper", "resume=true"]


def composed(tmp_path: Path, overrides: list[str]):
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
            return compose("train", [f"paths.root_dir={tmp_path}", *overrides], return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()


@pytest.fixture()
def fake_slurm(tmp_path, monkeypatch):
    """``srun`` and ``sbatch`` that do nothing but keep the submitted script; jobs 'finish' at once."""
    import submitit.core.core as core

    bin_dir, kept = tmp_path / "bin", tmp_path / "submitted.sh"
    bin_dir.mkdir()
    (bin_dir / "srun").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "sbatch").write_text(f'#!/bin/sh\ncp "$1" "{kept}"\necho "Submitted batch job 4242"\n')
    for f in bin_dir.iterdir():
        f.chmod(f.stat().st_mode | stat.S_IEXEC)
    monkeypatch.delenv("SUBMITIT_PREEMPT_SIGNAL", raising=False)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(core.Job, "results", lambda self: [self.job_id])
    return kept


def test_two_nodes_of_eight_gpus(tmp_path, fake_slurm):
    cfg = composed(tmp_path, COMMAND)
    launcher = instantiate(cfg.hydra.launcher)
    launcher.setup(hydra_context=None, task_function=None, config=cfg)
    assert launcher.launch([COMMAND], initial_job_idx=0) == ["4242"]
    script = fake_slurm.read_text()
    sbatch = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(.*))?$", script, flags=re.M))
    assert sbatch["nodes"] == "2" and sbatch["gpus-per-node"] == "8" and sbatch["ntasks-per-node"] == "8"
    assert sbatch["partition"] == "gpu" and sbatch["account"] == "lab" and sbatch["cpus-per-task"] == "8"
    assert sbatch["time"] == "4320" and sbatch["signal"] == "USR2@120"  # submitit's; Preemption takes it too
    assert "--open-mode=append" in script or sbatch.get("open-mode") == "append"  # a requeued job appends its log
    assert re.search(r"srun .*submitit", script), script
    # one rank per task, as Lightning's SLURM environment expects
    assert cfg.trainer.devices * cfg.trainer.num_nodes == int(sbatch["nodes"]) * int(sbatch["ntasks-per-node"])
    # the job's folder comes from run_name: the same when the requeued job starts again
    sweep = Path(str(cfg.hydra.sweep.dir))
    assert sweep == tmp_path / "outputs" / "multirun" / "ns2_paper" / "ns2_paper"
    assert (sweep / ".submitit").is_dir()


def test_launcher_defaults_follow_the_gpus(tmp_path):
    cfg = composed(tmp_path, ["hydra/launcher=slurm", "hydra.launcher.gpus_per_node=4"])
    assert cfg.hydra.launcher.tasks_per_node == 4 and cfg.hydra.launcher.nodes == 1
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
