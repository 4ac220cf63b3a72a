"""One explicit training loop (nanoGPT style) shared by every stage.

- Deterministic: the batch of step `s` is a function of `(seed, s)`; weights are initialised from
  the seed; nothing else is random. A resumed run therefore reaches the same state as an
  uninterrupted one.
- Multi-process: under `torchrun` the process group is gloo on CPU and nccl on GPU. Every process
  builds the same global batch and takes its slice `rank::world`; the loss is a sum over tokens
  divided by the *global* normaliser (times `world`, undoing DDP's gradient average), so any
  number of processes and micro-batches gives the same gradient.
- bf16 autocast (fp32 master weights and optimizer) where bf16 matmuls are fast: by default only
  on CUDA and on CPUs with native bf16 (`bf16_is_fast`, via `aqaa.precision`); `bf16=True`
  forces it. On AVX2-only CPUs emulated bf16 GEMMs were ~30× slower than fp32.
- Atomic checkpoints: a step's directory is written under a temporary name and renamed with
  `os.replace`; the `latest` pointer is replaced the same way. A kill at any moment leaves the last
  complete checkpoint; `resume=True` continues from it.
- Logs: `log.jsonl` (loss, text/audio loss, lr, tokens/s; `eval` lines for held-out loss) and
  `loss.png`, both in the stage directory.

Stage directory layout: `train_config.json`, `log.jsonl`, `loss.png`, `latest`,
`ckpt/step_XXXXXXXX/` (HF checkpoint + tokenizer + `trainer_state.pt` + `train_config.json`),
`best/` (the weights at the lowest held-out loss so far, with `best.json` naming the step and loss:
a small corpus is memorised within a few hundred steps, and the last checkpoint is then not the
one to keep), and `final/` (HF checkpoint + tokenizer + `train_config.json`) at the end.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from aqaa.lm.model import save_checkpoint
from aqaa.lm.vocab import Vocab
from aqaa.train.objectives import TargetLogprobs, Task

LATEST = "latest"
FINAL = "final"
STATE_FILE = "trainer_state.pt"
CONFIG_FILE = "train_config.json"
BEST = "best"
BEST_FILE = "best.json"
LOG_FILE = "log.jsonl"


@dataclass
class LoopConfig:
    """Optimisation and bookkeeping settings shared by all stages."""

    max_steps: int = 1000
    #: Items (examples, or pairs for DPO) per optimiser step, over all processes.
    batch_size: int = 16
    #: Items per forward pass in one process (gradient accumulation covers the rest).
    micro_batch: int = 8
    lr: float = 1e-3
    min_lr_ratio: float = 0.1
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    seed: int = 0
    #: bf16 autocast; None = where it is fast (`bf16_is_fast`: CUDA, CPUs with native bf16).
    bf16: bool | None = None
    log_every: int = 10
    eval_every: int = 200
    ckpt_every: int = 200
    keep_ckpts: int = 2
    #: Learning-rate multiplier of the audio rows of the (tied) embedding matrix.
    audio_embedding_lr_mult: float = 1.0
    #: Torch threads per process (0: cores / processes).
    threads: int = 0

    def __post_init__(self) -> None:
        if self.max_steps < 0 or self.batch_size < 1 or self.micro_batch < 1:
            raise ValueError("max_steps >= 0, batch_size >= 1 and micro_batch >= 1 are required")
        if self.lr <= 0:
            raise ValueError("lr must be positive")

    def lr_at(self, step: int) -> float:
        """Linear warm-up, then cosine decay to `min_lr_ratio * lr` at `max_steps`."""
        if step < self.warmup_steps:
            return self.lr * (step + 1) / self.warmup_steps
        span = max(1, self.max_steps - self.warmup_steps)
        t = min(1.0, (step - self.warmup_steps) / span)
        lo = self.lr * self.min_lr_ratio
        return lo + 0.5 * (1 + math.cos(math.pi * t)) * (self.lr - lo)


# ----- process group ----------------------------------------------------------------------


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.enabled:
            dist.barrier()

    def sum(self, values: dict[str, float]) -> dict[str, float]:
        """Sum a dict of floats over processes (same keys everywhere)."""
        if not self.enabled:
            return dict(values)
        keys = sorted(values)
        t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return dict(zip(keys, t.tolist(), strict=True))


def setup_dist() -> Dist:
    """Join the `torchrun` process group if there is one (gloo on CPU, nccl on GPU)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        if cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if cuda else "gloo")
    return Dist(rank, world, local, device)


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 autocast pays off here: CUDA with bf16 support, or a CPU where a bf16
    matmul beats fp32 (`aqaa.precision`; AVX2-only CPUs emulate bf16 and are far slower)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    from aqaa.precision import bf16_is_fast as cpu_bf16_is_fast

    return cpu_bf16_is_fast()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ----- checkpoints ------------------------------------------------------------------------


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    os.replace(tmp, path)


def latest_checkpoint(stage_dir: str | Path) -> Path | None:
    """The last complete checkpoint of a stage directory, if any."""
    p = Path(stage_dir) / LATEST
    if not p.exists():
        return None
    ck = Path(stage_dir) / p.read_text().strip()
    return ck if (ck / STATE_FILE).exists() else None


def save_training_checkpoint(
    stage_dir: Path,
    step: int,
    model: nn.Module,
    vocab: Vocab,
    optimizer: torch.optim.Optimizer,
    config: dict[str, Any],
    keep: int,
) -> Path:
    """Write `ckpt/step_N` atomically, point `latest` at it, prune old ones."""
    ckdir = stage_dir / "ckpt"
    ckdir.mkdir(parents=True, exist_ok=True)
    final = ckdir / f"step_{step:08d}"
    tmp = ckdir / f".tmp_step_{step:08d}_{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    save_checkpoint(model, vocab, tmp)
    torch.save({"step": step, "optimizer": optimizer.state_dict()}, tmp / STATE_FILE)
    write_json_atomic(tmp / CONFIG_FILE, config)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    tmp_ptr = stage_dir / f"{LATEST}.tmp{os.getpid()}"
    tmp_ptr.write_text(str(final.relative_to(stage_dir)))
    os.replace(tmp_ptr, stage_dir / LATEST)
    olds = sorted(p for p in ckdir.glob("step_*") if p != final)
    for p in olds[: max(0, len(olds) - (keep - 1))]:
        shutil.rmtree(p, ignore_errors=True)
    return final


def load_weights(model: nn.Module, ckpt: Path) -> None:
    """Load safetensors weights into `model` in place (tied heads may be absent on disk)."""
    from safetensors.torch import load_file

    sd = load_file(str(ckpt / "model.safetensors"))
    missing, unexpected = model.load_state_dict(sd, strict=False)
    tied = bool(getattr(model.config, "tie_word_embeddings", False))
    bad = [k for k in missing if not (tied and k == "lm_head.weight")]
    if bad or unexpected:
        raise ValueError(f"checkpoint {ckpt} does not fit the model: {bad[:3]} {unexpected[:3]}")
    if tied:
        model.tie_weights()


# ----- logging ----------------------------------------------------------------------------


def read_log(stage_dir: Path) -> list[dict[str, Any]]:
    p = stage_dir / LOG_FILE
    if not p.exists():
        return []
    return [json.loads(x) for x in p.read_text().splitlines() if x.strip()]


def plot_losses(stage_dir: Path) -> Path | None:
    """`loss.png`: training loss (and text/audio parts) and held-out loss against step."""
    rows = read_log(stage_dir)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    train = [r for r in rows if r.get("kind") == "train"]
    evals = [r for r in rows if r.get("kind") == "eval"]
    for key, style in (("loss", "-"), ("text_loss", ":"), ("audio_loss", "--")):
        pts = [(r["step"], r[key]) for r in train if key in r]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=f"train {key}")
    for key, style in (("loss", "o-"), ("text_loss", "s:"), ("audio_loss", "^--"),
                       ("ling_loss", "v-."), ("sem_loss", "x-."),
                       ("dpo_loss", "o-"), ("reward_acc", "d-")):  # fmt: skip
        pts = [(r["step"], r[key]) for r in evals if key in r]
        if pts:
            ax.plot(*zip(*pts, strict=True), style, label=f"held-out {key}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = stage_dir / "loss.png"
    tmp = stage_dir / ".loss.tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out


# ----- the loop ---------------------------------------------------------------------------


def _optimizer(model: nn.Module, cfg: LoopConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    seen: set[int] = set()
    for _, p in model.named_parameters():
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [
        {"params": decay, "weight_decay": cfg.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), fused=False)


@dataclass
class TrainResult:
    final: Path | None
    steps: int
    last: dict[str, float]


def train(
    *,
    stage_dir: str | Path,
    model: nn.Module,
    vocab: Vocab,
    task: Task,
    cfg: LoopConfig,
    config: dict[str, Any],
    resume: bool = False,
    dist_ctx: Dist | None = None,
    progress: bool = True,
    on_log: Callable[[dict[str, Any]], None] | None = None,
    stop_after: int | None = None,
) -> TrainResult:
    """Optimise `model` on `task` for `cfg.max_steps` steps, checkpointing into `stage_dir`.

    `config` is the stage's full config (saved next to every checkpoint). With `resume`, the
    weights, optimiser and step come from the latest checkpoint in `stage_dir`. `stop_after`
    abandons the run after that many steps, as a kill would (tests); `final` is then None.
    """
    d = dist_ctx or setup_dist()
    stage_dir = Path(stage_dir)
    if cfg.batch_size % d.world:
        raise ValueError(f"batch_size {cfg.batch_size} must be divisible by {d.world} processes")
    threads_before = torch.get_num_threads()
    torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // d.world))
    try:
        return _train(
            stage_dir, model, vocab, task, cfg, config, resume, d, progress, on_log, stop_after
        )
    finally:
        torch.set_num_threads(threads_before)


def _train(
    stage_dir: Path,
    model: nn.Module,
    vocab: Vocab,
    task: Task,
    cfg: LoopConfig,
    config: dict[str, Any],
    resume: bool,
    d: Dist,
    progress: bool,
    on_log: Callable[[dict[str, Any]], None] | None,
    stop_after: int | None,
) -> TrainResult:
    seed_everything(cfg.seed)
    model.to(d.device)
    model.train()
    optimizer = _optimizer(model, cfg)
    start = 0
    if resume:
        ck = latest_checkpoint(stage_dir)
        if ck is None:
            raise FileNotFoundError(f"nothing to resume in {stage_dir}")
        load_weights(model, ck)
        state = torch.load(ck / STATE_FILE, map_location=d.device, weights_only=False)
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])
    if d.main:
        stage_dir.mkdir(parents=True, exist_ok=True)
        write_json_atomic(stage_dir / CONFIG_FILE, config)
        _truncate_log(stage_dir, start)
    d.barrier()

    wrapped: nn.Module = TargetLogprobs(model)
    if d.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        wrapped = DDP(wrapped, device_ids=[d.device] if d.device.type == "cuda" else None)
    use_bf16 = bf16_is_fast(d.device) if cfg.bf16 is None else cfg.bf16
    amp = torch.autocast(d.device.type, dtype=torch.bfloat16, enabled=use_bf16)
    emb = model.get_input_embeddings().weight
    audio_rows = slice(vocab.audio_base, vocab.size)

    bar = None
    if progress and d.main:
        from tqdm import tqdm

        bar = tqdm(total=cfg.max_steps, initial=start, desc=stage_dir.name, dynamic_ncols=True)
    last: dict[str, float] = {}
    acc: dict[str, float] = {}
    t_last, n_acc = time.perf_counter(), 0
    for step in range(start, cfg.max_steps):
        lr = cfg.lr_at(step)
        for g in optimizer.param_groups:
            g["lr"] = lr
        # sorted by length (stable), so each micro-batch pads little; the sum is order-free
        items = sorted(task.batch(step, cfg.batch_size), key=task.n_tokens)
        denom = sum(task.weight(x) for x in items)
        mine = items[d.rank :: d.world]
        micro = [mine[i : i + cfg.micro_batch] for i in range(0, len(mine), cfg.micro_batch)]
        stats: dict[str, float] = {"objective": 0.0}
        for j, mb in enumerate(micro):
            sync = j == len(micro) - 1 or not d.enabled
            ctx = contextlib.nullcontext() if sync else wrapped.no_sync()  # type: ignore[operator]
            with ctx:
                with amp:
                    loss, st = task.loss(wrapped, mb, denom)
                (loss * d.world).backward()
            stats["objective"] += float(loss.detach())
            for k, v in st.items():
                stats[k] = stats.get(k, 0.0) + v
        stats["tokens"] = float(sum(task.n_tokens(x) for x in mine))
        gnorm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip))
        old = emb.data[audio_rows].clone() if cfg.audio_embedding_lr_mult != 1.0 else None
        optimizer.step()
        if old is not None:
            new = emb.data[audio_rows]
            emb.data[audio_rows] = old + cfg.audio_embedding_lr_mult * (new - old)
        optimizer.zero_grad(set_to_none=True)
        done = step + 1

        for k, v in stats.items():
            acc[k] = acc.get(k, 0.0) + v
        n_acc += 1
        if done % cfg.log_every == 0 or done == cfg.max_steps:
            tot = d.sum(acc)
            dt = time.perf_counter() - t_last
            row = {
                "kind": "train",
                "step": done,
                "lr": lr,
                "grad_norm": gnorm,
                "objective": tot.pop("objective") / n_acc,
                "tokens_per_s": tot.pop("tokens") / max(dt, 1e-9),
                **task.summarize(tot),
                "time": time.time(),
            }
            last = row
            if d.main:
                _append_log(stage_dir, row)
                if on_log:
                    on_log(row)
            acc, n_acc, t_last = {}, 0, time.perf_counter()
        if bar is not None:
            bar.update(1)
            if last:
                bar.set_postfix(loss=f"{last.get('loss', last['objective']):.3f}")
        if cfg.eval_every and (done % cfg.eval_every == 0 or done == cfg.max_steps):
            ev = evaluate(wrapped, task, d, amp)
            if ev and d.main:
                row = {"kind": "eval", "step": done, **ev, "time": time.time()}
                _append_log(stage_dir, row)
                if on_log:
                    on_log(row)
                best = best_checkpoint(stage_dir)
                if "loss" in ev and (best is None or ev["loss"] < best[1]):
                    _save_best(stage_dir, done, float(ev["loss"]), model, vocab, config)
        if done % cfg.ckpt_every == 0 and done < cfg.max_steps:
            _checkpoint(stage_dir, done, model, vocab, optimizer, config, cfg, d)
        if stop_after is not None and done >= stop_after:
            if bar is not None:
                bar.close()
            return TrainResult(None, done, last)
    if bar is not None:
        bar.close()
    if start < cfg.max_steps or latest_checkpoint(stage_dir) is None:
        _checkpoint(stage_dir, cfg.max_steps, model, vocab, optimizer, config, cfg, d)
    final = stage_dir / FINAL
    if d.main:
        tmp = stage_dir / f".tmp_final_{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        save_checkpoint(model, vocab, tmp)
        write_json_atomic(tmp / CONFIG_FILE, config)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        plot_losses(stage_dir)
    d.barrier()
    return TrainResult(final, cfg.max_steps, last)


def best_checkpoint(stage_dir: str | Path) -> tuple[Path, float, int] | None:
    """`(path, held-out loss, step)` of a stage's `best/` weights, if any were saved (or the
    previous best, if a kill came while `best/` was being replaced)."""
    p = Path(stage_dir) / BEST
    if not p.exists():
        p = next(iter(sorted(Path(stage_dir).glob(f".old_{BEST}_*"))), p)
    try:
        info = json.loads((p / BEST_FILE).read_text())
    except (OSError, ValueError):
        return None
    return p, float(info["loss"]), int(info["step"])


def _save_best(
    stage_dir: Path, step: int, loss: float, model: nn.Module, vocab: Vocab, config: dict[str, Any]
) -> None:
    """Replace `best/` atomically with the current weights (no optimizer state)."""
    tmp = stage_dir / f".tmp_best_{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    save_checkpoint(model, vocab, tmp)
    write_json_atomic(tmp / CONFIG_FILE, config)
    write_json_atomic(tmp / BEST_FILE, {"step": step, "loss": loss})
    best = stage_dir / BEST
    old = stage_dir / f".old_{BEST}_{os.getpid()}"
    if best.exists():
        os.replace(best, old)
    os.replace(tmp, best)
    shutil.rmtree(old, ignore_errors=True)


def _checkpoint(
    stage_dir: Path,
    step: int,
    model: nn.Module,
    vocab: Vocab,
    optimizer: torch.optim.Optimizer,
    config: dict[str, Any],
    cfg: LoopConfig,
    d: Dist,
) -> None:
    if d.main:
        save_training_checkpoint(stage_dir, step, model, vocab, optimizer, config, cfg.keep_ckpts)
        plot_losses(stage_dir)
    d.barrier()


@torch.no_grad()
def evaluate(
    wrapped: nn.Module, task: Task, d: Dist, amp: contextlib.AbstractContextManager
) -> dict[str, float]:
    """Held-out metrics of `task.eval_items()`, sharded over processes."""
    items = task.eval_items()
    if len(items) < d.world:  # every process needs a share (the sums must have equal keys)
        return {}
    module = wrapped.module if hasattr(wrapped, "module") else wrapped
    module.eval()
    sums: dict[str, float] = {}
    mine = items[d.rank :: d.world]
    for i in range(0, len(mine), 8):
        with amp:
            _, st = task.loss(module, mine[i : i + 8], 1.0)
        for k, v in st.items():
            sums[k] = sums.get(k, 0.0) + v
    module.train()
    keys = sorted(set(sums))
    return task.summarize(d.sum({k: sums.get(k, 0.0) for k in keys}))


def _append_log(stage_dir: Path, row: dict[str, Any]) -> None:
    with (stage_dir / LOG_FILE).open("a") as f:
        f.write(json.dumps(row) + "\n")


def _truncate_log(stage_dir: Path, step: int) -> None:
    """Drop log lines past `step` (written by a run killed after its last checkpoint)."""
    rows = [r for r in read_log(stage_dir) if r.get("step", 0) <= step]
    p = stage_dir / LOG_FILE
    if p.exists() or rows:
        tmp = stage_dir / f"{LOG_FILE}.tmp"
        tmp.write_text("".join(json.dumps(r) + "\n" for r in rows))
        os.replace(tmp, p)


def config_dict(cfg: Any) -> dict[str, Any]:
    """A stage config (nested dataclasses) as JSON-ready data."""
    return json.loads(json.dumps(asdict(cfg), default=str))
