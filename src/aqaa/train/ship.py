"""Make trained parts the default model: `src/aqaa/weights/{tokenizer,lm,vocoder}`.

The LM goes in bf16 (half the bytes of fp32, and the range of fp32: no overflow in logits or norms),
the vocoder in fp16 (its activations are small and fp16 keeps three more mantissa bits). Both load
back as fp32. Each part is written to a temporary directory beside its target and swapped in with
renames, so an interrupted ship never leaves a half-written default.

`assemble_model` writes the same layout somewhere else (a candidate model for `aqaa eval run
--model DIR`), so a model can be measured end to end before it replaces the default.

`adopt_tokenizer` moves an LM or a vocoder to a fine-tuned tokenizer that kept its parent's
codebook and semantic branch (`TokenizerConfig.keeps_codes_of`): a copy re-stamped with the new
fingerprint, to be fine-tuned on shards of the new codes (or measured as it is).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import torch

WEIGHTS = Path(__file__).resolve().parent.parent / "weights"


def _swap(tmp: Path, target: Path) -> Path:
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    if old.exists():
        shutil.rmtree(old)
    return target


def ship_lm(checkpoint: str | Path, weights: Path = WEIGHTS, note: str = "") -> Path:
    """Copy an LM checkpoint (HF directory) into `weights/lm` with bf16 weights."""
    from aqaa.lm.model import load_checkpoint, save_checkpoint

    model, vocab = load_checkpoint(checkpoint)
    tmp = weights / ".lm.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    save_checkpoint(model.to(torch.bfloat16), vocab, tmp)
    (tmp / "generation_config.json").unlink(missing_ok=True)
    (tmp / "shipped.json").write_text(json.dumps(
        {"from": str(checkpoint), "dtype": "bfloat16", "time": time.strftime("%Y-%m-%d %H:%M"),
         "note": note}, indent=2) + "\n")  # fmt: skip
    return _swap(tmp, weights / "lm")


def ship_tokenizer(directory: str | Path, weights: Path = WEIGHTS) -> Path:
    """Copy a tokenizer directory (fp16 safetensors + config) into `weights/tokenizer`."""
    from aqaa.tokenizer.dual import DualCodebookTokenizer

    tok = DualCodebookTokenizer.load(directory)
    tmp = weights / ".tokenizer.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    tok.save(tmp)
    if (Path(directory) / "train_config.json").exists():
        shutil.copy2(Path(directory) / "train_config.json", tmp / "train_config.json")
    return _swap(tmp, weights / "tokenizer")


def check_parts(
    lm: str | Path | None,
    tokenizer: str | Path | None,
    vocoder: str | Path | None = None,
    weights: Path = WEIGHTS,
) -> None:
    """Fail unless the LM and the vocoder that will be the defaults read the codes of the
    tokenizer that will be the default (each: the one being shipped, else the one in `weights`)."""
    from aqaa.lm.model import check_audio_tokenizer, load_checkpoint
    from aqaa.tokenizer.dual import DualCodebookTokenizer
    from aqaa.vocoder.model import Vocoder

    tok = DualCodebookTokenizer.load(tokenizer if tokenizer is not None else weights / "tokenizer")
    fingerprint, what = tok.fingerprint(), f"the tokenizer {tok.directory}"
    model, _ = load_checkpoint(lm if lm is not None else weights / "lm")
    check_audio_tokenizer(model, fingerprint, what)
    voc = Vocoder.load(vocoder if vocoder is not None else weights / "vocoder")
    voc.check_tokenizer(fingerprint, what)


def ship_vocoder(directory: str | Path, weights: Path = WEIGHTS) -> Path:
    """Copy a vocoder directory into `weights/vocoder` with fp16 weights."""
    from aqaa.vocoder.model import Vocoder

    voc = Vocoder.load(directory)
    tmp = weights / ".vocoder.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    voc.save(tmp, fp16=True)
    return _swap(tmp, weights / "vocoder")


def assemble_model(
    out: str | Path,
    lm: str | Path | None = None,
    tokenizer: str | Path | None = None,
    vocoder: str | Path | None = None,
    defaults: Path = WEIGHTS,
    note: str = "",
) -> Path:
    """Write a complete model directory `out/{tokenizer,lm,vocoder}`: the parts given are converted
    as `ship_*` converts them, the others copied from `defaults`. The parts must match."""
    out = Path(out)
    if out.resolve() == defaults.resolve():
        raise ValueError(f"{out} is the default model's directory: ship without --out instead")
    check_parts(lm, tokenizer, vocoder, weights=defaults)
    out.mkdir(parents=True, exist_ok=True)
    convert = {
        "tokenizer": (tokenizer, ship_tokenizer),
        "lm": (lm, lambda src, w: ship_lm(src, w, note=note)),
        "vocoder": (vocoder, ship_vocoder),
    }
    for part, (source, ship_part) in convert.items():
        if source is not None:
            ship_part(source, out)
            continue
        tmp = out / f".{part}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        shutil.copytree(defaults / part, tmp)
        _swap(tmp, out / part)
    return out


def adopt_tokenizer(
    tokenizer: str | Path, out: str | Path, lm: str | Path | None = None,
    vocoder: str | Path | None = None,
) -> Path:  # fmt: skip
    """Copies of `lm` (to `out/lm`) and/or `vocoder` (to `out/vocoder`) that read `tokenizer`'s
    codes. Allowed only where `tokenizer` kept the codebook of the tokenizer the part learnt
    (`keeps_codes_of` equals the part's fingerprint), or is that tokenizer already."""
    from aqaa.lm.model import audio_tokenizer_of, load_checkpoint, save_checkpoint
    from aqaa.tokenizer.dual import DualCodebookTokenizer
    from aqaa.vocoder.model import Vocoder

    if lm is None and vocoder is None:
        raise ValueError("give an LM and/or a vocoder to move to the tokenizer")
    tok = DualCodebookTokenizer.load(tokenizer)
    new, parent = tok.fingerprint(), tok.cfg.keeps_codes_of

    def check(part: str, have: str | None) -> None:
        if have not in (new, parent) or have is None:
            raise ValueError(
                f"the {part} reads the codes of tokenizer {have}, and {tokenizer} ({new}) keeps "
                f"the codes of {parent or 'no other tokenizer'}: train the {part} on its codes"
            )

    out = Path(out)
    models = {}
    if lm is not None:
        models["lm"] = load_checkpoint(lm)
        check("LM", audio_tokenizer_of(models["lm"][0]))
    if vocoder is not None:
        models["vocoder"] = Vocoder.load(vocoder)
        check("vocoder", models["vocoder"].audio_tokenizer)
    if "lm" in models:
        model, vocab = models["lm"]
        model.config.audio_tokenizer = new
        save_checkpoint(model, vocab, out / "lm")
    if "vocoder" in models:
        models["vocoder"].audio_tokenizer = new
        models["vocoder"].save(out / "vocoder")
    return out
