"""Shared fixtures."""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A complete model directory: tokenizer/ (the shipped one), lm/ (tiny, random weights) and
    vocoder/ (tiny, random weights). It answers in babble, fast: for plumbing tests."""
    from aqaa.lm.data import synthetic_records
    from aqaa.lm.format import FormatConfig
    from aqaa.lm.model import build_model, save_checkpoint
    from aqaa.lm.vocab import train_vocab
    from aqaa.tokenizer.dual import DEFAULT_DIR as TOKENIZER_DIR
    from aqaa.vocoder.model import Vocoder, VocoderConfig

    root = tmp_path_factory.mktemp("model")
    recs = synthetic_records(8, seed=1, split="valid")
    texts = FormatConfig().fixed_texts()
    texts += [x for r in recs for t in r["turns"] for x in (t["human_text"], t["answer_text"])]
    vocab = train_vocab(texts, 300)
    save_checkpoint(build_model("tiny", vocab.size, seed=0), vocab, root / "lm")
    torch.manual_seed(0)
    Vocoder(VocoderConfig.tiny()).save(root / "vocoder")
    shutil.copytree(TOKENIZER_DIR, root / "tokenizer")
    return root


@contextlib.contextmanager
def running_server(app) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port in a thread; yields the base URL."""
    import httpx
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    th = threading.Thread(target=srv.run, daemon=True)
    th.start()
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    else:
        pytest.fail("the server did not start")
    try:
        yield url
    finally:
        srv.should_exit = True
        th.join(timeout=10)
