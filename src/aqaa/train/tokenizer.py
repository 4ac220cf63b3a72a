"""Train the dual-codebook tokenizer (`aqaa train tokenizer --data CORPUS --out DIR`).

1. Features, once: every clip of the corpus (human turns at 16 kHz, assistant clips resampled to
   16 kHz), peak-normalised as at inference, becomes fbank frames, log-F0/voicing/energy targets
   and phoneme ids, cached in `CORPUS/cache/tokenizer_features.pt` (training never re-reads audio).
2. Both encoders train together on the same batches: linguistic CTC + semantic CTC + semantic
   reconstruction (mel, log-F0, voicing, energy). bf16 autocast, AdamW, warm-up + cosine schedule,
   an atomic checkpoint every `ckpt_every` steps, `--resume` continues from it.
3. k-means (1,024 centroids) on linguistic encoder outputs of training clips.
4. The tokenizer is saved as fp16 safetensors + config.json in `--out`.

Fine-tuning a trained tokenizer (`--init DIR`, session 22): the run starts from DIR's weights,
architecture, phoneme inventory and feature statistics. `--freeze-semantic` trains only the
linguistic encoder, so the semantic codes (and with them the vocoder's input) stay bit-identical;
`--keep-centroids` skips the k-means fit, so linguistic code N keeps its place in the codebook;
`--commit-weight W` adds W · ‖h − sg(c(h))‖² (h: encoder output, c(h): its nearest fixed
centroid), meant to hold the encoder's outputs on that codebook while CTC moves them to the right
phones. The first two make a tokenizer whose codes an LM and a vocoder trained on DIR's codes
still read (`aqaa train adopt`), so a better ear does not restart the whole recipe.

Measured (TRAINING.md, session 22; tok5 fine-tuned 3,000 steps on five times its voices): CTC
alone keeps 79% of the linguistic codes and lowers the reserved voices' phone error rate from
36.7% to 35.0%; the commitment (0.003) moves *more* codes (62% kept: outputs hop to other
nearby centroids) for no gain, so it is off by default; `--tempo 1.35` trades neutral speech
(29.8% → 32.7%) for fast speech (51.3% → 46.6%).
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing as mp
import os
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from aqaa.audio import load_audio
from aqaa.data.corpus import read_manifest
from aqaa.precision import use_bf16
from aqaa.tokenizer.dual import DualCodebookTokenizer, TokenizerConfig
from aqaa.tokenizer.encoder import EncoderConfig
from aqaa.tokenizer.features import fbank, prosody_targets, stack_frames, stacked_frames
from aqaa.tokenizer.linguistic import LinguisticConfig
from aqaa.tokenizer.phonemes import PhonemeVocab
from aqaa.tokenizer.semantic import SemanticConfig

log = logging.getLogger(__name__)


@dataclass
class TokenizerTrainConfig:
    data: str
    out: str
    steps: int = 6000
    batch_seconds: float = 40.0  # padded audio per batch
    max_clip_seconds: float = 8.0
    lr: float = 1e-3
    warmup: int = 300
    weight_decay: float = 0.01
    ckpt_every: int = 250
    seed: int = 0
    kmeans_frames: int = 150_000
    dim: int = 192
    layers: int = 4
    heads: int = 4
    #: Linguistic codebook size (1,024 in the design; smaller only for tests).
    n_codes: int = 1024
    #: VTLP + SpecAugment on the linguistic encoder's input (speaker invariance).
    augment: bool = True
    #: Tempo perturbation of the linguistic input: each clip's frames are resampled in time by a
    #: factor drawn log-uniformly from [1/x, x] (0 = off). Needs `augment`.
    tempo: float = 0.0
    #: Online mean normalisation of the linguistic input, prior weight in LFR frames (0 = off).
    cmn_prior: int = 10
    #: bf16 autocast: "auto" uses it only where it is faster (see aqaa.precision).
    bf16: str = "auto"
    #: Start from this trained tokenizer (weights, architecture, phonemes, feature statistics).
    init: str | None = None
    #: Train only the linguistic encoder (semantic codes stay identical); needs `init`.
    freeze_semantic: bool = False
    #: Keep `init`'s k-means centroids instead of fitting new ones; needs `init`.
    keep_centroids: bool = False
    #: Weight of the commitment of linguistic outputs to their nearest centroid (0 = off).
    commit_weight: float = 0.0
    loss_weights: dict[str, float] = field(
        default_factory=lambda: {
            "ling_ctc": 1.0,
            "ctc": 0.5,
            "mel": 1.0,
            "lf0": 2.0,
            "vuv": 0.5,
            "energy": 0.5,
        }
    )


# ------------------------------------------------------------------------------------- features


def clip_list(corpus: Path) -> list[dict[str, Any]]:
    """Every clip of a corpus with its transcript phonemes, split, voice and style."""
    clips = []
    for r in read_manifest(corpus):
        for t in r["turns"]:
            h = t["human_audio"]
            style = t["human"]["style"]
            clips.append(
                {
                    "path": h["path"],
                    "phonemes": h["phonemes"],
                    "split": r["split"],
                    "voice": h["voice"],
                    "style": style,
                    "text": t["human_text"],
                    "side": "human",
                }
            )
            for c in t["answer_audio"]:
                clips.append(
                    {
                        "path": c["path"],
                        "phonemes": c["phonemes"],
                        "split": r["split"],
                        "voice": "piper:joe",
                        "style": c["style"],
                        "text": c["text"],
                        "side": "assistant",
                    }
                )
    return clips


def _clip_features(args: tuple[str, dict[str, Any]]) -> dict[str, Any] | None:
    corpus, clip = args
    torch.set_num_threads(1)
    try:
        x = load_audio(Path(corpus) / clip["path"])
    except ValueError as e:
        log.warning("skipping %s: %s", clip["path"], e)
        return None
    # numpy, not torch: tensors returned from pool workers travel as file descriptors, and
    # thousands of them exhaust the descriptor limit
    feats = fbank(x).to(torch.float16).numpy()
    return {**clip, "fbank": feats, **prosody_targets(x)}


def prepare_features(corpus: Path, workers: int = 2, progress: bool = True) -> list[dict[str, Any]]:
    """Features of every clip, computed once and cached next to the corpus."""
    from tqdm import tqdm

    cache = corpus / "cache" / "tokenizer_features.pt"
    manifest = corpus / "manifest.jsonl"
    if cache.exists() and cache.stat().st_mtime >= manifest.stat().st_mtime:
        return torch.load(cache, weights_only=False)
    clips = clip_list(corpus)
    jobs = [(str(corpus), c) for c in clips]
    with mp.get_context("fork").Pool(workers) as pool:
        rows = list(
            tqdm(
                pool.imap(_clip_features, jobs, chunksize=8),
                total=len(jobs),
                disable=not progress,
                desc="features",
                unit="clip",
            )
        )
    rows = [
        {k: torch.from_numpy(v) if isinstance(v, np.ndarray) else v for k, v in r.items()}
        for r in rows
        if r is not None
    ]
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    torch.save(rows, tmp)
    os.replace(tmp, cache)
    return rows


# ------------------------------------------------------------------------------------- batches


def make_config(cfg: TokenizerTrainConfig, vocab: PhonemeVocab) -> TokenizerConfig:
    enc = dict(dim=cfg.dim, layers=cfg.layers, heads=cfg.heads)
    return TokenizerConfig(
        LinguisticConfig(
            n_phonemes=len(vocab),
            n_codes=cfg.n_codes,
            cmn_prior=cfg.cmn_prior,
            encoder=EncoderConfig(input_dim=560, chunk=8, **enc),
        ),
        SemanticConfig(
            n_phonemes=len(vocab),
            encoder=EncoderConfig(input_dim=320, chunk=12, **enc),
            decoder=EncoderConfig(input_dim=4, chunk=12, dim=cfg.dim, layers=2, heads=cfg.heads),
        ),
        vocab.symbols,
    )


def batches(rows: list[dict], cfg: TokenizerTrainConfig, rng: random.Random):
    """Endless batches of about `batch_seconds` of audio, clips cropped to `max_clip_seconds`.

    Clips are shuffled, then sorted by length within pools of 256 so a batch holds clips of
    similar length (little padding), and the batches are shuffled again.
    """
    max_frames = int(cfg.max_clip_seconds * 100)

    def frames(i: int) -> int:
        return min(len(rows[i]["fbank"]), max_frames)

    while True:
        order = list(range(len(rows)))
        rng.shuffle(order)
        epoch: list[list[dict]] = []
        for p in range(0, len(order), 256):
            pool = sorted(order[p : p + 256], key=frames)
            batch: list[dict] = []
            width = 0
            for i in pool:
                width = max(width, frames(i))
                if batch and width * (len(batch) + 1) > cfg.batch_seconds * 100:
                    epoch.append(batch)
                    batch, width = [], frames(i)
                batch.append(rows[i])
            if batch:
                epoch.append(batch)
        rng.shuffle(epoch)
        yield from epoch


def collate(batch: list[dict], vocab: PhonemeVocab, max_frames: int) -> dict[str, torch.Tensor]:
    """Pad a batch. A clip longer than `max_frames` keeps its start; its phoneme target is cut to
    the same share (a rough alignment; CTC tolerates it and long clips are rare)."""
    n = [min(len(r["fbank"]), max_frames) for r in batch]
    # whole 12-frame groups so both stacks align with the 120 ms grid
    n = [max(12, k - k % 12) for k in n]
    width = max(n)
    fb = torch.zeros(len(batch), width, 80)
    tg = {k: torch.zeros(len(batch), width) for k in ("lf0", "voiced", "energy")}
    targets, tlen = [], []
    for i, (r, k) in enumerate(zip(batch, n, strict=True)):
        k = min(k, len(r["fbank"]))
        fb[i, :k] = r["fbank"][:k].float()
        for key in tg:
            tg[key][i, :k] = r[key][:k]
        ph = vocab.encode(r["phonemes"])
        share = k / len(r["fbank"])
        ph = ph[: max(1, round(len(ph) * share))]
        targets += ph
        tlen.append(len(ph))
    return {
        "fbank": fb,
        "frames": torch.tensor(n),
        "targets": torch.tensor(targets, dtype=torch.long),
        "target_lengths": torch.tensor(tlen),
        **tg,
    }


def augment_linguistic(fb: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Speaker-invariance augmentation for the linguistic encoder's input (B, F, 80) fbank.

    - vocal-tract-length perturbation: the mel axis of each clip is stretched by α ∈ [0.85, 1.18]
      (formants move as for a shorter or longer vocal tract);
    - SpecAugment: two frequency masks (≤ 8 bins) and two time masks (≤ 20 frames) per clip, set
      to the clip's mean.
    The semantic tokenizer never sees this: it must keep the real timbre and pitch.
    """
    b, f, n = fb.shape
    out = torch.empty_like(fb)
    bins = torch.arange(n, dtype=torch.float32)
    for i in range(b):
        alpha = 0.85 + 0.33 * torch.rand((), generator=gen).item()
        src = (bins / alpha).clamp(0, n - 1)
        lo = src.floor().long()
        hi = (lo + 1).clamp(max=n - 1)
        w = src - lo
        x = fb[i, :, lo] * (1 - w) + fb[i, :, hi] * w
        mean = x.mean()
        for _ in range(2):
            width = int(torch.randint(0, 9, (), generator=gen))
            start = int(torch.randint(0, n - width + 1, (), generator=gen))
            x[:, start : start + width] = mean
            width = int(torch.randint(0, 21, (), generator=gen))
            start = int(torch.randint(0, max(1, f - width), (), generator=gen))
            x[start : start + width] = mean
        out[i] = x
    return out


def tempo_perturb(
    fb: torch.Tensor, frames: torch.Tensor, gen: torch.Generator, spread: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Speak each clip of (B, F, 80) fbank faster or slower: its `frames` valid frames are
    linearly resampled in time by a factor drawn log-uniformly from [1/spread, spread] (> 1 is
    faster: fewer frames), like a tempo change that keeps the pitch. Returns the padded batch
    and the new frame counts (whole 12-frame groups, as `collate` makes them)."""
    outs, counts = [], []
    for i in range(fb.shape[0]):
        n = int(frames[i])
        rate = spread ** (2 * torch.rand((), generator=gen).item() - 1)
        m = max(12, int(n / rate) // 12 * 12)
        x = fb[i, :n].T[None]  # (1, 80, n)
        outs.append(F.interpolate(x, size=m, mode="linear", align_corners=True)[0].T)
        counts.append(m)
    out = fb.new_zeros(len(outs), max(counts), fb.shape[2])
    for i, x in enumerate(outs):
        out[i, : len(x)] = x
    return out, torch.tensor(counts)


def step_losses(
    tok: DualCodebookTokenizer,
    b: dict[str, torch.Tensor],
    gen: torch.Generator | None = None,
    semantic: bool = True,
    commit: bool = False,
    tempo: float = 0.0,
) -> dict[str, torch.Tensor]:
    """All training losses of a batch; with `gen`, the linguistic input is augmented.

    `semantic=False` leaves out the semantic losses (a frozen semantic branch); `commit=True`
    adds the loss "commit": the mean squared distance of each valid linguistic output to its
    nearest centroid;
    `tempo > 1` (with `gen`) also changes the linguistic input's tempo (`tempo_perturb`)."""
    lc, sc = tok.cfg.linguistic, tok.cfg.semantic
    lin, sem = tok.linguistic, tok.semantic
    s_len = torch.tensor([stacked_frames(int(k), sc.stack, sc.stack) for k in b["frames"]])
    ling_in, ling_frames = lin.norm(b["fbank"]), b["frames"]
    if gen is not None:
        if tempo > 1.0:
            ling_in, ling_frames = tempo_perturb(ling_in, ling_frames, gen, tempo)
        ling_in = augment_linguistic(ling_in, gen)
    l_len = torch.tensor([stacked_frames(int(k), lc.lfr_m, lc.lfr_n) for k in ling_frames])
    h = lin.hidden(stack_frames(ling_in, lc.lfr_m, lc.lfr_n), l_len)
    out = {"ling_ctc": lin.ctc_loss(h, l_len, b["targets"], b["target_lengths"])}
    if commit:
        valid = torch.arange(h.shape[1])[None, :] < l_len[:, None]
        hv = h[valid].float()
        target = lin.centroids[lin.quantize(hv.detach())]
        out["commit"] = ((hv - target) ** 2).sum(-1).mean()
    if not semantic:
        return out
    normed = sem.norm(b["fbank"])
    t = stack_frames(normed, sc.stack, sc.stack).shape[1] * sc.stack
    frame_targets = {
        "mel": normed[:, :t],
        "lf0": b["lf0"][:, :t],
        "voiced": b["voiced"][:, :t],
        "energy": b["energy"][:, :t] / 5.0,
    }
    stk = stack_frames(normed, sc.stack, sc.stack)
    out |= sem.losses(stk, s_len, b["targets"], b["target_lengths"], frame_targets)
    return out


# ------------------------------------------------------------------------------------- training


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_tokenizer(cfg: TokenizerTrainConfig, resume: bool = False, progress: bool = True) -> Path:
    from tqdm import tqdm

    if cfg.init is None and (cfg.freeze_semantic or cfg.keep_centroids or cfg.commit_weight > 0):
        # before the features: their first preparation takes minutes
        raise ValueError(
            "freeze_semantic, keep_centroids and commit_weight need init (a trained tokenizer)"
        )
    torch.manual_seed(cfg.seed)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    # several corpora: "c3,babble" (features are cached per corpus)
    rows_all = [
        r
        for d in cfg.data.split(",")
        if d.strip()
        for r in prepare_features(Path(d.strip()), progress=progress)
    ]
    rows = [r for r in rows_all if r["split"] == "train"]
    if not rows:
        raise ValueError(f"{cfg.data} has no training clips")
    if cfg.init is None:
        vocab = PhonemeVocab.from_texts([r["phonemes"] for r in rows])
        tok = DualCodebookTokenizer(make_config(cfg, vocab))
        sample = torch.cat([r["fbank"].float() for r in rows[:2000]])
        tok.linguistic.norm.fit(sample)
        tok.semantic.norm.fit(sample)
    else:
        tok = DualCodebookTokenizer.load(cfg.init)
        vocab = tok.vocab
        if cfg.keep_centroids and cfg.freeze_semantic:
            tok.cfg.keeps_codes_of = tok.fingerprint()
    trained = (tok.linguistic,) if cfg.freeze_semantic else (tok.linguistic, tok.semantic)
    params = [p for m in trained for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.98))
    ckpt = out / "checkpoint.pt"
    step = 0
    rng = random.Random(cfg.seed)
    if resume and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        tok.linguistic.load_state_dict(state["linguistic"])
        tok.semantic.load_state_dict(state["semantic"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        rng.setstate(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        log.info("resumed at step %d", step)
    (out / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    tok.linguistic.train()
    tok.semantic.train(not cfg.freeze_semantic)
    max_frames = int(cfg.max_clip_seconds * 100)
    bf16 = use_bf16(cfg.bf16)
    aug_gen = torch.Generator().manual_seed(cfg.seed + step) if cfg.augment else None
    log.info("bf16 autocast: %s", bf16)
    it = batches(rows, cfg, rng)
    # a resumed run continues the same batch sequence
    for _ in range(step):
        next(it)
    logf = (out / "train_log.jsonl").open("a")
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress, desc="tokenizer")
    t0 = time.time()
    while step < cfg.steps:
        b = collate(next(it), vocab, max_frames)
        lr = (
            cfg.lr
            * min(1.0, (step + 1) / cfg.warmup)
            * 0.5
            * (1 + math.cos(math.pi * step / cfg.steps))
        )
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            losses = step_losses(
                tok,
                b,
                aug_gen,
                semantic=not cfg.freeze_semantic,
                commit=cfg.commit_weight > 0,
                tempo=cfg.tempo,
            )
        weights = cfg.loss_weights | {"commit": cfg.commit_weight}
        loss = sum(weights[k] * v for k, v in losses.items())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        bar.update(1)
        if step % 10 == 0 or step == cfg.steps:
            rec = {"step": step, "lr": lr, "loss": loss.item(), "s": round(time.time() - t0, 1)}
            rec |= {k: round(v.item(), 4) for k, v in losses.items()}
            logf.write(json.dumps(rec) + "\n")
            logf.flush()
            bar.set_postfix(
                loss=f"{float(loss.detach()):.3f}", ctc=f"{float(losses['ling_ctc'].detach()):.3f}"
            )
        if step % cfg.ckpt_every == 0 or step == cfg.steps:
            _atomic_save(
                {
                    "linguistic": tok.linguistic.state_dict(),
                    "semantic": tok.semantic.state_dict(),
                    "opt": opt.state_dict(),
                    "step": step,
                    "rng": rng.getstate(),
                    "torch_rng": torch.get_rng_state(),
                    "config": asdict(cfg),
                },
                ckpt,
            )
    bar.close()
    logf.close()
    tok.linguistic.eval()
    tok.semantic.eval()
    if not cfg.keep_centroids:
        fit_centroids(tok, rows, cfg.kmeans_frames, cfg.seed)
    tok.save(out)
    plot_training(out)
    return out


@torch.no_grad()
def fit_centroids(tok: DualCodebookTokenizer, rows: list[dict], max_frames: int, seed: int) -> None:
    """k-means on linguistic encoder outputs (MiniBatchKMeans, k-means++ init)."""
    from sklearn.cluster import MiniBatchKMeans

    lc = tok.cfg.linguistic
    rng = random.Random(seed)
    order = list(range(len(rows)))
    rng.shuffle(order)
    hs, total = [], 0
    for i in order:
        f = rows[i]["fbank"].float()[None]
        lfr = stack_frames(tok.linguistic.norm(f), lc.lfr_m, lc.lfr_n)
        if lfr.shape[1] == 0:
            continue
        h = tok.linguistic.hidden(lfr)[0]
        hs.append(h)
        total += len(h)
        if total >= max_frames:
            break
    x = torch.cat(hs).numpy()
    if len(x) < lc.n_codes:
        raise ValueError(f"k-means needs at least {lc.n_codes} frames, the corpus gave {len(x)}")
    km = MiniBatchKMeans(lc.n_codes, random_state=seed, batch_size=8192, n_init=1, max_iter=60)
    km.fit(x)
    tok.linguistic.centroids.copy_(torch.from_numpy(km.cluster_centers_).float())


def plot_training(out: Path) -> Path | None:
    path = out / "train_log.jsonl"
    if not path.exists():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    keys = [k for k in ("ling_ctc", "commit", "ctc", "mel", "lf0", "vuv", "energy") if k in rows[0]]
    fig, axes = plt.subplots(2, 4, figsize=(15, 6), constrained_layout=True)
    for ax in axes.flat[len(keys) :]:
        ax.axis("off")
    for ax, k in zip(axes.flat, keys, strict=False):
        ax.plot([r["step"] for r in rows], [r[k] for r in rows])
        ax.set_title(k)
        ax.set_xlabel("step")
    fig.savefig(out / "train_curves.png", dpi=90)
    plt.close(fig)
    return out / "train_curves.png"
