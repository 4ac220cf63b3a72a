"""Shared fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run fastest on one thread (and far faster on a busy machine). A module asks
    for it with `pytestmark = pytest.mark.usefixtures("one_thread")`."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


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


def running_server(app):
    """Serve `app` on a free loopback port in a thread (the load test's helper)."""
    from aqaa.serve.loadtest import loopback_server

    return loopback_server(app)
