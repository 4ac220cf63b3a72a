"""Audio-token ids and the 2 : 3 interleave (design §1.1).

Code space (what the LM adds `AUDIO_BASE` to): `N ∈ [0, 1024)` is linguistic code N,
`N ∈ [1024, 5120)` is semantic code `N − 1024`. Exactly 5,120 audio codes.

Interleave: every 120 ms group is `[l l s s s]` (2 linguistic at 16.67 Hz, 3 semantic at 25 Hz);
a tail that does not fill a group is dropped.
"""

from __future__ import annotations

import numpy as np

LINGUISTIC_CODES = 1024
SEMANTIC_CODES = 4096
AUDIO_CODES = LINGUISTIC_CODES + SEMANTIC_CODES
GROUP = (2, 3)  # linguistic, semantic tokens per 120 ms group
GROUP_SIZE = sum(GROUP)
GROUP_SECONDS = 0.12
TOKENS_PER_SECOND = GROUP_SIZE / GROUP_SECONDS  # 41.67


def _check(codes: np.ndarray, n: int, what: str) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 1:
        raise ValueError(f"{what} codes must be 1-D, got shape {codes.shape}")
    if len(codes) and (codes.min() < 0 or codes.max() >= n):
        raise ValueError(f"{what} codes must be in [0, {n}), got [{codes.min()}, {codes.max()}]")
    return codes


def interleave(linguistic: np.ndarray, semantic: np.ndarray) -> np.ndarray:
    """Codes in `[0, 5120)`: `[l l s s s]` per group, semantic offset by 1024, tail dropped."""
    ling = _check(linguistic, LINGUISTIC_CODES, "linguistic")
    sem = _check(semantic, SEMANTIC_CODES, "semantic")
    groups = min(len(ling) // GROUP[0], len(sem) // GROUP[1])
    out = np.empty((groups, GROUP_SIZE), dtype=np.int64)
    out[:, : GROUP[0]] = ling[: groups * GROUP[0]].reshape(groups, GROUP[0])
    out[:, GROUP[0] :] = sem[: groups * GROUP[1]].reshape(groups, GROUP[1]) + LINGUISTIC_CODES
    return out.reshape(-1)


def split(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of `interleave`: (linguistic codes, semantic codes without the 1024 offset)."""
    codes = _check(codes, AUDIO_CODES, "audio")
    if len(codes) % GROUP_SIZE:
        raise ValueError(
            f"an interleaved stream has a multiple of {GROUP_SIZE} tokens, got {len(codes)}"
        )
    g = codes.reshape(-1, GROUP_SIZE)
    ling, sem = g[:, : GROUP[0]].reshape(-1), g[:, GROUP[0] :].reshape(-1) - LINGUISTIC_CODES
    if len(ling) and ling.max() >= LINGUISTIC_CODES:
        raise ValueError("a linguistic slot holds a semantic code: the stream is not [l l s s s]")
    if len(sem) and sem.min() < 0:
        raise ValueError("a semantic slot holds a linguistic code: the stream is not [l l s s s]")
    return ling, sem


def is_linguistic(code: int) -> bool:
    return 0 <= code < LINGUISTIC_CODES


def is_semantic(code: int) -> bool:
    return LINGUISTIC_CODES <= code < AUDIO_CODES
