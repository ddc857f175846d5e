"""`ns2 eval` sharded over two real processes, launched the way torchrun / srun launch them
(``RANK``/``WORLD_SIZE`` in the environment, with or without a gloo process group): every item is
scored once, by exactly one rank, and one report gathers them."""
from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from eval_helpers import eval_conf

from ns2.eval.records import read_records
from ns2.utils.io import read_jsonl

HERE = Path(__file__).resolve().parent

RANK_SCRIPT = r"""
import json, os, sys
import torch.distributed as dist
from ns2.eval.runner import run_eval
import eval_helpers  # registers the cheap metric
conf = json.loads(open(sys.argv[1]).read())
if sys.argv[2] == "gloo":
    dist.init_process_group("gloo")
res = run_eval(conf)
res["had_report"] = "report" in res
res.pop("report", None)
print("RESULT " + json.dumps(res))
if dist.is_initialized():
    dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(conf_file: Path, world: int, backend: str) -> list[dict]:
    port = str(free_port())
    procs = []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port, "OMP_NUM_THREADS": "1",
               "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent / "data"), os.environ.get("PYTHONPATH", "")])}
        procs.append(subprocess.Popen([sys.executable, "-c", RANK_SCRIPT, str(conf_file), backend], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    for rank, p in enumerate(procs):
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, f"rank {rank} failed:\n{err[-3000:]}"
        (line,) = [ln for ln in out.splitlines() if ln.startswith("RESULT ")]
        results.append(json.loads(line[len("RESULT "):]))
    return results


@pytest.mark.parametrize("backend", ["gloo", "env"])
def test_two_processes_score_disjoint_shards_and_one_report(mini, mini_list, tmp_path, backend):
    out = tmp_path / "run"
    conf = eval_conf(mini, mini_list, out, systems=["scripted"],
                     system_defs={"scripted": {"_target_": "eval_helpers.ScriptedSystem", "root": str(mini)}})
    conf_file = tmp_path / "conf.json"
    conf_file.write_text(json.dumps(conf))
    results = launch(conf_file, 2, backend)

    assert [r["scored"] for r in results] == [6, 6]
    folder = out / "records" / "synthetic-mini"
    ids = [{r["id"] for r in read_jsonl(folder / f"scripted.shard-{i:02d}-of-02.jsonl")} for i in range(2)]
    assert len(ids[0]) == len(ids[1]) == 6 and not ids[0] & ids[1]
    recs, _ = read_records(folder, "scripted")
    assert len(recs) == 12 and all(r["status"] == "ok" for r in recs.values())
    if backend == "gloo":  # a process group: a barrier, then rank 0 alone writes the report
        assert [r["complete"] for r in results] == [True, True]
        assert [r["had_report"] for r in results] == [True, False]
    else:  # no process group: whichever rank finishes last finds every record and writes it
        assert any(r["had_report"] for r in results)
    with open(out / "summary.csv", newline="") as f:
        (row,) = [r for r in csv.DictReader(f) if r["metric"] == "test_loudness_db"]
    assert (row["n"], row["n_failed"], row["n_items"]) == ("12", "0", "12")
    prov = json.loads((out / "provenance.json").read_text())
    assert sorted(tuple(r["shard"]) for r in prov["runs"]) == [(0, 2), (1, 2)]
