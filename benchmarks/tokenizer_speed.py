"""Tokenizer encoding speed on this machine: offline and streaming, in multiples of real time.

    python benchmarks/tokenizer_speed.py [--tokenizer DIR] [--seconds 10] [--repeat 5]

Uses the shipped tokenizer if there is one, else a randomly initialised one of the default size
(the speed does not depend on the weights).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from aqaa.tokenizer import DualCodebookTokenizer
from aqaa.tokenizer.phonemes import PhonemeVocab
from aqaa.train.tokenizer import TokenizerTrainConfig, make_config


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    try:
        tok = DualCodebookTokenizer.load(a.tokenizer)
        which = "trained"
    except FileNotFoundError:
        vocab = PhonemeVocab(["<blank>", *"abcdefghijklmnopqrstuvwxyz"])
        tok = DualCodebookTokenizer(make_config(TokenizerTrainConfig(data="", out=""), vocab))
        which = "random (default size)"
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(int(a.seconds * 16000)) * 0.1).astype(np.float32)
    x = x / np.abs(x).max() * 0.999
    tok.encode_waveform(x)  # warm-up
    t = time.perf_counter()
    for _ in range(a.repeat):
        tok.encode_waveform(x)
    offline = (time.perf_counter() - t) / a.repeat
    t = time.perf_counter()
    chunk = 1920  # 120 ms
    for _ in range(a.repeat):
        s = tok.stream(gain=1.0)
        for i in range(0, len(x), chunk):
            s.push(x[i : i + chunk])
        s.flush()
    stream = (time.perf_counter() - t) / a.repeat
    params = sum(
        p.numel()
        for m in (tok.linguistic.encoder, tok.semantic.encoder, tok.semantic.pre_q)
        for p in m.parameters()
    )
    print(f"tokenizer: {which}, {params / 1e6:.1f}M encoder parameters, {a.threads} threads")
    print("| mode | seconds of audio | wall (s) | × real time |")
    print("|---|---|---|---|")
    print(f"| offline | {a.seconds:.0f} | {offline:.3f} | {a.seconds / offline:.0f} |")
    print(
        f"| streaming, 120 ms pushes | {a.seconds:.0f} | {stream:.3f} | {a.seconds / stream:.0f} |"
    )


if __name__ == "__main__":
    main()
