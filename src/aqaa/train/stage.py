"""What every stage shares: the run-directory layout and config (de)serialisation.

A *run directory* holds one subdirectory per stage: `pretrain/`, `sft1/`, `sft2/`, `dpo/`, `merged/`.
Each stage reads its predecessor's `final/` checkpoint by default (`sft1` ← `pretrain`, `sft2` ←
`sft1`, `dpo` ← `sft1` (policy and reference), `merged` ← `sft1` + `sft2` + `dpo`).
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

from aqaa.train.loop import CONFIG_FILE, FINAL, latest_checkpoint

STAGES = {"pretrain": "pretrain", "sft1": "sft1", "sft2": "sft2", "dpo": "dpo", "merge": "merged"}

T = TypeVar("T")


class StageError(ValueError):
    """A problem the user can fix (missing predecessor, existing run without --resume, ...)."""


def stage_dir(run: str | Path, stage: str) -> Path:
    return Path(run) / STAGES[stage]


def final_checkpoint(run: str | Path, stage: str) -> Path:
    """The `final/` checkpoint of `stage` in `run`, or a StageError saying what to run first."""
    p = stage_dir(run, stage) / FINAL
    if not (p / "config.json").exists():
        raise StageError(
            f"no {stage} checkpoint at {p}: run `aqaa train {stage}` first or pass --init"
        )
    return p


def check_fresh(sdir: Path, resume: bool) -> None:
    """Refuse to overwrite a stage that has checkpoints unless resuming (and vice versa)."""
    has = latest_checkpoint(sdir) is not None
    if has and not resume:
        raise StageError(f"{sdir} already has checkpoints: pass --resume, or choose another --out")
    if resume and not has:
        raise StageError(f"nothing to resume in {sdir}")


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build a (nested) config dataclass from its `asdict` form; unknown keys are an error."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    extra = set(data) - names
    if extra:
        raise ValueError(f"unknown {cls.__name__} fields: {sorted(extra)}")
    kwargs = {}
    for k, v in data.items():
        t = hints[k]
        if dataclasses.is_dataclass(t) and isinstance(v, dict):
            v = from_dict(t, v)  # type: ignore[arg-type]
        elif isinstance(v, list) and _is_tuple(t):
            v = tuple(v)
        kwargs[k] = v
    return cls(**kwargs)


def _is_tuple(t: Any) -> bool:
    if typing.get_origin(t) is tuple:
        return True
    if typing.get_origin(t) in (typing.Union, types.UnionType):
        return any(_is_tuple(a) for a in typing.get_args(t))
    return False


def load_config(cls: type[T], sdir: Path) -> T:
    return from_dict(cls, json.loads((sdir / CONFIG_FILE).read_text()))
