"""Atomic writes: all or nothing, and ordinary file permissions."""
from __future__ import annotations

import os
import stat

import pytest

from ns2.utils.io import atomic_open, read_jsonl, sha256_file, write_json


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    path = tmp_path / "report.json"
    write_json(path, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(path) as f:
            f.write('{"half": ')
            raise RuntimeError("interrupted")
    assert path.read_text().startswith('{\n  "a": 1')
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]  # no temporary left behind


def test_written_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        write_json(tmp_path / "r.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "r.json").stat().st_mode) == 0o644


def test_torn_journal_tail_is_ignored_and_sha256(tmp_path):
    p = tmp_path / "j.jsonl"
    p.write_text('{"id": 1}\n{"id": 2}\n{"id": ')
    assert read_jsonl(p) == [{"id": 1}, {"id": 2}]
    (tmp_path / "x").write_bytes(b"abc")
    assert sha256_file(tmp_path / "x") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
