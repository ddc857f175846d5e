"""The stage runner (resume, fault tolerance, workers) and the preparation stages end to end."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
import soundfile as sf

from ns2.data.manifest import Utterance, read_manifest, write_manifest
from ns2.data.prepare import format_summary, prepare
from ns2.data.stages import (AudioStage, DurationsStage, Quarantine, StageContext, StageError, make_stage,
                             run_stage, split_options)
from ns2.utils.io import read_jsonl

SR = 22050
TEST_SYMBOLS = frozenset({"<pad>", "<sil>", "|", "h", "ə", "l", "oʊ", "w", "ɜː", "d", "ɑː", "ʌ", "s", "i"})


def harmonic(f0: float, sr: int, seconds: float, amp: float = 0.3) -> np.ndarray:
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 5))).astype(np.float32)


def utt_for(root: Path, uid: str, x: np.ndarray, sr: int, speaker: str = "s1", text: str = "hello world",
            **fields) -> Utterance:
    path = root / "corpus" / speaker / f"{uid}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x, sr, subtype="PCM_16")
    seconds = (x.shape[0]) / sr
    n = 4
    times = [[seconds * k / n, seconds * (k + 1) / n] for k in range(n)]
    base = dict(id=uid, audio=path.relative_to(root).as_posix(), sample_rate=sr, duration=seconds, speaker=speaker,
                text=text, phonemes=["h", "ə", "l", "oʊ"], word_index=[0, 0, 0, 0], phoneme_times=times)
    base.update(fields)
    return Utterance(**base)


def make_corpus(root: Path) -> dict[str, str | None]:
    """Good files plus one of each kind of bad file; returns {id: expected quarantine reason or None}."""
    utts, expect = [], {}
    for k, (spk, f0) in enumerate([("s1", 120.0), ("s1", 130.0), ("s2", 220.0), ("s2", 240.0)]):
        utts.append(utt_for(root, f"good{k}", harmonic(f0, SR, 0.8 + 0.1 * k), SR, speaker=spk,
                            kind="singing" if k == 3 else "speech", split="valid" if k == 1 else "train"))
        expect[f"good{k}"] = None
    bad = utt_for(root, "corrupt", harmonic(150, SR, 0.5), SR)
    bad.audio_path(root).write_bytes(b"\x00garbage, not a sound file" * 20)
    utts.append(bad)
    expect["corrupt"] = "unreadable audio"
    utts.append(utt_for(root, "silent", np.zeros(SR // 2, np.float32), SR))
    expect["silent"] = "silent"
    cut = utt_for(root, "truncated", harmonic(150, SR, 1.0), SR)
    data = cut.audio_path(root).read_bytes()
    cut.audio_path(root).write_bytes(data[: len(data) // 2])  # header still declares the full length
    utts.append(cut)
    expect["truncated"] = "truncated"
    utts.append(utt_for(root, "wrongrate", harmonic(150, 44100, 0.5), 44100))
    expect["wrongrate"] = "wrong rate"
    stereo = harmonic(150, SR, 0.5)
    utts.append(utt_for(root, "stereo", np.stack([stereo, stereo], axis=1), SR))
    expect["stereo"] = "not mono"
    utts.append(utt_for(root, "notext", harmonic(150, SR, 0.5), SR, text="   "))
    expect["notext"] = "empty text"
    write_manifest(root / "raw.jsonl", utts)
    return expect


@pytest.fixture()
def test_symbols(monkeypatch):
    from ns2.data.stages import durations, phonemes

    for module in (phonemes, durations):  # the two stages that check symbols
        monkeypatch.setattr(module, "symbol_set", lambda: TEST_SYMBOLS)


def test_prepare_quarantines_planted_bad_files(tmp_path, test_symbols):
    expect = make_corpus(tmp_path)
    summary = prepare(None, tmp_path, stages=["audio", "phonemes", "durations", "f0"], sample_rate=16000,
                      hop_length=200, expected_rates=[SR])
    prepared = tmp_path / "prepared"
    kept = {u.id: u for u in read_manifest(prepared / "manifest.jsonl")}
    assert sorted(kept) == sorted(k for k, v in expect.items() if v is None)
    quarantine = {q["id"]: q for q in read_jsonl(prepared / "quarantine.jsonl")}
    assert sorted(quarantine) == sorted(k for k, v in expect.items() if v is not None)
    for uid, q in quarantine.items():
        assert q["reason"].startswith(expect[uid]), (uid, q["reason"])
        assert q["stage"] == "audio" and q["audio"].startswith("corpus/")
    for u in kept.values():
        assert u.sample_rate == 16000 and u.frame_rate == 80.0
        info = sf.info(str(u.audio_path(prepared)))
        assert info.samplerate == 16000 and info.channels == 1
        assert u.num_frames == -(-info.frames // 200)
        assert sum(u.durations) == u.num_frames and len(u.durations) == len(u.phonemes)
        f0 = np.load(u.feature_path("f0", prepared))
        assert f0.shape == (u.num_frames,) and f0.dtype == np.float32
        assert u.audio.startswith("audio/corpus/") and u.extra["source_sample_rate"] == SR
    voiced = np.load(kept["good2"].feature_path("f0", prepared))
    assert np.median(voiced[voiced > 0]) == pytest.approx(220.0, rel=0.01)
    stats = json.loads((prepared / "f0_stats.json").read_text())
    assert stats["speakers"]["s2"]["mean"] == pytest.approx(np.log(230.0), abs=0.06)
    assert stats["speakers"]["s1"]["voiced_frames"] > 0
    assert summary["utterances"] == 4 and summary["quarantined"] == 6 and summary["singing"] == 1
    assert summary["speakers"] == 2 and summary["splits"]["valid"]["utterances"] == 1
    assert summary["quarantine_reasons"]["silent"] == 1
    assert json.loads((prepared / "summary.json").read_text())["utterances"] == 4
    assert "4 utterances" in format_summary(summary)
    # a re-run finds everything in the journals
    again = prepare(None, tmp_path, stages=["audio", "phonemes", "durations", "f0"], expected_rates=[SR])
    assert all(st["processed"] == 0 for st in again["stages"].values())
    assert again["utterances"] == 4 and again["quarantined"] == 6


def test_lenient_policy_resamples_and_downmixes(tmp_path):
    expect = make_corpus(tmp_path)
    prepare(None, tmp_path, stages=["audio"], expected_rates=[SR], strict_rate=False, strict_channels=False)
    utts = {u.id: u for u in read_manifest(tmp_path / "prepared" / "manifest.jsonl")}
    kept = set(utts)
    assert {"wrongrate", "stereo"} <= kept and "silent" not in kept and "good0" in kept
    assert utts["stereo"].extra["source_channels"] == 2 and utts["wrongrate"].extra["source_sample_rate"] == 44100
    assert "source_channels" not in utts["good0"].extra
    assert len(kept) == 6 and len(expect) == 10


def test_prepare_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="raw.jsonl"):
        prepare(None, tmp_path, stages=["audio"])
    make_corpus(tmp_path)
    with pytest.raises(StageError, match="unknown preparation options"):
        prepare(None, tmp_path, stages=["audio"], pitch_floor=50)
    with pytest.raises(StageError, match="unknown stages"):
        prepare(None, tmp_path, stages=["codes"])
    with pytest.raises(StageError, match="add the audio stage"):
        prepare(None, tmp_path, stages=["f0"])
    with pytest.raises(StageError, match="train the aligner first"):
        prepare(None, tmp_path, stages=["audio", "durations"], durations_source="aligner", expected_rates=[SR])
    with pytest.raises(StageError, match="textgrid_dir"):
        prepare(None, tmp_path, stages=["audio", "durations"], durations_source="textgrid", expected_rates=[SR])
    split_options(["audio", "f0"], {"pitch_floor": 50, "expected_rates": [1]})
    assert make_stage("f0", pitch_floor=50, expected_rates=[1]).pitch_floor == 50


class Interrupt(BaseException):
    """Stands for a kill / Ctrl-C in the middle of a run."""


class CountingStage:
    name: ClassVar[str] = "count"

    def __init__(self, fail_after: int | None = None, bad: str | None = None):
        self.calls: list[str] = []
        self.fail_after, self.bad = fail_after, bad

    def config(self) -> dict:
        return {}

    def process(self, utt: Utterance, ctx: StageContext) -> Utterance:
        if self.fail_after is not None and len(self.calls) >= self.fail_after:
            raise Interrupt()
        self.calls.append(utt.id)
        if utt.id == self.bad:
            raise ZeroDivisionError("boom\nsecond line")
        if utt.id.endswith("q"):
            raise Quarantine("asked to")
        return utt.replace(extra={"seen": True})


def plain_utts(n: int) -> list[Utterance]:
    return [Utterance(id=f"u{i}" + ("q" if i == 3 else ""), audio=f"a/{i}.wav", sample_rate=16000, duration=1.0,
                      speaker="s", text="x") for i in range(n)]


def test_resume_after_interrupt(tmp_path):
    ctx = StageContext(prepared=str(tmp_path / "prepared"), root=str(tmp_path))
    utts = plain_utts(10)
    stage = CountingStage(fail_after=4, bad="u5")
    with pytest.raises(Interrupt):
        run_stage(stage, utts, ctx, chunk_size=1)
    assert stage.calls == ["u0", "u1", "u2", "u3q"]
    journal = tmp_path / "prepared" / "stages" / "count.jsonl"
    assert len(read_jsonl(journal)) == 4
    with open(journal, "a") as f:
        f.write('{"id": "u4", "status": "ke')  # killed in the middle of a write
    stage = CountingStage(bad="u5")
    stats: dict = {}
    kept, quarantined = run_stage(stage, utts, ctx, chunk_size=1, stats=stats)
    assert stage.calls == [f"u{i}" for i in range(4, 10)]
    assert stats["processed"] == 6 and stats["skipped"] == 4
    assert [u.id for u in kept] == ["u0", "u1", "u2", "u4", "u6", "u7", "u8", "u9"]
    assert all(u.extra["seen"] for u in kept)
    reasons = {q["id"]: q["reason"] for q in quarantined}
    assert reasons == {"u3q": "asked to", "u5": "ZeroDivisionError: boom second line"}
    # nothing left to do; a changed input is redone alone
    stage = CountingStage(bad="u5")
    run_stage(stage, utts, ctx)
    assert stage.calls == []
    utts[7] = utts[7].replace(text="changed")
    run_stage(stage, utts, ctx)
    assert stage.calls == ["u7"]
    assert len(read_jsonl(tmp_path / "prepared" / "stages" / "count.jsonl")) == 10  # compacted


class CrashStage:
    """Kills its worker process on one item."""

    name: ClassVar[str] = "crash"

    def process(self, utt: Utterance, ctx: StageContext) -> Utterance:
        if utt.id == "u2":
            os._exit(3)
        return utt


def test_worker_processes_and_a_dying_worker(tmp_path):
    make_corpus(tmp_path)
    ctx = StageContext(prepared=str(tmp_path / "prepared"), root=str(tmp_path))
    raw = read_manifest(tmp_path / "raw.jsonl")
    utts = [u.replace(audio=os.path.relpath(tmp_path / u.audio, ctx.prepared)) for u in raw]
    kept, quarantined = run_stage(AudioStage(expected_rates=[SR]), utts, ctx, num_workers=2, chunk_size=2)
    assert sorted(u.id for u in kept) == ["good0", "good1", "good2", "good3"] and len(quarantined) == 6
    kept, quarantined = run_stage(CrashStage(), plain_utts(6), ctx, num_workers=2)
    assert sorted(u.id for u in kept) == ["u0", "u1", "u3q", "u4", "u5"]
    assert quarantined[0]["id"] == "u2" and "worker process died" in quarantined[0]["reason"]



class _PoolBrokenOnSubmit:
    """An in-process executor that breaks, like a real pool whose worker died, on the Nth submit."""

    submits = 0

    def __init__(self, max_workers=None, mp_context=None):
        self.broken = False

    def submit(self, fn, *args):
        from concurrent.futures import Future
        from concurrent.futures.process import BrokenProcessPool
        type(self).submits += 1
        if self.broken or type(self).submits == 3:
            self.broken = True
            raise BrokenProcessPool("a child process terminated abruptly")
        fut = Future()
        fut.set_result(fn(*args))
        return fut

    def shutdown(self, wait=True, cancel_futures=False):
        pass


def test_a_pool_that_breaks_between_submits_loses_no_item(tmp_path, monkeypatch):
    from ns2.data.stages import runner
    monkeypatch.setattr(runner, "ProcessPoolExecutor", _PoolBrokenOnSubmit)
    monkeypatch.setattr(_PoolBrokenOnSubmit, "submits", 0)
    ctx = StageContext(prepared=str(tmp_path / "prepared"), root=str(tmp_path))
    kept, quarantined = run_stage(CountingStage(bad="u5"), plain_utts(8), ctx, num_workers=2, chunk_size=1)
    assert [u.id for u in kept] == ["u0", "u1", "u2", "u4", "u6", "u7"]
    assert [q["id"] for q in quarantined] == ["u3q", "u5"]

TEXTGRID = '''File type = "ooTextFile"
Object class = "TextGrid"

xmin = 0 
xmax = {end} 
tiers? <exists> 
size = 2 
item []: 
    item [1]:
        class = "IntervalTier" 
        name = "words" 
        xmin = 0 
        xmax = {end} 
        intervals: size = 2 
        intervals [1]:
            xmin = 0 
            xmax = 0.4 
            text = "hello" 
        intervals [2]:
            xmin = 0.4 
            xmax = {end} 
            text = "" 
    item [2]:
        class = "IntervalTier" 
        name = "phones" 
        xmin = 0 
        xmax = {end} 
        intervals: size = 5 
        intervals [1]:
            xmin = 0 
            xmax = 0.1 
            text = "HH" 
        intervals [2]:
            xmin = 0.1 
            xmax = 0.2 
            text = "{vowel}" 
        intervals [3]:
            xmin = 0.2 
            xmax = 0.3 
            text = "L" 
        intervals [4]:
            xmin = 0.3 
            xmax = 0.4 
            text = "OW1" 
        intervals [5]:
            xmin = 0.4 
            xmax = {end} 
            text = "sp" 
'''


def test_textgrid_durations(tmp_path, test_symbols):
    root = tmp_path
    utts = [utt_for(root, f"t{k}", harmonic(150, 16000, 0.8), 16000, phoneme_times=None, phonemes=None,
                    word_index=None) for k in range(3)]
    write_manifest(root / "raw.jsonl", utts)
    tg = root / "mfa"
    (tg / "s1").mkdir(parents=True)
    (tg / "s1" / "t0.TextGrid").write_text(TEXTGRID.format(end=0.8, vowel="AH0"), encoding="utf-8")
    (tg / "t1.TextGrid").write_text(TEXTGRID.format(end=0.8, vowel="QQ"), encoding="utf-8")
    summary = prepare(None, root, stages=["audio", "durations"], durations_source="textgrid", textgrid_dir=tg)
    (u,) = read_manifest(root / "prepared" / "manifest.jsonl")
    assert u.id == "t0" and u.phonemes == ["h", "ə", "l", "oʊ", "<sil>"]
    assert u.durations == [8, 8, 8, 8, 32] and u.word_index == [0, 0, 0, 0, -1]
    reasons = {q["id"]: q["reason"] for q in read_jsonl(root / "prepared" / "quarantine.jsonl")}
    assert "no TextGrid" in reasons["t2"] and "'QQ' x1" in reasons["t1"]
    report = json.loads((root / "prepared" / "textgrid_report.json").read_text())
    assert report["unmapped_phones"] == {"QQ": 1}
    assert summary["quarantine_by_stage"] == {"durations": 2}


def test_durations_stage_checks_and_min_frames(tmp_path):
    ctx = StageContext(prepared=str(tmp_path), root=str(tmp_path))
    u = Utterance(id="a", audio="x.wav", sample_rate=16000, duration=0.5, speaker="s", text="t",
                  phonemes=["h", "|", "i"], phoneme_times=[[0, 0.2], [0.2, 0.2], [0.2, 0.5]], frame_rate=80.0,
                  num_frames=40)
    out = DurationsStage().process(u, ctx)
    assert out.durations == [16, 0, 24]
    assert DurationsStage(min_frames=1).process(u, ctx).durations == [16, 1, 23]
    with pytest.raises(Quarantine, match="no phoneme_times"):
        DurationsStage().process(u.replace(phoneme_times=None), ctx)


def test_phonemes_stage_with_the_text_front_end(tmp_path):
    from ns2.data.stages import PhonemesStage

    ctx = StageContext(prepared=str(tmp_path), root=str(tmp_path))
    base = dict(audio="x.wav", sample_rate=16000, duration=1.0, speaker="s")
    utts = [Utterance(id="ok", text="Hello, world!", **base),
            Utterance(id="emoji", text="Hello \U0001F600 world", **base),
            Utterance(id="given", text="hi", phonemes=["h", "ˈ", "aɪ"], **base),
            Utterance(id="badsym", text="hi", phonemes=["h", "QQ"], **base),
            Utterance(id="blank", text=" ", **base)]
    kept, quarantined = run_stage(PhonemesStage(), utts, ctx)
    by_id = {u.id: u for u in kept}
    assert sorted(by_id) == ["given", "ok"]
    ok = by_id["ok"]
    assert "|" in ok.phonemes and len(ok.word_index) == len(ok.phonemes)
    assert by_id["given"].phonemes == ["h", "ˈ", "aɪ"]
    reasons = {q["id"]: q["reason"] for q in quarantined}
    assert "U+1F600" in reasons["emoji"] or "\U0001F600" in reasons["emoji"]
    assert reasons["badsym"].startswith("phonemes not in the symbol table") and reasons["blank"] == "empty text"


def test_audio_outputs_are_reused_without_a_journal(tmp_path):
    make_corpus(tmp_path)
    prepare(None, tmp_path, stages=["audio"], expected_rates=[SR])
    prepared = tmp_path / "prepared"
    first = {u.id: u for u in read_manifest(prepared / "manifest.jsonl")}
    out = first["good0"].audio_path(prepared)
    stamp = out.stat().st_mtime_ns
    (prepared / "stages" / "audio.jsonl").unlink()
    summary = prepare(None, tmp_path, stages=["audio"], expected_rates=[SR])
    assert summary["stages"]["audio"]["processed"] == 10
    assert out.stat().st_mtime_ns == stamp  # not rewritten
    assert {u.id: u for u in read_manifest(prepared / "manifest.jsonl")} == first
    # a stricter policy still applies to reused outputs (the source header is checked again)
    summary = prepare(None, tmp_path, stages=["audio"], expected_rates=[16000])
    assert summary["utterances"] == 0 and summary["quarantine_reasons"]["wrong rate"] == 7
