"""The dual-codebook tokenizer: ids, rates, FSQ, streaming = offline, save/load, a tiny training run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from aqaa.tokenizer import DualCodebookTokenizer, TokenizerConfig
from aqaa.tokenizer import ids as audio_ids
from aqaa.tokenizer.encoder import EncoderConfig
from aqaa.tokenizer.features import fbank, stack_frames, stacked_frames
from aqaa.tokenizer.fsq import FSQ
from aqaa.tokenizer.linguistic import LinguisticConfig
from aqaa.tokenizer.phonemes import PhonemeVocab, ipa_symbols
from aqaa.tokenizer.semantic import SemanticConfig

SR = 16000


def tiny_tokenizer(seed: int = 0, cmn_prior: int = 0) -> DualCodebookTokenizer:
    torch.manual_seed(seed)
    enc = dict(dim=32, layers=2, heads=2, left_chunks=2)
    cfg = TokenizerConfig(
        LinguisticConfig(
            n_phonemes=5,
            cmn_prior=cmn_prior,
            encoder=EncoderConfig(input_dim=560, chunk=4, **enc),
        ),
        SemanticConfig(
            n_phonemes=5,
            encoder=EncoderConfig(input_dim=320, chunk=6, **enc),
            decoder=EncoderConfig(input_dim=4, chunk=6, dim=32, layers=1, heads=2),
        ),
        ["<blank>", "a", "b", "c", "d"],
    )
    tok = DualCodebookTokenizer(cfg)
    tok.linguistic.centroids.normal_()
    return tok


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    x = np.sin(2 * np.pi * np.cumsum(f0) / SR) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2)
    x = x + 0.05 * rng.standard_normal(len(t))
    return (x / np.abs(x).max() * 0.999).astype(np.float32)


def test_interleave_split_round_trip_and_errors() -> None:
    rng = np.random.default_rng(0)
    ling = rng.integers(0, 1024, 11)
    sem = rng.integers(0, 4096, 16)
    codes = audio_ids.interleave(ling, sem)
    assert len(codes) == 5 * 5  # min(11 // 2, 16 // 3) groups, tails dropped
    assert codes.min() >= 0 and codes.max() < audio_ids.AUDIO_CODES == 5120
    assert all(audio_ids.is_linguistic(c) for c in codes.reshape(-1, 5)[:, :2].ravel())
    assert all(audio_ids.is_semantic(c) for c in codes.reshape(-1, 5)[:, 2:].ravel())
    back_l, back_s = audio_ids.split(codes)
    np.testing.assert_array_equal(back_l, ling[:10])
    np.testing.assert_array_equal(back_s, sem[:15])
    with pytest.raises(ValueError, match="linguistic codes must be in"):
        audio_ids.interleave(np.array([1024, 0]), np.array([0, 0, 0]))
    with pytest.raises(ValueError, match="multiple of 5"):
        audio_ids.split(codes[:7])
    with pytest.raises(ValueError, match="not \\[l l s s s\\]"):
        audio_ids.split(np.array([1500, 0, 1024, 1024, 1024]))


def test_phoneme_symbols() -> None:
    assert ipa_symbols("həlˈoʊ wˈɜːld") == ["h", "ə", "l", "o", "ʊ", "w", "ɜː", "l", "d"]
    v = PhonemeVocab.from_texts(["həlˈoʊ", "wˈɜːld"])
    assert v.symbols[0] == "<blank>"
    assert v.decode(v.encode("wɜːld")) == ["w", "ɜː", "l", "d"]


def test_fsq_codes_and_vectors_agree() -> None:
    fsq = FSQ((8, 8, 8, 8))
    assert fsq.codebook_size == 4096
    z = torch.randn(1000, 4) * 3
    q, codes = fsq(z)
    assert codes.min() >= 0 and codes.max() < 4096
    assert len(codes.unique()) > 500
    torch.testing.assert_close(fsq.codes_to_vectors(codes), q)
    z.requires_grad_(True)
    fsq(z)[0].sum().backward()
    assert z.grad is not None and z.grad.abs().sum() > 0  # straight-through gradient


def test_token_rates_over_ten_seconds() -> None:
    tok = tiny_tokenizer()
    out = tok.encode(speechlike(10.0), SR)
    assert abs(len(out.linguistic) - 167) <= 2
    assert abs(len(out.semantic) - 250) <= 2
    assert out.linguistic.max() < 1024 and out.semantic.max() < 4096
    assert len(out.codes) % 5 == 0 and out.codes.max() < 5120
    assert out.rates["interleaved_hz"] == pytest.approx(41.67, abs=0.5)
    f = fbank(speechlike(1.0))
    assert stack_frames(f, 7, 6).shape == (stacked_frames(len(f), 7, 6), 560)


def test_encode_accepts_any_rate_and_refuses_silence() -> None:
    tok = tiny_tokenizer()
    x = speechlike(2.0)
    import soxr

    a = tok.encode(x, SR).codes
    b = tok.encode(soxr.resample(x, SR, 44100), 44100).codes
    assert abs(len(a) - len(b)) <= 5
    from aqaa.audio import SilentAudioError

    with pytest.raises(SilentAudioError):
        tok.encode(np.zeros(SR, np.float32), SR)


@pytest.mark.parametrize(("seed", "cmn_prior"), [(0, 0), (1, 0), (2, 4)])
def test_streaming_equals_offline(seed: int, cmn_prior: int) -> None:
    tok = tiny_tokenizer(seed, cmn_prior)
    x = speechlike(4.3, seed)
    offline = tok.encode_waveform(x)
    stream = tok.stream(gain=1.0)
    rng = np.random.default_rng(seed)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(50, 6000))
        parts.append(stream.push(x[i : i + n]))
        i += n
    parts.append(stream.flush())
    np.testing.assert_array_equal(np.concatenate(parts), offline.codes)
    np.testing.assert_array_equal(stream.linguistic, offline.linguistic)
    np.testing.assert_array_equal(stream.semantic, offline.semantic)
    with pytest.raises(RuntimeError, match="flushed"):
        stream.push(x[:100])


def test_online_mean_normalisation_known_values_and_chunking() -> None:
    from aqaa.tokenizer.linguistic import CmnState

    lin = tiny_tokenizer(cmn_prior=2).linguistic
    x = torch.zeros(1, 4, 3)
    x[0, :, 0] = torch.tensor([3.0, 3.0, 3.0, 3.0])
    y = lin.cmn(x)
    # y_t = x_t - sum_{s<=t} x_s / (2 + t + 1): 3 - 3/3, 3 - 6/4, 3 - 9/5, 3 - 12/6
    torch.testing.assert_close(y[0, :, 0], torch.tensor([2.0, 1.5, 1.2, 1.0]))
    assert torch.equal(y[0, :, 1:], torch.zeros(4, 2))
    # a voice's constant spectral offset c fades as c * prior / (prior + t + 1)
    c = torch.tensor([0.5, -1.0, 2.0])
    z = torch.randn(1, 30, 3)
    shift = lin.cmn(z + c) - lin.cmn(z)
    expected = c * 2 / (2 + torch.arange(1, 31, dtype=torch.float32))[:, None]
    torch.testing.assert_close(shift[0], expected)
    # chunked with a carried state == offline, bit for bit
    state = CmnState()
    parts = [lin.cmn(z[:, a:b], state) for a, b in ((0, 7), (7, 8), (8, 30))]
    assert torch.equal(torch.cat(parts, 1), lin.cmn(z))
    assert state.count == 30
    # off by default: configs written before it load unchanged
    assert torch.equal(tiny_tokenizer().linguistic.cmn(z), z)


def test_save_load_round_trip(tmp_path: Path) -> None:
    tok = tiny_tokenizer()
    tok.save(tmp_path, dtype=torch.float32)
    again = DualCodebookTokenizer.load(tmp_path)
    x = speechlike(3.0)
    np.testing.assert_array_equal(tok.encode_waveform(x).codes, again.encode_waveform(x).codes)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["linguistic"]["lfr_m"] == 7 and cfg["semantic"]["fsq_levels"] == [8, 8, 8, 8]
    with pytest.raises(FileNotFoundError, match="aqaa train tokenizer"):
        DualCodebookTokenizer.load(tmp_path / "missing")


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aqaa.data.corpus import BuildConfig, build_corpus

    out = tmp_path_factory.mktemp("tokcorpus")
    build_corpus(BuildConfig(out=out, hours=0.006, seed=11, workers=2), progress=False)
    return out


def test_tiny_training_run_loss_falls_and_resumes(tiny_corpus: Path, tmp_path: Path) -> None:
    from aqaa.data.shards import tokenize_corpus
    from aqaa.train.tokenizer import TokenizerTrainConfig, train_tokenizer

    kw = dict(
        data=str(tiny_corpus),
        out=str(tmp_path / "tok"),
        batch_seconds=12,
        warmup=3,
        ckpt_every=5,
        kmeans_frames=1000,
        dim=32,
        layers=1,
        heads=2,
        n_codes=32,
        lr=3e-3,
    )
    train_tokenizer(TokenizerTrainConfig(steps=10, **kw), progress=False)
    # "killed" after 10 steps: resume continues to 30
    train_tokenizer(TokenizerTrainConfig(steps=30, **kw), resume=True, progress=False)
    log = [json.loads(x) for x in (tmp_path / "tok" / "train_log.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in log]
    assert steps[-1] == 30 and 20 in steps
    first = np.mean([r["loss"] for r in log[:2]])
    last = np.mean([r["loss"] for r in log[-2:]])
    assert last < first
    tok = DualCodebookTokenizer.load(tmp_path / "tok")
    counts = tokenize_corpus(tiny_corpus, tok, progress=False)
    assert sum(counts.values()) > 0
    record = json.loads((tiny_corpus / "tokens" / "tokenizer.json").read_text())
    assert record == {"fingerprint": tok.fingerprint(), "directory": str(tmp_path / "tok")}
    row = json.loads((tiny_corpus / "tokens" / "train.jsonl").read_text().splitlines()[0])
    t = row["turns"][0]
    assert len(t["human_codes"]) % 5 == 0 and len(t["human_codes"]) > 0
    assert all(0 <= c < 5120 for c in t["human_codes"])
    assert t["answer_clips"][0]["audio"].endswith(".flac")


def test_fine_tune_keeps_semantic_codes_and_codebook(tiny_corpus: Path, tmp_path: Path) -> None:
    """--init with a frozen semantic branch and kept centroids: only the linguistic encoder moves,
    so the semantic codes stay identical and code N keeps its centroid."""
    from aqaa.train.tokenizer import TokenizerTrainConfig, train_tokenizer

    kw = dict(data=str(tiny_corpus), batch_seconds=12, warmup=2, ckpt_every=5,
              kmeans_frames=1000, dim=32, layers=1, heads=2, n_codes=32, lr=3e-3)  # fmt: skip
    train_tokenizer(TokenizerTrainConfig(steps=4, out=str(tmp_path / "a"), **kw), progress=False)
    base = DualCodebookTokenizer.load(tmp_path / "a")
    cfg = TokenizerTrainConfig(steps=6, out=str(tmp_path / "b"), init=str(tmp_path / "a"),
                               freeze_semantic=True, keep_centroids=True, commit_weight=0.1, **kw)  # fmt: skip
    train_tokenizer(cfg, progress=False)
    tuned = DualCodebookTokenizer.load(tmp_path / "b")
    assert torch.equal(tuned.linguistic.centroids, base.linguistic.centroids)
    sd_a, sd_b = base.state_dict(), tuned.state_dict()
    assert all(torch.equal(sd_a[k], sd_b[k]) for k in sd_a if k.startswith("semantic."))
    moved = [
        k for k in sd_a if k.startswith("linguistic.encoder") and not torch.equal(sd_a[k], sd_b[k])
    ]
    assert moved
    x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    assert np.array_equal(base.encode(x, 16000).semantic, tuned.encode(x, 16000).semantic)
    log = [json.loads(x) for x in (tmp_path / "b" / "train_log.jsonl").read_text().splitlines()]
    assert "commit" in log[-1] and "mel" not in log[-1]
    with pytest.raises(ValueError, match="need init"):
        train_tokenizer(TokenizerTrainConfig(steps=1, out=str(tmp_path / "c"), keep_centroids=True,
                                             **kw), progress=False)  # fmt: skip


def test_tempo_perturb_scales_frames_and_keeps_content() -> None:
    from aqaa.train.tokenizer import tempo_perturb

    gen = torch.Generator().manual_seed(0)
    fb = torch.zeros(3, 240, 80)
    fb[:, :, 0] = torch.linspace(0, 1, 240)  # a ramp: resampling keeps its ends
    frames = torch.tensor([240, 120, 96])
    out, n = tempo_perturb(fb, frames, gen, 1.5)
    assert out.shape == (3, int(n.max()), 80)
    for k, (m, orig) in enumerate(zip(n.tolist(), frames.tolist(), strict=True)):
        assert m % 12 == 0 and orig / 1.5 - 12 <= m <= orig * 1.5
        assert out[k, 0, 0] == fb[k, 0, 0] and torch.isclose(out[k, m - 1, 0], fb[k, orig - 1, 0])
    same, n1 = tempo_perturb(fb, frames, gen, 1.0)  # spread 1: the identity
    assert n1.tolist() == frames.tolist() and torch.allclose(same[0], fb[0])


def test_eval_metrics_known_values() -> None:
    from aqaa.tokenizer.evaluate import dedup, edit_distance, style_features, usage

    assert edit_distance(list(b"kitten"), list(b"sitting")) == 3
    assert edit_distance([], [1, 2]) == 2
    assert dedup([1, 1, 2, 2, 2, 1]) == [1, 2, 1]
    u = usage(np.array([0, 0, 1, 1]), 4)
    assert u["used"] == 0.5 and u["perplexity"] == pytest.approx(2.0)
    tok = tiny_tokenizer()
    f = style_features(tok, np.array([0, 0, 4095, 7, 7, 7]))
    assert f.shape == (4 * 8 + 4 + 4 + 2 + 8,) and np.isfinite(f).all()
    assert f[-10] == pytest.approx(2 / 5)  # code changes per step
    # decoded prosody, known values: a reconstruction head that always says log-F0 5, voiced,
    # energy -2 and a mel spectrum rising by 0.1 per bin
    from aqaa.tokenizer.evaluate import decoded_prosody

    n = 80
    bias = torch.cat([torch.arange(n) * 0.1, torch.tensor([5.0, 1.0, -2.0])]).repeat(4)
    with torch.no_grad():
        tok.semantic.recon.weight.zero_()
        tok.semantic.recon.bias.copy_(bias)
    d = decoded_prosody(tok, np.array([0, 7, 7, 4095]))
    tilt = (np.arange(40, 80).mean() - np.arange(0, 20).mean()) * 0.1
    np.testing.assert_allclose(d, [5.0, 0, 1.0, -2.0, 0, 0, 0, tilt], atol=1e-5)


def test_linguistic_augmentation_warps_and_masks() -> None:
    from aqaa.train.tokenizer import augment_linguistic

    fb = torch.randn(3, 200, 80)
    a = augment_linguistic(fb, torch.Generator().manual_seed(0))
    b = augment_linguistic(fb, torch.Generator().manual_seed(0))
    assert a.shape == fb.shape and torch.equal(a, b)  # deterministic for a seed
    assert not torch.allclose(a, fb)
    # bin 0 is a fixed point of the warp: away from masks it is unchanged
    same = (a[:, :, 0] == fb[:, :, 0]).float().mean()
    assert same > 0.7


def test_shipped_tokenizer_and_cli(tmp_path: Path) -> None:
    """The default weights in the package load, and `aqaa tokenize` prints rates; bad files exit 2."""
    from typer.testing import CliRunner

    from aqaa.audio import save_audio
    from aqaa.cli import app

    tok = DualCodebookTokenizer.load()
    assert tok.cfg.linguistic.n_codes == 1024 and tok.semantic.fsq.codebook_size == 4096
    out = tok.encode(speechlike(10.0), SR)
    assert abs(len(out.linguistic) - 167) <= 2 and abs(len(out.semantic) - 250) <= 2
    wav = save_audio(tmp_path / "q.wav", speechlike(2.0), SR)
    res = CliRunner().invoke(app, ["tokenize", str(wav), "--json"])
    assert res.exit_code == 0, res.output
    codes = json.loads(res.output)["codes"]
    assert len(codes) % 5 == 0 and all(0 <= c < 5120 for c in codes)
    (tmp_path / "bad.wav").write_text("not audio")
    res = CliRunner().invoke(app, ["tokenize", str(tmp_path / "bad.wav")])
    assert res.exit_code == 2 and "error" in res.output
    # fine-tuning options without a tokenizer to start from, or from a directory without one
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "manifest.jsonl").write_text("")
    train = ["train", "tokenizer", "--data", str(tmp_path / "c"), "--out", str(tmp_path / "t")]
    res = CliRunner().invoke(app, [*train, "--keep-centroids"])
    assert res.exit_code == 2 and "need --init" in " ".join(res.output.split())
    res = CliRunner().invoke(app, [*train, "--init", str(tmp_path)])
    assert res.exit_code == 2 and "holds no tokenizer" in " ".join(res.output.split())
    res = CliRunner().invoke(app, ["train", "adopt", "--tokenizer", str(tmp_path / "nowhere"),
                                   "--out", str(tmp_path / "o"), "--lm", str(tmp_path)])  # fmt: skip
    assert res.exit_code == 2 and "no tokenizer in" in " ".join(res.output.split())


def test_evaluate_tokenizer_reports_per_voice_phone_errors(tmp_path: Path) -> None:
    from aqaa.data.voices import ASSISTANT_VOICE, RESERVED_VOICES
    from aqaa.tokenizer.evaluate import PROBE_STYLES, ProbeClip, evaluate_tokenizer
    from aqaa.tokenizer.phonemes import PhonemeVocab

    voices = (*sorted(RESERVED_VOICES), "flite:rms", ASSISTANT_VOICE)
    clips = [
        ProbeClip(v, s, 0, "Hello there.", speechlike(1.5, seed=k))
        for k, (v, s) in enumerate((v, s) for v in voices for s in PROBE_STYLES)
    ]
    tok = tiny_tokenizer(cmn_prior=3)
    tok.vocab = PhonemeVocab(["<blank>", "h", "ə", "l", "oʊ"])  # "Hello there." -> h ə l oʊ
    res = evaluate_tokenizer(tok, clips, tmp_path / "eval.json")
    assert set(res["phone_error_rate_by_voice"]) == set(voices)
    assert all(e >= 0 for e in res["phone_error_rate_by_voice"].values())
    reserved = [res["phone_error_rate_by_voice"][v] for v in sorted(RESERVED_VOICES)]
    assert res["phone_error_rate"] == pytest.approx(sum(reserved) / 2)  # same references
    # the assistant's voice is scored on its own and kept out of the style probe
    assert res["phone_error_rate_assistant"] == res["phone_error_rate_by_voice"][ASSISTANT_VOICE]
    assert json.loads((tmp_path / "eval.json").read_text())["probe_clips"] == len(clips)
    confusion = res["style_probe"]["confusion"]  # one clip per reserved voice and style
    assert {s: sum(row.values()) for s, row in confusion.items()} == dict.fromkeys(PROBE_STYLES, 2)
    hits = sum(confusion[s].get(s, 0) for s in PROBE_STYLES)
    assert res["style_probe"]["accuracy"] == pytest.approx(hits / (2 * len(PROBE_STYLES)))


def test_probe_cache_renders_only_missing_voices(tmp_path: Path, monkeypatch) -> None:
    import pickle

    from aqaa.tokenizer import evaluate as ev

    rendered: list[tuple[str, ...]] = []

    def fake_render(n: int, voices: tuple[str, ...], progress: bool = True) -> list:
        rendered.append(voices)
        return [
            ev.ProbeClip(v, "neutral", i, f"s{i}", np.zeros(8, np.float32))
            for v in voices
            for i in range(n)
        ]

    monkeypatch.setattr(ev, "render_probe_set", fake_render)
    cache = tmp_path / "probe.pkl"
    first = ev.load_or_render_probe_set(2, cache, ("a", "b"))
    assert rendered == [("a", "b")] and len(first) == 4
    second = ev.load_or_render_probe_set(2, cache, ("b", "c"))  # reuses b, renders c, drops a
    assert rendered[-1] == ("c",)
    assert sorted({c.voice for c in second}) == ["b", "c"]
    assert {c.voice for c in pickle.loads(cache.read_bytes())} == {"b", "c"}
    ev.load_or_render_probe_set(3, cache, ("b", "c"))  # another sentence count: all re-rendered
    assert rendered[-1] == ("b", "c")
