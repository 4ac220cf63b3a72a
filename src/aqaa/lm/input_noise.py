"""Code noise on what the LM hears: the question's audio tokens as an unseen voice might write them.

Why: the evaluation asks in voices the tokenizer never heard, and on those its codes drift: tok5
loses 14-22% of phones on training voices but 37% on the reserved ones (`TRAINING.md`, session
11). An LM trained only on training-voice codes reads that drift as other words. With
`--input-noise P` each audio token of the *context* (the human turns and the ASR input: never a
token the loss trains, never one the loss predicts) is swapped with probability P for a near code:

- a linguistic code for one of its `k` nearest k-means centroids: the tokenizer's own geometry,
  the codes a frame lands on when the voice moves it a little;
- a semantic code for the neighbouring FSQ cell: one digit stepped by ±1 (`aqaa.tokenizer.fsq`).

With `--answer-noise Q` the answer's own audio tokens are swapped the same way, with probability
Q, *as inputs only*: the loss still predicts the true next code. That is the exposure-bias remedy
of autoregressive TTS: at answer time the LM reads its own sampled codes (its teacher-forced draws
already differ from the truth at about half the linguistic positions, `TRAINING.md` session 17),
so it should learn to say the next code right after a wrong one.

The noise of an example is seeded by the example's own tokens, so it is the same however a batch
is split over processes and micro-batches, and the same again after a resume.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import torch

from aqaa.lm.format import KIND_AUDIO, KIND_CONTEXT
from aqaa.tokenizer.ids import LINGUISTIC_CODES, SEMANTIC_CODES


def nearest_codes(centroids: torch.Tensor, k: int) -> torch.Tensor:
    """(N, D) centroids → (N, k) indices of each centroid's k nearest *other* centroids (L2)."""
    if not 1 <= k < len(centroids):
        raise ValueError(f"k must be in [1, {len(centroids)}), got {k}")
    c = centroids.float()
    dist = torch.cdist(c, c)
    dist.fill_diagonal_(float("inf"))
    return dist.topk(k, dim=1, largest=False).indices


def fsq_step(codes: torch.Tensor, levels: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Each FSQ code moved to a neighbouring cell: one random digit ±1 (inward at the edges)."""
    lv = torch.tensor(levels)
    basis = torch.cumprod(torch.tensor([1, *levels[:-1]]), 0)
    digit = torch.randint(len(levels), codes.shape, generator=gen)
    step = torch.randint(2, codes.shape, generator=gen) * 2 - 1
    value = (codes // basis[digit]) % lv[digit]
    moved = value + step
    moved = torch.where((moved < 0) | (moved >= lv[digit]), value - step, moved)
    return codes + (moved - value) * basis[digit]


@dataclass(frozen=True)
class InputNoise:
    """Swaps context audio tokens for near codes (see the module doc)."""

    p: float
    #: (1024, k): the nearest other linguistic centroids of each code
    neighbours: torch.Tensor
    #: the semantic FSQ levels; their product is the semantic codebook size
    levels: tuple[int, ...]
    audio_base: int
    seed: int = 0
    #: chance of a swap of each trained audio token, as an input only (the target stays true)
    answer_p: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.p < 1.0 and 0.0 <= self.answer_p < 1.0 and self.p + self.answer_p):
            raise ValueError(
                f"input and answer noise must be in [0, 1), not both 0; got {self.p}, {self.answer_p}"
            )
        if self.neighbours.shape[0] != LINGUISTIC_CODES:
            raise ValueError(
                f"need neighbours of {LINGUISTIC_CODES} codes, got {self.neighbours.shape}"
            )
        if torch.tensor(self.levels).prod() != SEMANTIC_CODES:
            raise ValueError(f"FSQ levels {self.levels} do not make {SEMANTIC_CODES} codes")

    @classmethod
    def from_tokenizer(
        cls,
        directory: str | None,
        p: float,
        audio_base: int,
        k: int = 4,
        seed: int = 0,
        data_tokenizer: str | None = None,
        answer_p: float = 0.0,
    ) -> InputNoise:
        """Neighbours from a saved tokenizer (None: the shipped one), which must be the one that
        wrote the shards (`data_tokenizer`, their fingerprint; None skips the check)."""
        from aqaa.tokenizer.dual import DualCodebookTokenizer

        tok = DualCodebookTokenizer.load(directory)
        if data_tokenizer not in (None, tok.fingerprint()):
            raise ValueError(
                f"--noise-tokenizer {tok.directory} is {tok.fingerprint()}, but the corpus was "
                f"tokenized with {data_tokenizer}: its code neighbours would be another's"
            )
        neighbours = nearest_codes(tok.linguistic.centroids, k)
        return cls(p, neighbours, tuple(tok.semantic.fsq.levels), audio_base, seed, answer_p)

    @classmethod
    def for_run(cls, cfg: Any, audio_base: int, data_tokenizer: str | None) -> InputNoise | None:
        """The noise of a stage config with `input_noise`, `answer_noise`, `noise_tokenizer` and
        `loop.seed` (pretraining, SFT); None when both noises are 0."""
        if not (cfg.input_noise or cfg.answer_noise):
            return None
        return cls.from_tokenizer(
            cfg.noise_tokenizer, cfg.input_noise, audio_base, seed=cfg.loop.seed,
            data_tokenizer=data_tokenizer, answer_p=cfg.answer_noise,
        )  # fmt: skip

    def example(self, ids: torch.Tensor, kinds: torch.Tensor) -> torch.Tensor:
        """One example's (L,) ids with its context (and answer) audio codes swapped; a new tensor."""
        gen = torch.Generator().manual_seed(
            zlib.crc32(ids.cpu().numpy().astype("int64").tobytes()) ^ self.seed
        )
        code = ids - self.audio_base
        audio = (code >= 0) & (code < LINGUISTIC_CODES + SEMANTIC_CODES)
        chance = torch.where(kinds == KIND_CONTEXT, self.p, 0.0)
        chance = torch.where(kinds == KIND_AUDIO, self.answer_p, chance)
        hit = audio & (torch.rand(ids.shape, generator=gen) < chance)
        ling = hit & (code < LINGUISTIC_CODES)
        sem = hit & (code >= LINGUISTIC_CODES)
        out = ids.clone()
        if ling.any():
            pick = torch.randint(self.neighbours.shape[1], (int(ling.sum()),), generator=gen)
            out[ling] = self.neighbours[code[ling], pick] + self.audio_base
        if sem.any():
            moved = fsq_step(code[sem] - LINGUISTIC_CODES, self.levels, gen)
            out[sem] = moved + LINGUISTIC_CODES + self.audio_base
        return out

    def batch(self, ids: torch.Tensor, kinds: torch.Tensor, lengths: list[int]) -> torch.Tensor:
        """(B, L) right-padded ids and kinds, and each row's length → ids with each row's audio
        swapped as `example` swaps it unpadded (the padding is left as it is)."""
        out = ids.clone()
        for row, n in enumerate(lengths):
            out[row, :n] = self.example(ids[row, :n], kinds[row, :n])
        return out
