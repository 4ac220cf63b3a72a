"""`aqaa eval tokenizer`: how good are the model's ears?

A probe set is rendered once (deterministic): test-split questions spoken by the reserved test
voices (festival `cmu_us_slt_arctic_hts`, flite `awb`) in eight styles (neutral, fast, slow, high, low,
loud, quiet, whisper), plus the same sentences and styles by a few training voices, on which the
style probe is fitted. Metrics, on the reserved voices:

- token rates (Hz) of both streams;
- codebook usage (share of codes seen) and perplexity per stream;
- phone error rate of the linguistic CTC head (greedy decoding) against espeak-ng phonemes, also
  per voice, the training voices included (their gap to the reserved ones is the speaker gap);
- phone error rate on the assistant's voice (piper `joe`, every style), when it is installed: what
  the LM's speech can carry at best, since the vocoder sees only these codes (a phone error rate
  of ~12% already costs about 40% of words through Whisper, session 10 in `TRAINING.md`); the
  style probe leaves it out;
- speaker invariance: agreement of the linguistic tokens of the same neutral sentence spoken by
  two voices (1 − normalised edit distance of the de-duplicated sequences);
- style probe: a logistic regression on speaker-normalised statistics of the semantic codes
  (FSQ level histograms, means, spreads, code change rate) and of the prosody that the
  tokenizer's own reconstruction decoder reads back from them (`decoded_prosody`: log-F0 level
  and spread, voicing, energy, voicing flips and spectral flux for rate, spectral tilt), trained
  on the training voices and
  tested on the reserved ones. Speaker normalisation (subtracting the voice's mean neutral
  features) is standard in paralinguistics: "high" is high *for that speaker*.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from aqaa.data.styles import style_prosody
from aqaa.data.voices import ASSISTANT_VOICE, RESERVED_VOICES, VoiceBank
from aqaa.tokenizer.dual import DualCodebookTokenizer
from aqaa.tokenizer.features import fbank, stack_frames
from aqaa.tokenizer.linguistic import N_MELS

PROBE_STYLES = ("neutral", "fast", "slow", "high", "low", "loud", "quiet", "whisper")
#: Training voices the style probe is fitted on: engines, sexes and accents mixed. Three voices gave
#: 68.8% on the reserved ones with tok4 (session 8); eight are measured in TRAINING.md.
PROBE_TRAIN_VOICES = (
    "espeak:en-us+m3",
    "flite:rms",
    "festival:kal_diphone~f",
    "flite:kal16",
    "flite:kal16~f",
    "festival:ked_diphone",
    "espeak:en-gb+f2",
    "espeak:en-us+klatt",
)


@dataclass
class ProbeClip:
    voice: str
    style: str
    sentence: int
    text: str
    audio: np.ndarray


def probe_sentences(n: int, seed: int = 0) -> list[str]:
    from aqaa.data.schema import CONTENT_CATEGORIES as cats
    from aqaa.data.tasks import generate

    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        t = generate(cats[len(out) % len(cats)], rng, "test").turns[0].human_text
        if t not in out:
            out.append(t)
    return out


def default_probe_voices(bank: VoiceBank | None = None) -> tuple[str, ...]:
    """Reserved voices, `PROBE_TRAIN_VOICES`, and the assistant's voice where it is installed."""
    bank = bank or VoiceBank.discover()
    assistant = (ASSISTANT_VOICE,) if ASSISTANT_VOICE in bank else ()
    return (*sorted(RESERVED_VOICES), *PROBE_TRAIN_VOICES, *assistant)


def render_probe_set(
    n_sentences: int = 12, voices: tuple[str, ...] | None = None, progress: bool = True
) -> list[ProbeClip]:
    from tqdm import tqdm

    bank = VoiceBank.discover()
    voices = voices or default_probe_voices(bank)
    sentences = probe_sentences(n_sentences)
    jobs = [(v, s, i) for v in voices for s in PROBE_STYLES for i in range(len(sentences))]
    clips = []
    for v, s, i in tqdm(jobs, disable=not progress, desc="probe set", unit="clip"):
        x = bank.render(sentences[i], v, style_prosody(s), purpose="eval")
        clips.append(ProbeClip(v, s, i, sentences[i], x))
    return clips


def load_or_render_probe_set(
    n_sentences: int, cache: Path | None, voices: tuple[str, ...] | None = None
) -> list[ProbeClip]:
    """The probe set: clips of `voices` (default: reserved + `PROBE_TRAIN_VOICES`) are taken from
    `cache` where it holds them for `n_sentences`; missing voices are rendered and the cache updated."""
    import pickle

    voices = voices or default_probe_voices()
    clips: list[ProbeClip] = []
    if cache is not None and cache.exists():
        clips = [c for c in pickle.loads(cache.read_bytes()) if c.voice in voices]
        if len({c.sentence for c in clips}) != n_sentences:
            clips = []
    have = {c.voice for c in clips}
    missing = tuple(v for v in voices if v not in have)
    if missing:
        clips += render_probe_set(n_sentences, missing)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(pickle.dumps(clips))
    return clips


def edit_distance(a: list[int], b: list[int]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


def dedup(seq: list[int]) -> list[int]:
    return [x for i, x in enumerate(seq) if i == 0 or x != seq[i - 1]]


def usage(codes: np.ndarray, size: int) -> dict[str, float]:
    counts = np.bincount(codes, minlength=size).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return {"used": float((counts > 0).mean()), "perplexity": float(np.exp(-(p * np.log(p)).sum()))}


@torch.no_grad()
def phone_error_rate(tok: DualCodebookTokenizer, clips: list[ProbeClip]) -> float:
    from aqaa.data.corpus import phonemize

    lc = tok.cfg.linguistic
    errors = total = 0
    cache: dict[str, list[int]] = {}
    for c in clips:
        ref = cache.setdefault(c.text, tok.vocab.encode(phonemize(c.text)))
        lfr = stack_frames(tok.linguistic.norm(fbank(c.audio)[None]), lc.lfr_m, lc.lfr_n)
        ids = tok.linguistic.ctc_logits(tok.linguistic.hidden(lfr))[0].argmax(-1).tolist()
        hyp = [i for i in dedup(ids) if i != 0]
        errors += edit_distance(hyp, ref)
        total += len(ref)
    return errors / max(total, 1)


def decoded_prosody(tok: DualCodebookTokenizer, semantic: np.ndarray) -> np.ndarray:
    """Prosody read back from the codes by the tokenizer's own reconstruction decoder (a fixed
    function of the tokens, trained to predict log-F0, voicing, energy and mel from them):
    median and spread of log-F0 over voiced frames, voiced share, energy mean and spread, voicing
    flips and spectral flux per frame (rate), and the spectral tilt (whisper, effort)."""
    sem = tok.semantic
    with torch.no_grad():
        q = sem.fsq.codes_to_vectors(torch.from_numpy(semantic).long())[None]
        r = sem.recon(sem.decoder(q)).float().view(-1, N_MELS + 3).numpy()
    mel, lf0, vuv, energy = r[:, :N_MELS], r[:, N_MELS], r[:, N_MELS + 1] > 0, r[:, N_MELS + 2]
    f0 = lf0[vuv] if vuv.sum() >= 3 else lf0
    flips = float(np.mean(vuv[1:] != vuv[:-1])) if len(vuv) > 1 else 0.0
    flux = float(np.abs(np.diff(mel, axis=0)).mean()) if len(mel) > 1 else 0.0
    tilt = float(mel[:, N_MELS // 2 :].mean() - mel[:, : N_MELS // 4].mean())
    return np.array(
        [
            np.median(f0),
            np.percentile(f0, 90) - np.percentile(f0, 10),
            vuv.mean(),
            energy.mean(),
            energy.std(),
            flips,
            flux,
            tilt,
        ]
    )


def style_features(tok: DualCodebookTokenizer, semantic: np.ndarray) -> np.ndarray:
    """Code statistics and `decoded_prosody` of one clip's semantic codes."""
    vec = tok.semantic.fsq.codes_to_vectors(torch.from_numpy(semantic)).numpy()  # (T, 4)
    levels = tok.semantic.fsq.levels
    hist = [
        np.bincount(((vec[:, d] + 1) * (levels[d] // 2)).round().astype(int), minlength=levels[d])[
            : levels[d]
        ]
        / len(vec)
        for d in range(vec.shape[1])
    ]
    change = float(np.mean(semantic[1:] != semantic[:-1])) if len(semantic) > 1 else 0.0
    return np.concatenate(
        [
            *hist,
            vec.mean(0),
            vec.std(0),
            [change, len(set(semantic.tolist())) / len(semantic)],
            decoded_prosody(tok, semantic),
        ]
    )


def style_probe(
    tok: DualCodebookTokenizer, clips: list[ProbeClip], sem: list[np.ndarray]
) -> dict[str, Any]:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    feats = np.stack([style_features(tok, s) for s in sem])
    voices = sorted({c.voice for c in clips})
    for v in voices:  # speaker normalisation by the voice's neutral renderings
        idx = [i for i, c in enumerate(clips) if c.voice == v]
        neutral = [i for i in idx if clips[i].style == "neutral"]
        feats[idx] -= feats[neutral].mean(0)
    labels = np.array([PROBE_STYLES.index(c.style) for c in clips])
    test = np.array([c.voice in RESERVED_VOICES for c in clips])
    scaler = StandardScaler().fit(feats[~test])
    clf = LogisticRegression(max_iter=2000, C=1.0).fit(
        scaler.transform(feats[~test]), labels[~test]
    )
    pred = clf.predict(scaler.transform(feats[test]))
    truth = labels[test]
    confusion = {  # true style -> predicted style -> clips
        s: dict(Counter(PROBE_STYLES[j] for j in pred[truth == k]))
        for k, s in enumerate(PROBE_STYLES)
    }
    per_style = {s: row.get(s, 0) / max(sum(row.values()), 1) for s, row in confusion.items()}
    return {
        "accuracy": float(np.mean(pred == truth)),
        "per_style": per_style,
        "confusion": confusion,
    }


def evaluate_tokenizer(
    tok: DualCodebookTokenizer, clips: list[ProbeClip], out: Path | None = None
) -> dict[str, Any]:
    toks = [tok.encode_waveform(c.audio) for c in clips]
    reserved = [i for i, c in enumerate(clips) if c.voice in RESERVED_VOICES]
    humans = [i for i, c in enumerate(clips) if c.voice != ASSISTANT_VOICE]
    assistant = [c for c in clips if c.voice == ASSISTANT_VOICE]
    dur = sum(len(clips[i].audio) for i in reserved) / 16000
    ling = np.concatenate([toks[i].linguistic for i in reserved])
    sem = np.concatenate([toks[i].semantic for i in reserved])
    # speaker invariance: the same neutral sentence by the two reserved voices
    agree = []
    rv = sorted(RESERVED_VOICES)
    by_key = {(c.voice, c.style, c.sentence): i for i, c in enumerate(clips)}
    for s in {c.sentence for c in clips}:
        a, b = by_key.get((rv[0], "neutral", s)), by_key.get((rv[1], "neutral", s))
        if a is None or b is None:
            continue
        x, y = dedup(toks[a].linguistic.tolist()), dedup(toks[b].linguistic.tolist())
        agree.append(1 - edit_distance(x, y) / max(len(x), len(y), 1))
    result = {
        "reserved_voices": rv,
        "probe_clips": len(clips),
        "reserved_audio_seconds": round(dur, 1),
        "rates_hz": {"linguistic": len(ling) / dur, "semantic": len(sem) / dur},
        "linguistic": usage(ling, tok.cfg.linguistic.n_codes),
        "semantic": usage(sem, tok.semantic.fsq.codebook_size),
        "phone_error_rate": phone_error_rate(tok, [clips[i] for i in reserved]),
        "phone_error_rate_neutral": phone_error_rate(
            tok, [clips[i] for i in reserved if clips[i].style == "neutral"]
        ),
        "phone_error_rate_by_voice": {
            v: phone_error_rate(tok, [c for c in clips if c.voice == v])
            for v in sorted({c.voice for c in clips})
        },
        "phone_error_rate_assistant": phone_error_rate(tok, assistant) if assistant else None,
        "speaker_invariance": float(np.mean(agree)) if agree else None,
        "style_probe": style_probe(
            tok, [clips[i] for i in humans], [toks[i].semantic for i in humans]
        ),
    }
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
    return result
