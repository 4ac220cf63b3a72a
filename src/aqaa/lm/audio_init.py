"""Start the LM's audio-token embeddings from what the tokenizer knows about each code.

A fresh LM sees 5,120 audio ids as unrelated symbols and must learn from scratch that two
linguistic codes are the same phone said by two voices. The tokenizer already holds that geometry:
linguistic code `n` is a k-means centroid of the CTC-trained encoder (phonetically close codes are
close), and semantic code `m` is an FSQ point that the tokenizer's decoder reads through a linear
input layer. `init_audio_embeddings` maps both into the LM's embedding space with one fixed random
projection (Johnson–Lindenstrauss: distances are kept up to a small distortion), scales them to the
embedding's own initial spread, and mixes in some fresh noise so the rows keep full rank.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from aqaa.tokenizer.ids import AUDIO_CODES, LINGUISTIC_CODES

if TYPE_CHECKING:
    from aqaa.tokenizer.dual import DualCodebookTokenizer


def audio_code_vectors(tokenizer: DualCodebookTokenizer | str | Path | None = None) -> torch.Tensor:
    """(5120, d) float32: linguistic centroids, then the semantic codes as the decoder reads them,
    each block centred and scaled to unit standard deviation. `tokenizer`: a loaded tokenizer or
    its directory (None: the shipped default)."""
    from aqaa.tokenizer.dual import DualCodebookTokenizer

    tok = (
        tokenizer
        if isinstance(tokenizer, DualCodebookTokenizer)
        else DualCodebookTokenizer.load(tokenizer)
    )
    with torch.no_grad():
        ling = tok.linguistic.centroids.float()
        sem_codes = torch.arange(AUDIO_CODES - LINGUISTIC_CODES)
        sem = tok.semantic.decoder.proj(tok.semantic.fsq.codes_to_vectors(sem_codes)).float()
    blocks = [(b - b.mean(0)) / (b - b.mean(0)).std().clamp(min=1e-8) for b in (ling, sem)]
    return torch.cat(blocks)


def init_audio_embeddings(
    model: torch.nn.Module,
    audio_base: int,
    tokenizer: DualCodebookTokenizer | str | Path | None = None,
    structured: float = 0.8,
    seed: int = 0,
) -> None:
    """Overwrite the audio rows of `model`'s input embedding (in place), keeping their spread.

    `structured` is the share (in standard deviation) of the tokenizer's geometry; the rest is
    Gaussian noise: rows = std · (structured · projected + sqrt(1 - structured²) · noise)."""
    if not 0.0 <= structured <= 1.0:
        raise ValueError(f"structured must be in [0, 1], got {structured}")
    emb = model.get_input_embeddings().weight
    rows = slice(audio_base, audio_base + AUDIO_CODES)
    if emb.shape[0] < audio_base + AUDIO_CODES:
        raise ValueError(
            f"embedding has {emb.shape[0]} rows; audio ids need {audio_base + AUDIO_CODES}"
        )
    v = audio_code_vectors(tokenizer)
    g = torch.Generator().manual_seed(seed)
    proj = torch.randn(v.shape[1], emb.shape[1], generator=g) / math.sqrt(v.shape[1])
    s = v @ proj
    s = s / s.std()
    noise = torch.randn(AUDIO_CODES, emb.shape[1], generator=g)
    with torch.no_grad():
        std = emb[rows].float().std()
        new = std * (structured * s + math.sqrt(1.0 - structured**2) * noise)
        emb[rows] = new.to(emb.dtype)
