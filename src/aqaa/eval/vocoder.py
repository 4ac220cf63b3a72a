"""How well the vocoder speaks tokens (`aqaa eval vocoder`): held-out assistant clips, tokenized once
(the corpus token shard), vocoded, and judged against their source recordings.

- **Intelligibility**: Whisper-base WER of the resynthesis and of the source, against the transcript.
- **Quality**: DNSMOS P.808 of the resynthesis (and of the source, for reference), and of the
  mel vocoder's copy synthesis (source mel → waveform, no tokens): its ceiling, so a gap can be put
  on the flow or on the mel vocoder. Whisper WER of the copy synthesis too.
- **Frame-rate buzz**: the share of each clip's 40–2,000 Hz energy on the 50 Hz grid of the mel
  frames (`aqaa.eval.acoustics.frame_grid_share`), for the source, the resynthesis and the copy
  synthesis; speech sits near chance (0.10), a vocoder that repeats its phase every frame above it.
- **Seams**: each clip is also decoded by the streaming vocoder in 15-token slots, as the engine feeds
  it; the largest sample-to-sample jump within 2 samples of a chunk boundary is reported against the
  median and the 99th percentile of all jumps (a click stands far above both), with the relative RMS
  difference between streamed and offline audio.
- **Style retention**: a style's effect is its median F0 (semitones), speaking rate (log2) and RMS
  loudness (dB) against the mean of the neutral clips, for the sources and for the resyntheses
  separately. A (clip, cue) pair counts where the source's effect is clear (≥ 1 semitone, ≥ 7% rate,
  ≥ 1.5 dB); it is retained when the resynthesis moves the same way by ≥ 70% of the source's amount.
  Whispered sources must stay unvoiced (voicing ≤ 0.3).
- **Where the words go** (``decompose``): the flow's log-mel is split across mel bands into a
  spectral envelope (:func:`band_envelope`) and the fine structure left over (the pitch
  harmonics), and two hybrids are vocoded and heard by Whisper: the recording's envelope with the
  flow's fine structure, and the flow's envelope with the recording's fine structure (lowest 30
  bands, where harmonics are resolved). The first closing on the copy synthesis's WER puts the
  intelligibility gap in the envelope, i.e. in what the codes say (session 25, `TRAINING.md`).
- **Seen sentences**: the dialogue corpus repeats its templated answers across splits (half of c4's
  test clips speak a sentence that a training clip speaks too, in the same voice), so the WER is
  also reported over the clips whose sentence the train split of ``--data`` never speaks
  (``wer_resynth_unseen``): there the vocoder cannot have memorised the sentence.
"""

from __future__ import annotations

import json
import math
import random
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aqaa.data.schema import parse_tagged
from aqaa.eval.acoustics import (
    WHISPER_MAX_VOICING,
    Acoustics,
    dnsmos,
    frame_grid_share,
    measure,
)

#: (cue, minimum clear source effect).
CUES: tuple[tuple[str, float], ...] = (("f0_st", 1.0), ("rate_log2", 0.1), ("rms_db", 1.5))
RETAIN = 0.7
SLOT = 15  # audio tokens per LM slot: what the engine hands the streaming vocoder at a time


@dataclass
class ClipResult:
    id: str
    style: str
    text: str
    duration_s: float
    transcript_source: str
    transcript_resynth: str
    wer_source: float
    wer_resynth: float
    dnsmos_source: float | None
    dnsmos_resynth: float | None
    seam_jump: float
    median_jump: float
    p99_jump: float
    stream_rel_diff: float
    source: dict[str, Any] = field(default_factory=dict)
    resynth: dict[str, Any] = field(default_factory=dict)
    wer_copy: float | None = None
    dnsmos_copy: float | None = None
    grid_source: float | None = None
    grid_resynth: float | None = None
    grid_copy: float | None = None
    wer_true_envelope: float | None = None
    wer_true_fine: float | None = None
    #: the train split of the corpus has an assistant clip speaking the same sentence
    seen: bool | None = None


def train_sentences(corpus: Path) -> set[str]:
    """Every sentence an assistant clip of the corpus's train split speaks."""
    from aqaa.lm.data import iter_records

    return {
        c["text"]
        for r in iter_records(corpus, "train")
        for t in r["turns"]
        for c in t.get("answer_clips", [])
    }


def pick_clips(corpus: Path, split: str, n: int, seed: int = 0) -> list[dict[str, Any]]:
    """Up to `n` assistant clips of `split`: every style present at least once, then neutral and
    the rest at random (deterministic for `seed`)."""
    from aqaa.lm.data import iter_records

    clips = [
        {"id": f"{r['id']}/{k}/{j}", **c}
        for r in iter_records(corpus, split)
        for k, t in enumerate(r["turns"])
        for j, c in enumerate(t.get("answer_clips", []))
        if c.get("audio") and len(c.get("codes", [])) >= 5 * 8
    ]
    if not clips:
        raise ValueError(f"no assistant clips with audio in the {split} shard of {corpus}")
    rng = random.Random(seed)
    rng.shuffle(clips)
    first: dict[str, dict] = {}
    for c in clips:
        first.setdefault(c["style"], c)
    chosen = list(first.values())
    # Neutral clips are the baseline of every style effect: make them a third of the rest.
    neutral = [c for c in clips if c["style"] == "neutral" and c not in chosen]
    others = [c for c in clips if c not in chosen and c["style"] != "neutral"]
    need = max(n - len(chosen), 0)
    chosen += neutral[: max(need // 3, min(need, 8))]
    chosen += others[: max(n - len(chosen), 0)]
    return chosen[: max(n, len(first))]


def _jumps(audio: np.ndarray, boundaries: list[int]) -> tuple[float, float, float]:
    d = np.abs(np.diff(audio.astype(np.float64)))
    if len(d) == 0:
        return 0.0, 0.0, 0.0
    near = [d[max(b - 2, 0) : b + 2].max() for b in boundaries if 0 < b < len(d)]
    return (float(max(near, default=0.0)), float(np.median(d)), float(np.percentile(d, 99)))


def _effects(m: Acoustics, base: dict[str, float]) -> dict[str, float | None]:
    out: dict[str, float | None] = dict.fromkeys(c for c, _ in CUES)
    if m.f0_hz and base.get("f0_st") is not None:
        out["f0_st"] = 12.0 * math.log2(m.f0_hz / 100.0) - base["f0_st"]
    if m.rate_wps and base.get("rate_log2") is not None:
        out["rate_log2"] = math.log2(m.rate_wps) - base["rate_log2"]
    if m.rms_db is not None and base.get("rms_db") is not None:
        out["rms_db"] = m.rms_db - base["rms_db"]
    return out


def _baseline(ms: list[Acoustics]) -> dict[str, float]:
    f0 = [12.0 * math.log2(m.f0_hz / 100.0) for m in ms if m.f0_hz]
    rate = [math.log2(m.rate_wps) for m in ms if m.rate_wps]
    rms = [m.rms_db for m in ms if m.rms_db is not None]
    return {
        k: statistics.fmean(v)
        for k, v in (("f0_st", f0), ("rate_log2", rate), ("rms_db", rms))
        if v
    }


def style_retention(results: list[ClipResult]) -> dict[str, Any]:
    """Per style and overall: how much of each clear source effect the resynthesis keeps."""
    neutral = [r for r in results if r.style == "neutral"]
    if not neutral:
        return {"error": "no neutral clips: no baseline"}
    b_src = _baseline([Acoustics.from_dict(r.source) for r in neutral])
    b_res = _baseline([Acoustics.from_dict(r.resynth) for r in neutral])
    per_style: dict[str, dict[str, Any]] = {}
    kept = total = 0
    for r in results:
        if r.style == "neutral":
            continue
        s = per_style.setdefault(r.style, {"pairs": 0, "kept": 0, "ratios": {}})
        src, res = Acoustics.from_dict(r.source), Acoustics.from_dict(r.resynth)
        if r.style == "whisper":
            s["pairs"] += 1
            ok = res.voicing is not None and res.voicing <= WHISPER_MAX_VOICING
            s["kept"] += ok
            s["ratios"].setdefault("unvoiced", []).append(ok)
            continue
        e_src, e_res = _effects(src, b_src), _effects(res, b_res)
        for cue, floor in CUES:
            a, b = e_src[cue], e_res[cue]
            if a is None or b is None or abs(a) < floor:
                continue
            ratio = b / a
            s["pairs"] += 1
            s["kept"] += ratio >= RETAIN
            s["ratios"].setdefault(cue, []).append(round(ratio, 3))
    for s in per_style.values():
        kept += s["kept"]
        total += s["pairs"]
        s["retained"] = s["kept"] / s["pairs"] if s["pairs"] else None
    return {"retained": kept / total if total else None, "pairs": total, "per_style": per_style,
            "baseline_source": b_src, "baseline_resynth": b_res}  # fmt: skip


def evaluate_vocoder(
    corpus: Path,
    vocoder_dir: Path | None = None,
    split: str = "test",
    n: int = 40,
    seed: int = 0,
    progress: bool = True,
    decompose: bool = False,
) -> dict[str, Any]:
    """Run the whole evaluation; returns a JSON-able dict (summary, style retention, clips).
    ``decompose`` adds the envelope / fine-structure hybrids' WER (see the module)."""
    from tqdm import tqdm

    from aqaa.audio import load_audio
    from aqaa.data.shards import shard_tokenizer
    from aqaa.eval.judge import WhisperJudge, wer
    from aqaa.vocoder.model import Vocoder

    voc = Vocoder.load(vocoder_dir)
    voc.check_tokenizer(shard_tokenizer(corpus), f"the token shards of {corpus}")
    judge = WhisperJudge()
    seen = train_sentences(corpus)
    results: list[ClipResult] = []
    for c in tqdm(pick_clips(corpus, split, n, seed), disable=not progress, unit="clip"):
        text = " ".join(x.text for x in parse_tagged(c["text"])) or c["text"]
        src = load_audio(corpus / c["audio"], target_rate=voc.sample_rate, normalize=False)
        codes = np.asarray(c["codes"], dtype=np.int64)
        res, sr = voc.decode(codes, seed=seed)
        chunks = list(
            voc.stream([codes[i : i + SLOT] for i in range(0, len(codes), SLOT)], seed=seed)
        )
        streamed = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        bounds = list(np.cumsum([len(x) for x in chunks])[:-1])
        seam, med, p99 = _jumps(streamed, bounds)
        m = min(len(streamed), len(res))
        rel = float(
            np.sqrt(np.mean((streamed[:m] - res[:m]) ** 2))
            / (np.sqrt(np.mean(res[:m] ** 2)) + 1e-9)
        )
        t_src = judge.transcribe(src, sr).text
        t_res = judge.transcribe(res, sr).text
        q_src, q_res = dnsmos(src, sr), dnsmos(res, sr)
        copy = voc.copy_synthesis(src)
        q_copy = dnsmos(copy, sr)
        hybrid: list[float | None] = [None, None]
        if decompose:
            from aqaa.vocoder.mel import fit_frames, mel_spectrogram

            flow = voc.decode_mel(codes, seed=seed).numpy()
            true = fit_frames(mel_spectrogram(src, voc.config.mel), len(flow), voc.config.mel)
            hybrid = [
                wer(text, judge.transcribe(voc.vocode_mel(m), sr).text)
                for m in swap_structure(flow, true.numpy())
            ]
        results.append(ClipResult(
            c["id"], c["style"], text, round(len(res) / sr, 3), t_src, t_res,
            wer(text, t_src), wer(text, t_res),
            q_src and q_src["p808"], q_res and q_res["p808"],
            seam, med, p99, rel,
            measure(src, sr, transcript=text).to_dict(), measure(res, sr, transcript=text).to_dict(),
            wer(text, judge.transcribe(copy, sr).text), q_copy and q_copy["p808"],
            *(frame_grid_share(x, sr, frame_rate=voc.config.mel.frame_rate) for x in (src, res, copy)),
            *hybrid, c["text"] in seen,
        ))  # fmt: skip
    return summarize(results)


def band_envelope(logmel: np.ndarray) -> np.ndarray:
    """``(F, n_mels)`` log-mel → its spectral envelope: smoothed across bands by a [1 2 3 2 1]/9
    kernel (edge bands repeated). ``logmel − band_envelope(logmel)`` is the fine structure."""
    k = np.array([1.0, 2.0, 3.0, 2.0, 1.0]) / 9.0
    p = np.pad(np.asarray(logmel, dtype=np.float64), ((0, 0), (2, 2)), mode="edge")
    n = logmel.shape[1]
    return sum(k[i] * p[:, i : i + n] for i in range(5)).astype(np.float32)


def swap_structure(
    flow: np.ndarray, true: np.ndarray, fine_bands: int = 30
) -> tuple[np.ndarray, np.ndarray]:
    """(the true envelope + the flow's fine structure, the flow's envelope + the true fine
    structure in the lowest ``fine_bands`` bands) of two aligned ``(F, n_mels)`` log-mels."""
    env_f, env_t = band_envelope(flow), band_envelope(true)
    true_env = env_t + (flow - env_f)
    true_fine = flow.copy()
    true_fine[:, :fine_bands] = (env_f + (true - env_t))[:, :fine_bands]
    return true_env, true_fine


def summarize(results: list[ClipResult]) -> dict[str, Any]:
    def mean(xs: list[float | None]) -> float | None:
        v = [x for x in xs if x is not None]
        return round(statistics.fmean(v), 4) if v else None

    words = [len(r.text.split()) for r in results]

    def pooled(attr: str, keep: list[bool] | None = None) -> float:
        """WER pooled over words, not averaged over clips (over the clips in `keep`)."""
        keep = keep or [True] * len(results)
        pairs = [(r, w) for r, w, k in zip(results, words, keep, strict=True) if k]
        return round(
            sum(getattr(r, attr) * w for r, w in pairs) / max(sum(w for _, w in pairs), 1), 4
        )

    unseen = [r.seen is False for r in results]

    style = style_retention(results)
    summary = {
        "clips": len(results),
        "wer_resynth": pooled("wer_resynth"),
        "wer_source": pooled("wer_source"),
        **(
            {
                "clips_unseen": sum(unseen),
                "wer_resynth_unseen": pooled("wer_resynth", unseen),
                "wer_source_unseen": pooled("wer_source", unseen),
            }
            if any(unseen)
            else {}
        ),
        "dnsmos_p808_resynth": mean([r.dnsmos_resynth for r in results]),
        "dnsmos_p808_source": mean([r.dnsmos_source for r in results]),
        "dnsmos_p808_copy": mean([r.dnsmos_copy for r in results]),
        "wer_copy": None if any(r.wer_copy is None for r in results) else pooled("wer_copy"),
        **{
            k: pooled(k)
            for k in ("wer_true_envelope", "wer_true_fine")
            if all(getattr(r, k) is not None for r in results)
        },
        "frame_grid_source": mean([r.grid_source for r in results]),
        "frame_grid_resynth": mean([r.grid_resynth for r in results]),
        "frame_grid_copy": mean([r.grid_copy for r in results]),
        "seam_over_median_jump": round(
            max(r.seam_jump / max(r.median_jump, 1e-9) for r in results), 2
        ),
        "seam_over_p99_jump": round(max(r.seam_jump / max(r.p99_jump, 1e-9) for r in results), 2),
        "stream_vs_offline_rel_rms": round(max(r.stream_rel_diff for r in results), 4),
        "style_retained": None if style.get("retained") is None else round(style["retained"], 3),
        "style_pairs": style.get("pairs"),
    }
    return {"summary": summary, "style": style, "clips": [asdict(r) for r in results]}


def write_report(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "vocoder_eval.json").write_text(json.dumps(result, indent=2))
