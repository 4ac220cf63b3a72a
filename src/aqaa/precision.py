"""Whether bf16 autocast pays off on this CPU.

The design (§6) measured bf16 matmuls at 2.4× fp32 on a CPU with native bf16 (AVX512-BF16/AMX).
Measured on the AVX2-only AMD EPYC hosts this project also runs on: a 1024² bf16 matmul takes
8.7 s against 0.11 s in fp32 (80× slower), because bf16 is emulated. So every trainer asks here,
with `auto` as the default: a ~50 ms timing of both precisions decides.
"""

from __future__ import annotations

import time
from functools import lru_cache

import torch


@lru_cache(maxsize=1)
def bf16_is_fast() -> bool:
    """True if a bf16 matmul beats fp32 here (native AVX512-BF16/AMX); measured in ~50 ms."""
    a = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
    b = a.bfloat16()

    def best(x: torch.Tensor) -> float:
        times = []
        for _ in range(3):
            t = time.perf_counter()
            x @ x
            times.append(time.perf_counter() - t)
        return min(times)

    best(a), best(b)  # warm up
    return best(b) < best(a)


def use_bf16(setting: str | bool) -> bool:
    """`on`/True forces bf16, `off`/False disables it, `auto` measures."""
    if isinstance(setting, bool):
        return setting
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"bf16 must be auto, on or off, got {setting!r}")
    return setting == "on" or (setting == "auto" and bf16_is_fast())
