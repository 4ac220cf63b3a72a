"""The voice web page end to end: headless Chromium (its fake microphone plays
`examples/question.wav`) talks hands-free to a live uvicorn server over `WS /v1/realtime`, and the
page plays the spoken answer (tiny random model: plumbing, not quality)."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import running_server

from aqaa.audio import load_audio

ROOT = Path(__file__).resolve().parents[1]
QUESTION = ROOT / "examples" / "question.wav"
CHROMIUM = Path("/usr/bin/chromium")
TURN_TIMEOUT_S = 90.0


def _chromium() -> Path:
    """Debian's Chromium, installed once with apt-get when missing."""
    if not CHROMIUM.exists() and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], capture_output=True,
                       timeout=900, check=False, env={"DEBIAN_FRONTEND": "noninteractive",
                                                      "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})  # fmt: skip
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing and `apt-get install chromium` did not provide it")
    return CHROMIUM


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path):
    from aqaa.engine import Engine
    from aqaa.serve.app import create_app

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    engine = Engine.load(tiny_model_dir)  # the shipped tokenizer, a tiny random LM and vocoder
    with running_server(create_app(engine)) as url:
        yield url
    torch.set_num_threads(threads)


@pytest.fixture
def mic_wav(tmp_path: Path) -> Path:
    """The question as Chromium's fake microphone wants it: plain 16-bit PCM, mono, 48 kHz,
    with silence around it so that the server's VAD sees the end of the turn."""
    x = load_audio(QUESTION, target_rate=48000)
    x = np.concatenate([np.zeros(24000, np.float32), x, np.zeros(72000, np.float32)])
    path = tmp_path / "mic.wav"
    sf.write(path, x, 48000, subtype="PCM_16")
    return path


def test_page_answers_a_spoken_question_hands_free(
    server: str, mic_wav: Path, tmp_path: Path
) -> None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install playwright)")
    chromium = _chromium()
    args = [
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={mic_wav}%noloop",
        "--autoplay-policy=no-user-gesture-required",
    ]  # fmt: skip
    console: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), headless=True, args=args)
        try:
            page = browser.new_page(viewport={"width": 900, "height": 1000})
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
            t0 = time.monotonic()
            page.goto(f"{server}/?handsfree=1")
            page.wait_for_function("window.aqaaStats && window.aqaaStats.connected", timeout=20000)
            try:
                page.wait_for_function(
                    "window.aqaaStats.turnsDone >= 1 || window.aqaaStats.errors.length > 0",
                    timeout=TURN_TIMEOUT_S * 1000,
                )
                # the last chunks may still be playing when response.done arrives
                page.wait_for_function(
                    "window.aqaaStats.errors.length > 0 || window.aqaaStats.audioChunksPlayed"
                    " >= window.aqaaStats.audioChunksReceived",
                    timeout=60000,
                )
            except Exception as e:
                stats = page.evaluate("window.aqaaStats")
                status = page.inner_text("#status")
                raise AssertionError(
                    f"no answer: {stats} status={status!r} console={console}"
                ) from e
            elapsed = time.monotonic() - t0
            stats = page.evaluate("window.aqaaStats")
            answer = page.inner_text("#answer").strip()
            latency = page.inner_text("#latency")
            history = page.inner_text("#history")
            shot = tmp_path / "page.png"
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()

    print(f"turn done in {elapsed:.1f} s: {stats['lastTimings']}")
    assert stats["errors"] == [], (stats["errors"], console)
    assert stats["turnsDone"] >= 1
    assert stats["audioChunksReceived"] >= 1
    assert stats["audioChunksPlayed"] >= 1 and stats["samplesPlayed"] > 0, stats
    assert stats["textDeltas"] >= 1 or answer, stats
    assert "ms" in latency, latency
    assert "spoken question" in history
    assert stats["lastTimings"] and stats["lastTimings"]["generated_tokens"] > 0

    saved = ROOT / "runs" / "browser" / "page.png"
    saved.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, saved)
    assert shot.stat().st_size > 0 and saved.exists() and saved.stat().st_size > 0
