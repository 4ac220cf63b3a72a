"""Streaming decode: audio chunks while the tokens are still being written.

Units: a *pair* is one 25 Hz token step (40 ms, 2 mel frames, 960 samples at 24 kHz); only whole
120 ms groups (3 pairs) of tokens are used. Chunk ``k`` covers pairs ``[e_k, e_{k+1})`` and is
decoded, once ``lookahead_pairs`` more pairs have arrived, on the *window*
``[e_k − left_context_pairs, e_{k+1} + lookahead_pairs)`` by exactly the offline code path
(:meth:`aqaa.vocoder.model.Vocoder.synthesize`), with the flow's noise taken from the same
absolute-frame noise as the offline decode. The window's samples for the chunk are emitted; the
``crossfade`` samples just after the chunk (computed with less look-ahead) are kept and blended
with a raised-cosine fade into the start of the next chunk, which is computed with full context.
The concatenated chunks have exactly the length of the offline decode.

Every block of the model is local (band attention, small kernels, per-frame norms), so a window
with enough context reproduces the offline output exactly; the flow's Euler steps compound the
receptive field, so with the default context the stream differs slightly near chunk edges.
Measured (``tests/test_vocoder.py``, ``benchmarks/vocoder_speed.py``, random weights):

* context covering the receptive field (tiny model, 30 pairs left, 12 ahead): max abs difference
  to the offline decode ≤ 1e-5 (float rounding);
* default config: relative RMS difference ≈ 2–3% (tested bound 10%), and no sample jump at a
  seam exceeds the largest sample jump of the offline audio (no clicks).

Chunk boundaries depend only on how many whole groups have arrived, so the output does not
depend on how the codes are split into ``push`` calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from aqaa.tokenizer import ids
from aqaa.vocoder.tokens import regroup

if TYPE_CHECKING:
    from aqaa.vocoder.model import Vocoder


@dataclass
class StreamConfig:
    first_chunk_pairs: int = 6  # 240 ms: the first chunk is small, for a low latency
    chunk_pairs: int = 9  # 360 ms: one LM audio slot of 15 tokens
    lookahead_pairs: int = 3  # 120 ms of tokens after a chunk before it is decoded
    left_context_pairs: int = 9  # 360 ms of already-emitted tokens re-read as context
    crossfade: int = 960  # samples (40 ms at 24 kHz)

    def check(self, samples_per_pair: int) -> None:
        if min(self.first_chunk_pairs, self.chunk_pairs, self.lookahead_pairs) < 1:
            raise ValueError("chunk and look-ahead sizes must be at least one pair")
        if self.left_context_pairs < 0 or self.crossfade < 0:
            raise ValueError("left context and cross-fade must be non-negative")
        limit = samples_per_pair * min(
            self.lookahead_pairs, self.first_chunk_pairs, self.chunk_pairs
        )
        if self.crossfade > limit:
            raise ValueError(f"crossfade ({self.crossfade}) must not exceed {limit} samples")


def _fade(n: int) -> np.ndarray:
    """Raised-cosine fade-in of ``n`` samples (the fade-out is ``1 − fade``)."""
    return (0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)).astype(np.float32)


class StreamDecoder:
    """Incremental decoder: :meth:`push` codes as they arrive, :meth:`flush` at the end.

    Both return the audio chunks (float32 arrays) that became ready.
    """

    def __init__(
        self,
        vocoder: Vocoder,
        seed: int = 0,
        n_steps: int | None = None,
        cfg_strength: float | None = None,
        config: StreamConfig | None = None,
    ) -> None:
        self.voc = vocoder
        self.cfg = config or vocoder.config.stream
        self.spp = vocoder.samples_per_pair
        self.cfg.check(self.spp)
        self.seed, self.n_steps, self.cfg_strength = seed, n_steps, cfg_strength
        self._pending: list[int] = []
        self._ling = np.zeros(0, dtype=np.int64)
        self._sem = np.zeros(0, dtype=np.int64)
        self._emitted = 0  # pairs whose audio has been emitted
        self._tail: np.ndarray | None = None
        self._done = False

    @property
    def pairs(self) -> int:
        return len(self._sem)

    def push(self, codes: Iterable[int]) -> list[np.ndarray]:
        if self._done:
            raise RuntimeError("the stream was flushed: start a new StreamDecoder")
        self._pending.extend(int(c) for c in codes)
        whole = len(self._pending) - len(self._pending) % ids.GROUP_SIZE
        if whole:
            ling, sem = regroup(np.asarray(self._pending[:whole], dtype=np.int64))
            self._ling = np.concatenate([self._ling, ling])
            self._sem = np.concatenate([self._sem, sem])
            del self._pending[:whole]
        out = []
        while True:
            size = self.cfg.first_chunk_pairs if self._emitted == 0 else self.cfg.chunk_pairs
            if self.pairs < self._emitted + size + self.cfg.lookahead_pairs:
                return out
            out.append(self._emit(self._emitted + size, final=False))

    def flush(self) -> list[np.ndarray]:
        """Decode what remains (an incomplete tail group is dropped)."""
        self._done = True
        if self._emitted >= self.pairs:
            return []
        return [self._emit(self.pairs, final=True)]

    def _emit(self, end: int, final: bool) -> np.ndarray:
        start = self._emitted
        w0 = max(0, start - self.cfg.left_context_pairs)
        w1 = self.pairs if final else end + self.cfg.lookahead_pairs
        audio = self.voc.synthesize(
            self._ling[w0:w1],
            self._sem[w0:w1],
            offset=w0,
            seed=self.seed,
            n_steps=self.n_steps,
            cfg_strength=self.cfg_strength,
        )[1]
        a, b = (start - w0) * self.spp, (end - w0) * self.spp
        chunk = audio[a:b].copy()
        if self._tail is not None and len(self._tail):
            n = len(self._tail)
            fade = _fade(n)
            chunk[:n] = self._tail * (1 - fade) + chunk[:n] * fade
        xf = self.cfg.crossfade
        self._tail = None if final else audio[b : b + xf].copy()
        self._emitted = end
        return np.clip(chunk, -1.0, 1.0)


def stream_decode(
    vocoder: Vocoder,
    token_chunks: Iterable[Iterable[int]],
    seed: int = 0,
    n_steps: int | None = None,
    cfg_strength: float | None = None,
    config: StreamConfig | None = None,
) -> Iterator[np.ndarray]:
    """Yield audio chunks as the code chunks of ``token_chunks`` arrive (see the module doc)."""
    dec = StreamDecoder(vocoder, seed, n_steps, cfg_strength, config)
    for codes in token_chunks:
        yield from dec.push(codes)
    yield from dec.flush()


def seam_report(chunks: list[np.ndarray]) -> dict[str, float]:
    """Sample jumps ``|x[n] − x[n−1]|`` of concatenated chunks: at chunk seams vs everywhere.

    Returns the largest jump across a seam, the median and the 99.9th percentile of all jumps,
    and ``seam_over_median`` (a click shows as a seam jump far above the signal's own jumps).
    """
    x = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if len(x) < 2:
        return {"seams": 0, "max_seam_jump": 0.0, "median_jump": 0.0, "p999_jump": 0.0}
    jumps = np.abs(np.diff(x.astype(np.float64)))
    bounds = np.cumsum([len(c) for c in chunks])[:-1]
    bounds = bounds[(bounds > 0) & (bounds < len(x))]
    seam = float(jumps[bounds - 1].max()) if len(bounds) else 0.0
    med = float(np.median(jumps))
    return {
        "seams": len(bounds),
        "max_seam_jump": seam,
        "median_jump": med,
        "p999_jump": float(np.quantile(jumps, 0.999)),
        "max_jump": float(jumps.max()),
        "seam_over_median": seam / med if med > 0 else float("inf"),
    }
