"""The backbone: a Hugging Face `LlamaForCausalLM` (RMSNorm, GQA, SwiGLU, RoPE) in three presets.

- `tiny`: for tests (a few hundred thousand parameters besides the embeddings).
- `small`: 6.5M parameters, ~2.5× the training throughput of `base` on this CPU: the size that
  gets the most training per wall-clock hour on 2 cores (see `benchmarks/lm_speed.py`).
- `base`: the default model, sized by the throughput table of design §7 to decode in real time on
  2 CPU cores (see `benchmarks/lm_speed.py`).
- `paper`: the 130B shape of Step-1 (88 layers, hidden 12288, 96 heads, 8 KV groups, FFN 31232),
  built on the meta device only, to count parameters.

A checkpoint is a standard HF directory: `config.json` + `model.safetensors` + the text tokenizer
(`tokenizer.json`, `tokenizer_config.json`), so `AutoModelForCausalLM` / `AutoTokenizer` / vLLM
load it as is.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from aqaa.lm.vocab import BOT_ID, EOT_ID, PAD_ID, Vocab


@dataclass(frozen=True)
class Preset:
    """The shape of a Llama backbone (vocabulary size comes from the `Vocab`)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    ffn: int
    max_positions: int = 2048
    tie_embeddings: bool = True
    rope_theta: float = 10000.0


PRESETS: dict[str, Preset] = {
    "tiny": Preset(hidden=64, layers=2, heads=4, kv_heads=2, ffn=128, max_positions=1024),
    "small": Preset(hidden=256, layers=6, heads=4, kv_heads=2, ffn=768, max_positions=2048),
    "base": Preset(hidden=384, layers=8, heads=6, kv_heads=2, ffn=1024, max_positions=2048),
    "paper": Preset(
        hidden=12288,
        layers=88,
        heads=96,
        kv_heads=8,
        ffn=31232,
        max_positions=16384,
        tie_embeddings=False,
    ),
}

#: Vocabulary size used for `paper` parameter counts (Step-1's 65,536 text ids + 5,120 audio + specials).
PAPER_VOCAB = 65536 + 5120


def preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(PRESETS)}") from None


def llama_config(p: Preset, vocab_size: int) -> object:
    """The `transformers.LlamaConfig` of a preset."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=p.hidden,
        intermediate_size=p.ffn,
        num_hidden_layers=p.layers,
        num_attention_heads=p.heads,
        num_key_value_heads=p.kv_heads,
        max_position_embeddings=p.max_positions,
        rms_norm_eps=1e-5,
        rope_parameters={"rope_type": "default", "rope_theta": p.rope_theta},
        tie_word_embeddings=p.tie_embeddings,
        attention_dropout=0.0,
        attention_bias=False,
        mlp_bias=False,
        hidden_act="silu",
        pad_token_id=PAD_ID,
        bos_token_id=BOT_ID,
        eos_token_id=EOT_ID,
        initializer_range=0.02,
    )


def build_model(
    p: Preset | str, vocab_size: int, seed: int | None = None, device: str = "cpu"
) -> torch.nn.Module:
    """A freshly initialised `LlamaForCausalLM` (fp32; `device="meta"` allocates nothing)."""
    from transformers import LlamaForCausalLM

    p = preset(p) if isinstance(p, str) else p
    cfg = llama_config(p, vocab_size)
    cfg._attn_implementation = "sdpa"
    if seed is not None:
        torch.manual_seed(seed)
    with torch.device(device):
        model = LlamaForCausalLM(cfg)
    return model


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Total (shared weights once), embedding and non-embedding parameter counts."""
    seen: set[int] = set()
    total = emb = 0
    for name, t in model.named_parameters(remove_duplicate=False):
        if id(t) in seen:
            continue
        seen.add(id(t))
        total += t.numel()
        if "embed_tokens" in name or "lm_head" in name:
            emb += t.numel()
    return {"total": total, "embedding": emb, "non_embedding": total - emb}


def paper_parameter_count() -> dict[str, int]:
    """Parameters of the 130B `paper` shape, counted on the meta device."""
    return count_parameters(build_model("paper", PAPER_VOCAB, device="meta"))


def save_checkpoint(model: torch.nn.Module, vocab: Vocab, directory: str | Path) -> None:
    """Write a standard HF checkpoint (safetensors) with the tokenizer beside it."""
    from transformers.utils import logging as hf_logging

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    hf_logging.disable_progress_bar()
    model.save_pretrained(str(directory), safe_serialization=True)
    vocab.save(directory)


def load_checkpoint(directory: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, Vocab]:
    """Load a checkpoint written by `save_checkpoint` (fp32, eval mode)."""
    from transformers import LlamaForCausalLM

    directory = Path(directory)
    if not (directory / "config.json").exists():
        raise FileNotFoundError(f"{directory} is not a checkpoint (no config.json)")
    vocab = Vocab.load(directory)
    model = LlamaForCausalLM.from_pretrained(
        str(directory), dtype=torch.float32, attn_implementation="sdpa"
    ).to(device)
    if model.config.vocab_size != vocab.size:
        raise ValueError(
            f"{directory}: model vocabulary {model.config.vocab_size} != tokenizer {vocab.size}"
        )
    model.eval()
    return model, vocab


def audio_tokenizer_of(model: torch.nn.Module) -> str | None:
    """Fingerprint of the audio tokenizer whose codes `model` was trained on (None: unknown, e.g.
    a checkpoint from before the record). Kept in the HF config, so every checkpoint carries it."""
    return getattr(model.config, "audio_tokenizer", None)


def check_audio_tokenizer(model: torch.nn.Module, fingerprint: str | None, what: str) -> None:
    """Stamp `model` with the tokenizer whose codes it reads, or fail if it learnt another's.

    `fingerprint` is that of `what` (token shards or a tokenizer); None skips the check. An LM
    that met the codes of one tokenizer reads another's as noise, so this is an error, not a
    warning; a new tokenizer needs a new pretraining with `--audio-init`."""
    from aqaa.tokenizer.dual import check_tokenizer_match

    if fingerprint is None:
        return
    fix = (
        "tokenize with the LM's tokenizer, or pretrain anew with "
        "`aqaa train pretrain --audio-init --audio-tokenizer DIR`"
    )
    check_tokenizer_match("LM", audio_tokenizer_of(model), fingerprint, what, fix)
    model.config.audio_tokenizer = fingerprint


def preset_dict(p: Preset) -> dict[str, object]:
    return asdict(p)
