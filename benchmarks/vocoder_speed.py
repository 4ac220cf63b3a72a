"""Vocoder speed on this machine: offline real-time factor and streaming latency.

    python benchmarks/vocoder_speed.py [--vocoder DIR] [--seconds 10] [--repeat 3] [--threads 1,2]

Uses the shipped vocoder if there is one, else a randomly initialised one of the default size
(the speed does not depend on the weights). Prints, per thread count:

* offline RTF: decode time / audio duration for a ``--seconds`` utterance (median of repeats);
* first chunk: time from the moment the tokens of the first chunk (and its look-ahead) are
  pushed to the moment its audio is returned;
* stream RTF and the slowest chunk's compute time against the audio it covers (real-time margin);
* streamed vs offline: relative RMS difference, and the largest sample jump at a chunk seam
  against the median sample jump (a click would be far above it).

The machine's load average is printed too: other processes on the 2 cores slow every number.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import torch

from aqaa.tokenizer import ids
from aqaa.vocoder import Vocoder, seam_report


def _codes(seconds: float, seed: int = 0) -> np.ndarray:
    groups = max(1, round(seconds / ids.GROUP_SECONDS))
    rng = np.random.default_rng(seed)
    return ids.interleave(
        rng.integers(0, ids.LINGUISTIC_CODES, 2 * groups),
        rng.integers(0, ids.SEMANTIC_CODES, 3 * groups),
    )


def bench(voc: Vocoder, codes: np.ndarray, repeat: int) -> dict[str, float]:
    dur = voc.num_samples(len(codes)) / voc.sample_rate
    voc.decode(codes[:30])  # warm-up
    times, cpu = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        offline, _ = voc.decode(codes)
        times.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    cfg = voc.config.stream
    first_codes = 5 * -(-(cfg.first_chunk_pairs + cfg.lookahead_pairs) // 3)
    firsts, first_cpu, stream_totals, worst = [], [], [], []
    chunks: list[np.ndarray] = []
    for _ in range(repeat):
        dec = voc.stream_decoder()
        t, c = time.perf_counter(), time.process_time()
        chunks = dec.push(codes[:first_codes].tolist())
        firsts.append(time.perf_counter() - t)
        first_cpu.append(time.process_time() - c)
        slow = 0.0
        for i in range(first_codes, len(codes), 15):  # one LM audio slot at a time
            t1 = time.perf_counter()
            got = dec.push(codes[i : i + 15].tolist())
            if got:
                slow = max(slow, (time.perf_counter() - t1) / (len(got[-1]) / voc.sample_rate))
            chunks += got
        chunks += dec.flush()
        stream_totals.append(time.perf_counter() - t)
        worst.append(slow)
    streamed = np.concatenate(chunks)
    rel = float(np.sqrt(np.mean((streamed - offline) ** 2) / max(np.mean(offline**2), 1e-12)))
    seams = seam_report(chunks)
    return {
        "audio_s": dur,
        "offline_rtf": statistics.median(times) / dur,
        "offline_rtf_best": min(times) / dur,
        "first_chunk_ms": 1000 * statistics.median(firsts),
        "first_chunk_ms_best": 1000 * min(firsts),
        "offline_cpu_rtf": statistics.median(cpu) / dur,
        "first_chunk_cpu_ms": 1000 * statistics.median(first_cpu),
        "stream_rtf": statistics.median(stream_totals) / dur,
        "worst_chunk_rtf": statistics.median(worst),
        "stream_rel_rms_diff": rel,
        "max_seam_jump": seams["max_seam_jump"],
        "median_jump": seams["median_jump"],
        "seam_over_median": seams["seam_over_median"],
        "max_jump": seams["max_jump"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--vocoder", default=None)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", default="1,2", help="comma-separated torch thread counts")
    ap.add_argument("--steps", type=int, default=None, help="Euler steps (default: config)")
    a = ap.parse_args()
    try:
        voc = Vocoder.load(a.vocoder)
        which = "trained"
    except FileNotFoundError:
        torch.manual_seed(0)
        voc = Vocoder().eval()
        which = "random (default size)"
    if a.steps is not None:
        voc.config.flow.n_steps = a.steps
    counts = voc.param_counts()
    sc, fc = voc.config.stream, voc.config.flow
    print(
        f"vocoder: {which}; params {counts['total'] / 1e6:.2f}M (token encoder "
        f"{counts['token_encoder'] / 1e6:.2f}M, flow {counts['flow_estimator'] / 1e6:.2f}M, "
        f"mel vocoder {counts['mel_vocoder'] / 1e6:.2f}M); {fc.n_steps} Euler steps, "
        f"guidance {fc.cfg_strength}"
    )
    print(
        f"stream: first chunk {sc.first_chunk_pairs * 40} ms, then {sc.chunk_pairs * 40} ms; "
        f"look-ahead {sc.lookahead_pairs * 40} ms; left context {sc.left_context_pairs * 40} ms; "
        f"cross-fade {1000 * sc.crossfade / voc.sample_rate:.0f} ms"
    )
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    codes = _codes(a.seconds)
    rows = []
    for th in (int(x) for x in a.threads.split(",")):
        torch.set_num_threads(th)
        rows.append((th, bench(voc, codes, a.repeat)))
    print("median of repeats (best in brackets)")
    head = (
        f"{'threads':>7} {'audio s':>7} {'offline RTF':>15} {'first chunk ms':>16} "
        f"{'stream RTF':>10} {'worst chunk RTF':>15} {'stream≠offline':>14} {'seam/median jump':>16}"
    )
    print(head)
    print("-" * len(head))
    for th, r in rows:
        print(
            f"{th:>7} {r['audio_s']:>7.2f} {r['offline_rtf']:>7.3f} ({r['offline_rtf_best']:.3f}) "
            f"{r['first_chunk_ms']:>7.1f} ({r['first_chunk_ms_best']:5.1f}) "
            f"{r['stream_rtf']:>10.3f} {r['worst_chunk_rtf']:>15.3f} "
            f"{100 * r['stream_rel_rms_diff']:>13.2f}% "
            f"{r['max_seam_jump']:>7.4f}/{r['median_jump']:.4f}"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for th, r in rows:
        if th == 1:  # one thread: its CPU time is what an otherwise idle core would take
            print(
                f"1 thread, CPU time (≈ wall time on an idle core): offline RTF "
                f"{r['offline_cpu_rtf']:.3f}, first chunk {r['first_chunk_cpu_ms']:.1f} ms"
            )
    print("targets (issue 4): offline RTF ≤ 0.2, first chunk ≤ 150 ms; stream RTF < 1 keeps up")


if __name__ == "__main__":
    main()
