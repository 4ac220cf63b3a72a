"""Stage 8 (design §2): merge checkpoints by weighted averaging, W = Σ wᵢ·Wᵢ / Σ wᵢ.

The default is the paper's 5 : 5 : 1 over SFT-1, SFT-2 and DPO. All checkpoints must share the
architecture and the tokenizer. The average is computed in float64 and stored in each tensor's
own dtype; the result is a standard checkpoint written atomically.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from aqaa.lm.vocab import TOKENIZER_FILE, Vocab
from aqaa.train.loop import config_dict, write_json_atomic
from aqaa.train.stage import STAGES, final_checkpoint

WEIGHTS_FILE = "model.safetensors"
#: Everything but the weights that a merged checkpoint copies from its first input.
_COPY = ("config.json", "generation_config.json", TOKENIZER_FILE, "tokenizer_config.json")


@dataclass
class MergeConfig:
    out: str
    #: Checkpoints to average (default: the run's sft1, sft2 and dpo `final/`).
    inputs: tuple[str, ...] = ()
    weights: tuple[float, ...] = (5.0, 5.0, 1.0)
    data: str | None = field(default=None)


def merge_state_dicts(
    states: Sequence[dict[str, torch.Tensor]], weights: Sequence[float]
) -> dict[str, torch.Tensor]:
    """Σ wᵢ·sdᵢ / Σ wᵢ per tensor (float64 accumulation, original dtype out)."""
    if len(states) != len(weights) or not states:
        raise ValueError(f"{len(states)} checkpoints but {len(weights)} weights")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError("merge weights must be non-negative with a positive sum")
    keys = set(states[0])
    for i, sd in enumerate(states[1:], 1):
        if set(sd) != keys:
            raise ValueError(f"checkpoint {i} has different tensors than checkpoint 0")
        for k in keys:
            if sd[k].shape != states[0][k].shape:
                raise ValueError(f"tensor {k}: shape {tuple(sd[k].shape)} in checkpoint {i}")
    total = float(sum(weights))
    out = {}
    for k in sorted(keys):
        acc = torch.zeros(states[0][k].shape, dtype=torch.float64)
        for sd, w in zip(states, weights, strict=True):
            acc += float(w) * sd[k].to(torch.float64)
        out[k] = (acc / total).to(states[0][k].dtype).contiguous()
    return out


def merge_checkpoints(
    inputs: Sequence[str | Path], weights: Sequence[float], out: str | Path
) -> Path:
    """Average the checkpoints `inputs` into `out` (a standard HF checkpoint directory)."""
    from safetensors.torch import load_file, save_file

    paths = [Path(p) for p in inputs]
    for p in paths:
        if not (p / WEIGHTS_FILE).exists():
            raise FileNotFoundError(f"{p} is not a checkpoint (no {WEIGHTS_FILE})")
    toks = {Vocab.load(p).fingerprint() for p in paths}
    if len(toks) != 1:
        raise ValueError("the checkpoints do not share one tokenizer")
    audio = {json.loads((p / "config.json").read_text()).get("audio_tokenizer") for p in paths}
    if len(audio - {None}) > 1:
        raise ValueError(f"the checkpoints read different audio tokenizers' codes: {audio}")
    shapes = {_shape(p) for p in paths}
    if len(shapes) != 1:
        raise ValueError("the checkpoints do not share one architecture")
    merged = merge_state_dicts([load_file(str(p / WEIGHTS_FILE)) for p in paths], weights)
    out = Path(out)
    tmp = out.with_name(f".tmp_{out.name}_{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    for name in _COPY:
        if (paths[0] / name).exists():
            shutil.copy2(paths[0] / name, tmp / name)
    save_file(merged, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
    write_json_atomic(
        tmp / "merge.json", {"inputs": [str(p) for p in paths], "weights": list(weights)}
    )
    if out.exists():
        shutil.rmtree(out)
    os.replace(tmp, out)
    return out


def _shape(p: Path) -> str:
    cfg = json.loads((p / "config.json").read_text())
    keys = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
            "num_key_value_heads", "intermediate_size")  # fmt: skip
    return json.dumps({k: cfg.get(k) for k in keys})


def run_merge(cfg: MergeConfig) -> Path:
    """Merge into `OUT/merged` (defaults: the run's sft1, sft2, dpo finals, weights 5:5:1)."""
    inputs = list(cfg.inputs) or [
        str(final_checkpoint(cfg.out, s)) for s in ("sft1", "sft2", "dpo")
    ]
    cfg.inputs = tuple(inputs)
    if len(cfg.weights) != len(inputs):
        raise ValueError(f"{len(inputs)} checkpoints but {len(cfg.weights)} weights")
    out = Path(cfg.out) / STAGES["merge"]
    merge_checkpoints(inputs, cfg.weights, out)
    write_json_atomic(out / "merge_config.json", config_dict(cfg))
    return out
