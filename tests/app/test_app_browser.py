"""The demo page in a real browser: headless Debian Chromium driven by Playwright.

Starts ``ns2 app`` (the same :func:`ns2.cli.app.run_app` the command runs) on 127.0.0.1 with a tiny
checkpoint, types text, uploads a prompt, clicks Synthesize and decodes the audio the page then holds
(Web Audio ``decodeAudioData`` in the page). A screenshot is kept under tests/artifacts/.

Skips only where no Chromium is installed (``apt-get install chromium``; ``.ci/run`` installs it);
with ``NS2_BROWSER_TEST=required`` (set by ``.ci/run``) a missing browser or package fails instead.
"""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
REQUIRED = os.environ.get("NS2_BROWSER_TEST") == "required"


def _need(ok: bool, reason: str) -> None:
    if not ok:
        if REQUIRED:
            pytest.fail(f"{reason} (NS2_BROWSER_TEST=required)")
        pytest.skip(reason)


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DECODE = """async ([href, rate]) => {
  const bytes = await (await fetch(href)).arrayBuffer();
  const ctx = new OfflineAudioContext(1, 1, rate);
  const buf = await ctx.decodeAudioData(bytes);
  const x = buf.getChannelData(0);
  let ss = 0, peak = 0;
  for (const v of x) { ss += v * v; peak = Math.max(peak, Math.abs(v)); }
  return {length: buf.length, sampleRate: buf.sampleRate, rms: Math.sqrt(ss / x.length), peak: peak,
          head: Array.from(x.slice(0, 400))};
}"""


def test_synthesize_in_a_real_browser(tiny_ckpt, clips, compose):
    chromium = _chromium()
    _need(chromium is not None, "no Chromium installed (Debian: apt-get install chromium)")
    try:
        import gradio  # noqa: F401
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        _need(False, f"the page's extra is not installed ({e}); pip install '.[app]'")
    import numpy as np

    from ns2.cli.app import run_app

    port = _free_port()
    cfg = compose("app", [f"ckpt={tiny_ckpt}", f"port={port}", "limits.max_seconds=10", "device=cpu"])
    page_app, url = run_app(cfg, block=False)
    try:
        assert url.startswith(f"http://127.0.0.1:{port}")  # loopback by default
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, headless=True, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1100})
                page.goto(url)
                page.wait_for_selector("#tts-run", timeout=60_000)
                page.fill("#tts-text textarea", "Hello there, how are you today?")
                # a prompt over the duration limit: the page says why and synthesizes nothing
                page.locator("#tts-prompt input[type=file]").set_input_files(str(clips["long"]))
                page.wait_for_selector("#tts-prompt audio", state="attached", timeout=30_000)
                page.click("#tts-run")
                page.get_by_text("long.wav is 40.0 s long; expected at most 10 s").wait_for(timeout=30_000)
                assert page.locator("#tts-out-0 a[download]").count() == 0
                # a good prompt
                page.locator("#tts-prompt button[aria-label='Clear']").click()
                page.locator("#tts-prompt input[type=file]").set_input_files(str(clips["ok"]))
                page.wait_for_selector("#tts-prompt audio", state="attached", timeout=30_000)
                page.click("#tts-run")
                link = page.wait_for_selector("#tts-out-0 a[download]", timeout=120_000)
                page.wait_for_selector("#tts-plot-0 img", timeout=30_000)
                href = link.get_attribute("href")
                decoded = page.evaluate(DECODE, [href, 16000])
                status = page.inner_text("#tts-status-0")
                ARTIFACTS.mkdir(exist_ok=True)
                shot = ARTIFACTS / "app_tts.png"
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot: {shot}")
            finally:
                browser.close()
    finally:
        page_app.close()

    # the same request in process: deterministic for the seed, so the page must hold exactly this audio
    from ns2.app.core import check_audio_file, synthesize_all
    from ns2.cli.app import limits_of, load_systems

    systems = load_systems(cfg.systems)
    out, = synthesize_all(systems, "Hello there, how are you today?", check_audio_file(clips["ok"], limits_of(cfg)))
    expected = len(out.wav)
    assert expected == sum(out.info["durations"]) * 200  # frames x hop of the tiny codec
    assert decoded["sampleRate"] == 16000 and decoded["length"] == expected
    assert decoded["rms"] > 1e-3 and decoded["peak"] > 1e-2
    np.testing.assert_allclose(np.asarray(decoded["head"]), out.wav[:400], atol=2e-4)  # 16-bit PCM of the same samples
    assert f"{expected / 16000:.2f} s at 16000 Hz" in status
