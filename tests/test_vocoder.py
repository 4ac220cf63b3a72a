"""Tests for aqaa.vocoder: regrouping, lengths, determinism, streaming, save/load, training, CLI.

Every model here is the `tiny` preset with random or seconds-trained weights, on fabricated data
(random codes, sine chirps); nothing depends on the real tokenizer or corpus.

Streaming tolerances (documented in aqaa.vocoder.stream):
* with context covering the model's receptive field the stream equals the offline decode to
  float rounding (max abs difference ≤ 1e-5);
* with the default stream config (12 pairs of left context, 3 of look-ahead) the relative RMS
  difference to the offline decode is ≤ 10% for these random weights, and no seam jump exceeds
  the largest sample jump of the offline audio.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import typer
from typer.testing import CliRunner

from aqaa.tokenizer import ids
from aqaa.vocoder import StreamConfig, Vocoder, VocoderConfig, frame_noise, seam_report
from aqaa.vocoder.istft import istft
from aqaa.vocoder.mel import MelConfig, griffin_lim, mel_spectrogram
from aqaa.vocoder.tokens import LING_PAD, regroup, ungroup

SR = 24000
SAMPLES_PER_GROUP = 2880  # 120 ms at 24 kHz


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: faster and steadier than two on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_codes(groups: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return ids.interleave(
        rng.integers(0, ids.LINGUISTIC_CODES, 2 * groups),
        rng.integers(0, ids.SEMANTIC_CODES, 3 * groups),
    )


@pytest.fixture(scope="module")
def tiny() -> Vocoder:
    torch.manual_seed(0)
    return Vocoder(VocoderConfig.tiny()).eval()


# ------------------------------------------------------------------------------------ regrouping


def test_regroup_pairs_and_round_trip() -> None:
    codes = np.array([3, 7, 1024 + 10, 1024 + 11, 1024 + 12, 5, 6, 1024, 1025, 5119])
    ling, sem = regroup(codes)
    assert ling.tolist() == [3, 7, LING_PAD, 5, 6, LING_PAD]
    assert sem.tolist() == [10, 11, 12, 0, 1, 4095]
    assert ungroup(ling, sem).tolist() == codes.tolist()
    big = random_codes(50, seed=3)
    assert np.array_equal(ungroup(*regroup(big)), big)


@pytest.mark.parametrize(
    "bad",
    [
        [1024, 7, 1030, 1031, 1032],  # semantic code in a linguistic slot
        [1, 2, 3, 1031, 1032],  # linguistic code in a semantic slot
        [1, 2, 1030, 1031, 5120],  # out of range
        [1, 2, 1030, 1031],  # not a whole group
    ],
)
def test_regroup_rejects_malformed_streams(bad: list[int]) -> None:
    with pytest.raises(ValueError):
        regroup(bad)


# ----------------------------------------------------------------------------- shapes, lengths


@pytest.mark.parametrize("groups", [1, 2, 7, 30])
def test_lengths(tiny: Vocoder, groups: int) -> None:
    codes = random_codes(groups)
    audio, rate = tiny.decode(codes)
    assert rate == SR
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert len(audio) == groups * SAMPLES_PER_GROUP == tiny.num_samples(len(codes))
    assert np.abs(audio).max() <= 1.0
    assert tiny.decode_mel(codes).shape == (6 * groups, 80)  # 2 frames per 25 Hz pair
    # an incomplete tail group is dropped, as by the tokenizer
    assert len(tiny.decode(np.concatenate([codes, codes[:4]]))[0]) == len(audio)


def test_empty_and_bad_input(tiny: Vocoder) -> None:
    assert len(tiny.decode([])[0]) == 0
    assert len(tiny.decode([1, 2, 1030])[0]) == 0
    with pytest.raises(ValueError):
        tiny.decode([1, 2, 1030, 1031, 9999])


def test_mel_framing_and_istft_inverse() -> None:
    cfg = MelConfig()
    x = np.random.default_rng(0).standard_normal(20 * cfg.hop_length).astype(np.float32) * 0.1
    assert mel_spectrogram(x, cfg).shape == (21, 80)  # 1 + n // hop, centred frames
    win = torch.hann_window(1920)
    xt = torch.from_numpy(x)[None]
    spec = torch.stft(xt, 1920, 480, 1920, win, center=True, return_complex=True)[..., :20]
    y = istft(spec, 1920, 480, win)
    assert y.shape == (1, 20 * 480)
    assert torch.allclose(y, xt, atol=1e-5)  # frame j centred on sample j·hop, exact inverse


def test_upsampled_head_lengths_locality_and_checks() -> None:
    from aqaa.vocoder.istft import MelVocoder, MelVocoderConfig

    torch.manual_seed(0)
    voc = MelVocoder(MelVocoderConfig(dim=32, intermediate=64, layers=2, upsample=4)).eval()
    assert (voc.head.hop, voc.head.n_fft) == (120, 480)
    mel = torch.randn(1, 40, 80)
    with torch.no_grad():
        y = voc(mel)
        part = voc(mel[:, :20])
    assert y.shape == (1, 40 * 480)  # F mel frames -> F · hop samples, as without upsampling
    # local: a prefix decodes to the same samples, away from its right edge (receptive field)
    torch.testing.assert_close(part[:, : 8 * 480], y[:, : 8 * 480], atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="must divide"):
        MelVocoder(MelVocoderConfig(dim=32, intermediate=64, layers=2, upsample=7))


def _steady_head(phase_advance: bool, k: int):
    """A head whose every frame is the same: unit magnitude in bin `k` only, zero phase."""
    from aqaa.vocoder.istft import ISTFTHead

    head = ISTFTHead(4, 1920, 480, phase_advance)
    with torch.no_grad():
        head.proj.weight.zero_()
        head.proj.bias.fill_(-30.0)  # log-magnitude: silence in every bin
        head.proj.bias[k] = 0.0  # but bin k
        head.proj.bias[961:] = 0.0  # zero phase everywhere
    return head


def test_phase_advance_makes_steady_frames_a_sinusoid_at_the_bin_frequency() -> None:
    # Session 11: identical frames every 20 ms can only hold harmonics of 50 Hz; with the phase
    # advance they make a sinusoid at the bin's own frequency (bin 9: 9 · 12.5 = 112.5 Hz).
    x = torch.zeros(1, 200, 4)
    for advance, want in ((False, (100.0, 150.0)), (True, (112.5,))):
        y = _steady_head(advance, 9)(x)[0, 1920:-1920].detach().numpy()
        spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
        freqs = np.fft.rfftfreq(len(y), 1 / 24000)
        peak = float(freqs[spec.argmax()])
        assert min(abs(peak - f) for f in want) < 1.0, (advance, peak)
    # the frame index matters with the advance: frame0 shifts the phase by whole frames
    head = _steady_head(True, 9)
    with torch.no_grad():
        whole = head(torch.zeros(1, 24, 4))
        part = head(torch.zeros(1, 16, 4), frame0=4)  # whole frames 4..20
    # away from the edges (2 frames of window), part frames 4..12 are whole frames 8..16
    torch.testing.assert_close(part[:, 4 * 480 : 12 * 480], whole[:, 8 * 480 : 16 * 480],
                               atol=1e-6, rtol=1e-4)  # fmt: skip
    assert float(whole[:, 8 * 480 : 16 * 480].abs().max()) > 1e-4  # not silence


def test_phase_advance_windows_decode_like_the_whole_mel() -> None:
    from aqaa.vocoder.istft import MelVocoder, MelVocoderConfig

    torch.manual_seed(0)
    cfg = MelVocoderConfig(dim=32, intermediate=64, layers=2, upsample=2, phase_advance=True)
    voc = MelVocoder(cfg).eval()
    mel = torch.randn(1, 60, 80)
    with torch.no_grad():
        y = voc(mel)
        window = voc(mel[:, 11:51], frame0=11)  # odd: its head frames are 22.. (22 % 4 = 2)
        wrong = voc(mel[:, 11:51])
    # window frames 15..25 = whole frames 26..36: beyond the receptive field of either edge
    inner = slice(15 * 480, 25 * 480)
    whole = y[:, 26 * 480 : 36 * 480]
    torch.testing.assert_close(window[:, inner], whole, atol=1e-5, rtol=1e-4)
    assert (wrong[:, inner] - whole).abs().max() > 1e-3  # without frame0 the phases differ


def test_copy_synthesis_keeps_length(tiny: Vocoder) -> None:
    x = 0.3 * np.sin(2 * np.pi * 150 * np.arange(7000) / 24000).astype(np.float32)
    y = tiny.copy_synthesis(x)
    assert y.shape == x.shape and y.dtype == np.float32 and np.isfinite(y).all()
    assert np.abs(y).max() <= 1.0


def test_griffin_lim_fallback_length(tiny: Vocoder) -> None:
    mel = tiny.decode_mel(random_codes(3))
    y = griffin_lim(mel, tiny.config.mel, n_iter=2)
    assert y.shape == (3 * SAMPLES_PER_GROUP,) and np.isfinite(y).all()


def test_default_config_size() -> None:
    counts = Vocoder().param_counts()
    assert 3_000_000 < counts["total"] < 12_000_000, counts


# ------------------------------------------------------------------------------ determinism


def test_decode_is_deterministic_given_seed(tiny: Vocoder) -> None:
    codes = random_codes(6)
    a, _ = tiny.decode(codes, seed=5)
    b, _ = tiny.decode(codes, seed=5)
    c, _ = tiny.decode(codes, seed=6)
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)


def test_frame_noise_is_window_consistent() -> None:
    whole = frame_noise(3, 0, 300, 80)
    assert whole.shape == (300, 80)
    assert torch.equal(frame_noise(3, 70, 190, 80), whole[70:190])
    assert not torch.equal(frame_noise(4, 0, 300, 80), whole)


# -------------------------------------------------------------------------------- streaming


def _stream(voc: Vocoder, codes: np.ndarray, step: int, config: StreamConfig | None = None):
    pieces = [codes[i : i + step].tolist() for i in range(0, len(codes), step)]
    return list(voc.stream(pieces, seed=1, config=config))


def test_stream_equals_offline_with_enough_context(tiny: Vocoder) -> None:
    codes = random_codes(40)
    offline, _ = tiny.decode(codes, seed=1)
    wide = StreamConfig(left_context_pairs=30, lookahead_pairs=12)
    chunks = _stream(tiny, codes, 7, wide)
    assert len(chunks) > 5
    streamed = np.concatenate(chunks)
    assert len(streamed) == len(offline)
    assert np.abs(streamed - offline).max() < 1e-5


def test_stream_default_config_close_and_seamless(tiny: Vocoder) -> None:
    codes = random_codes(40)
    offline, _ = tiny.decode(codes, seed=1)
    chunks = _stream(tiny, codes, 15)
    streamed = np.concatenate(chunks)
    assert len(streamed) == len(offline)
    rel = np.sqrt(np.mean((streamed - offline) ** 2) / np.mean(offline**2))
    assert rel < 0.10, rel
    rep = seam_report(chunks)
    assert rep["seams"] == len(chunks) - 1
    assert rep["max_seam_jump"] <= np.abs(np.diff(offline)).max() + 1e-6, rep
    # the chunk sizes: a short first chunk, then LM-slot-sized chunks
    cfg = tiny.config.stream
    assert len(chunks[0]) == cfg.first_chunk_pairs * tiny.samples_per_pair
    assert len(chunks[1]) == cfg.chunk_pairs * tiny.samples_per_pair


def test_stream_output_does_not_depend_on_how_codes_arrive(tiny: Vocoder) -> None:
    codes = random_codes(20, seed=2)
    one = np.concatenate(_stream(tiny, codes, 1))
    slot = np.concatenate(_stream(tiny, codes, 15))
    whole = np.concatenate(_stream(tiny, codes, len(codes)))
    assert np.array_equal(one, slot) and np.array_equal(one, whole)


def test_stream_decoder_push_flush(tiny: Vocoder) -> None:
    dec = tiny.stream_decoder(seed=1)
    codes = random_codes(4)
    assert dec.push(codes[:12].tolist()) == []  # 2 whole groups: not enough for a first chunk
    out = dec.push(codes[12:].tolist()) + dec.flush()
    assert sum(len(c) for c in out) == 4 * SAMPLES_PER_GROUP
    with pytest.raises(RuntimeError):
        dec.push([1])


def test_stream_config_is_checked(tiny: Vocoder) -> None:
    with pytest.raises(ValueError):
        list(tiny.stream([random_codes(10)], config=StreamConfig(crossfade=10_000)))


# ------------------------------------------------------------------------------ persistence


def test_save_load_round_trip(tiny: Vocoder, tmp_path: Path) -> None:
    codes = random_codes(5)
    ref, _ = tiny.decode(codes, seed=2)
    tiny.save(tmp_path / "v")
    loaded = Vocoder.load(tmp_path / "v")
    assert loaded.config == tiny.config
    assert np.array_equal(loaded.decode(codes, seed=2)[0], ref)
    tiny.save(tmp_path / "h", fp16=True)
    half = Vocoder.load(tmp_path / "h")
    assert (tmp_path / "h" / "model.safetensors").stat().st_size < (
        0.6 * (tmp_path / "v" / "model.safetensors").stat().st_size
    )
    assert np.isfinite(half.decode(codes, seed=2)[0]).all()
    cfg = json.loads((tmp_path / "v" / "config.json").read_text())
    assert cfg["format_version"] == 1 and cfg["mel"]["hop_length"] == 480


def test_load_missing_dir_is_clear(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"config\.json"):
        Vocoder.load(tmp_path)


def test_config_rejects_unknown_sections() -> None:
    with pytest.raises(ValueError, match="unknown"):
        VocoderConfig.from_dict({"mel": {}, "oops": {}})


# -------------------------------------------------------------------------------- training


def fabricate_corpus(root: Path, seed: int = 0) -> Path:
    """Token shards + 24 kHz FLAC chirps; codes follow the chirp's frequency per group."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", 5), ("valid", 2)):
        lines = []
        for d in range(n):
            clips = []
            for c in range(2):
                groups = int(rng.integers(6, 14))
                dur = groups * 0.12 + 0.05  # audio slightly longer than its codes
                t = np.arange(int(dur * SR)) / SR
                f0, f1 = rng.uniform(120, 300, 2)
                freq = f0 + (f1 - f0) * t / dur
                x = (
                    0.3
                    * np.sin(2 * np.pi * np.cumsum(freq) / SR)
                    * (0.6 + 0.4 * np.sin(4 * np.pi * t))
                )
                rel = f"audio/{split}/{split}-{d}/a0_{c}.flac"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                sf.write(root / rel, x.astype(np.float32), SR)
                codes: list[int] = []
                for g in range(groups):
                    q = int((f0 + (f1 - f0) * (g + 0.5) * 0.12 / dur - 120) / 180 * 1000)
                    codes += [q, q + 1, 1024 + 4 * q, 1025 + 4 * q, 1026 + 4 * q]
                clips.append({"text": "x", "style": "neutral", "codes": codes, "audio": rel})
            h = np.random.default_rng([seed, d])  # apart from rng: the chirps stay as they were
            human = ids.interleave(h.integers(0, 1024, 4), h.integers(0, 4096, 6)).tolist()
            turn = {
                "human_text": "q",
                "human_codes": human,
                "answer_text": "x",
                "answer_clips": clips,
            }
            rec = {"id": f"{split}-{d}", "split": split, "category": "test", "turns": [turn]}
            lines.append(json.dumps(rec))
        (root / "tokens").mkdir(parents=True, exist_ok=True)
        (root / "tokens" / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    (root / "tokens" / "tokenizer.json").write_text('{"fingerprint": "0123456789ab"}')
    return root


def test_the_cache_joins_several_corpora(tmp_path: Path) -> None:
    from aqaa.train.vocoder import ClipSet, DataError, build_cache, train_vocoder

    a, b = fabricate_corpus(tmp_path / "a", seed=0), fabricate_corpus(tmp_path / "b", seed=1)
    mel = VocoderConfig.tiny().mel
    one, both = build_cache(a, mel, progress=False), build_cache(f"{a},{b}", mel, progress=False)
    assert one != both and both.parent == a / "cache"
    sa, sb, sab = (ClipSet(c, "train") for c in (one, build_cache(b, mel, progress=False), both))
    assert len(sab) == len(sa) + len(sb) == 20
    for k in (0, len(sa)):  # the first clip of each corpus, at its place in the joint cache
        codes, mel_k, wav = sab.clip(k)
        src = sa if k == 0 else sb
        c2, m2, w2 = src.clip(0)
        assert np.array_equal(codes, c2) and np.array_equal(mel_k, m2) and np.array_equal(wav, w2)
    (b / "tokens" / "train.jsonl").unlink()
    with pytest.raises(DataError, match=f"no token shards in {b}"):
        build_cache(f"{a},{b}", mel, progress=False)
    with pytest.raises(DataError, match=f"no token shards in {b}"):
        train_vocoder(train_config(f"{a},{b}", tmp_path / "out"))


def train_config(data: Path, out: Path):
    from aqaa.train.vocoder import VocoderTrainConfig

    return VocoderTrainConfig(
        data=str(data),
        out=str(out),
        preset="tiny",
        flow_steps=12,
        mel_steps=12,
        batch_size=4,
        segment_groups=5,
        mel_batch_size=4,
        mel_segment_frames=12,
        lr=3e-3,
        mel_lr=3e-3,
        warmup=2,
        gan_start=6,
        log_every=4,
        ckpt_every=4,
        eval_every=12,
        plot_every=12,
        bf16="off",
        progress=False,
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fabricate_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def trained(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from aqaa.train.vocoder import train_vocoder

    out = tmp_path_factory.mktemp("run")
    train_vocoder(train_config(corpus, out))
    return out


def _evals(run: Path) -> list[dict]:
    rows = [json.loads(ln) for ln in (run / "log.jsonl").read_text().splitlines()]
    return [r for r in rows if r["stage"] == "eval"]


def test_tiny_training_losses_fall(trained: Path, corpus: Path) -> None:
    evals = _evals(trained)
    first, mid, last = evals[0], evals[1], evals[-1]
    assert first["step"] == 0 and mid["step"] == 12 and last["step"] == 24
    # stage 1 lowers the flow-matching and prior losses on fixed validation batches
    assert mid["valid_flow"] < first["valid_flow"]
    assert mid["valid_prior"] < first["valid_prior"]
    # stage 2 lowers the vocoder's reconstruction losses
    assert last["valid_mel_l1"] < 0.8 * mid["valid_mel_l1"]
    assert last["valid_stft"] < mid["valid_stft"]
    rows = [json.loads(ln) for ln in (trained / "log.jsonl").read_text().splitlines()]
    assert any("adv" in r and "disc" in r for r in rows)  # the GAN ran
    assert sorted(p.name for p in (trained / "plots").glob("*.png")) == [
        "flow_step0000012.png",
        "mel_step0000024.png",
    ]
    assert list((corpus / "cache").glob("vocoder-*/index.json"))
    voc = Vocoder.load(trained / "vocoder-fp16")
    assert len(voc.decode(random_codes(3))[0]) == 3 * SAMPLES_PER_GROUP
    assert voc.audio_tokenizer == "0123456789ab"  # stamped from the shards' tokenizer record


def test_resume_after_kill_continues_exactly(trained: Path, corpus: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    from aqaa.train.vocoder import train_vocoder

    class Killed(Exception):
        pass

    def kill_at_15(step: int, losses: dict[str, float]) -> None:
        if step == 15:  # the last checkpoint was at step 12 (stage 2 has begun)
            raise Killed

    out = tmp_path / "run"
    with pytest.raises(Killed):
        train_vocoder(train_config(corpus, out), on_step=kill_at_15)
    assert torch.load(out / "checkpoint.pt", weights_only=False)["step"] == 12
    with pytest.raises(FileExistsError):
        train_vocoder(train_config(corpus, out))
    train_vocoder(train_config(corpus, out), resume=True)
    assert [r["step"] for r in _evals(out)] == [0, 12, 24]
    a = load_file(str(trained / "vocoder" / "model.safetensors"))
    b = load_file(str(out / "vocoder" / "model.safetensors"))
    assert all(torch.equal(a[k], b[k]) for k in a)  # same weights as the uninterrupted run


def test_init_retrains_the_flow_for_a_new_tokenizer(trained: Path, corpus: Path, tmp_path: Path):
    """--init VOCODER --mel-steps 0: the mel vocoder and its statistics are kept exactly; the
    code embeddings of another tokenizer's vocoder start over; the result is stamped anew."""
    import dataclasses

    from aqaa.train.vocoder import restart_code_embeddings, train_vocoder

    base = Vocoder.load(trained / "vocoder")
    old_ling = base.encoder.ling.weight.detach().clone()
    restart_code_embeddings(base)
    new_ling = base.encoder.ling.weight.detach()
    assert torch.equal(new_ling[-1], old_ling[-1])  # the pad row is not a code
    assert torch.isclose(new_ling[:-1], old_ling[:-1]).float().mean() < 1e-3  # all drawn anew
    assert float(new_ling[:-1].std()) == pytest.approx(float(old_ling[:-1].std()), rel=0.2)

    base = Vocoder.load(trained / "vocoder")
    base.audio_tokenizer = "ffffffffffff"  # learnt another tokenizer's codes
    base.save(tmp_path / "base")
    cfg = dataclasses.replace(
        train_config(corpus, tmp_path / "run"), init=str(tmp_path / "base"), flow_steps=4,
        mel_steps=0, eval_every=4,
    )  # fmt: skip
    train_vocoder(cfg)
    out = Vocoder.load(tmp_path / "run" / "vocoder")
    assert out.audio_tokenizer == "0123456789ab"
    for k, v in base.mel_vocoder.state_dict().items():
        assert torch.equal(out.mel_vocoder.state_dict()[k], v), k
    assert torch.equal(out.mel_mean, base.mel_mean) and torch.equal(out.mel_std, base.mel_std)
    flow = out.flow.state_dict()
    assert any(not torch.equal(flow[k], v) for k, v in base.flow.state_dict().items())  # trained
    # the phase advance changes what the head's phases mean: it cannot be switched on over --init
    with pytest.raises(ValueError, match="without the phase advance"):
        train_vocoder(dataclasses.replace(cfg, out=str(tmp_path / "run2"), mel_phase_advance=True))


def test_a_new_mel_vocoder_with_the_phase_advance_saves_and_decodes(corpus: Path, tmp_path: Path):
    import dataclasses

    from aqaa.train.vocoder import train_vocoder

    cfg = dataclasses.replace(train_config(corpus, tmp_path / "pa"), flow_steps=0, mel_steps=2,
                              eval_every=2, mel_phase_advance=True)  # fmt: skip
    train_vocoder(cfg)
    voc = Vocoder.load(tmp_path / "pa" / "vocoder")
    assert voc.config.vocoder.phase_advance and voc.mel_vocoder.head.phase_advance
    codes = [1, 2, 1030, 1031, 1032] * 4
    audio, sr = voc.decode(codes)
    assert sr == 24000 and len(audio) == 4 * 3 * 2 * 480  # 12 pairs · 2 frames · hop


def test_training_data_errors_are_clear(tmp_path: Path) -> None:
    from aqaa.train.vocoder import DataError, train_vocoder

    with pytest.raises(DataError, match="aqaa data tokenize"):
        train_vocoder(train_config(tmp_path, tmp_path / "out"))


# ------------------------------------------------------------------------------------- CLI


def _app() -> typer.Typer:
    from aqaa.vocoder import cli

    app = typer.Typer()
    app.command("vocode")(cli.vocode)
    app.command("resynth")(cli.resynth)
    return app


def test_cli_vocode(tiny: Vocoder, tmp_path: Path) -> None:
    tiny.save(tmp_path / "voc")
    codes = random_codes(4)
    (tmp_path / "t.json").write_text(json.dumps({"codes": codes.tolist()}))
    (tmp_path / "t.txt").write_text(" ".join(map(str, codes.tolist())))
    runner = CliRunner()
    for src, extra in (("t.json", []), ("t.txt", ["--stream"])):
        out = tmp_path / f"{src}.wav"
        res = runner.invoke(
            _app(),
            [
                "vocode",
                str(tmp_path / src),
                "-o",
                str(out),
                "--vocoder",
                str(tmp_path / "voc"),
                *extra,
            ],
        )
        assert res.exit_code == 0, res.output
        x, sr = sf.read(out)
        assert sr == SR and len(x) == 4 * SAMPLES_PER_GROUP
    (tmp_path / "empty.txt").write_text("1 2 1030")
    res = runner.invoke(
        _app(),
        [
            "vocode",
            str(tmp_path / "empty.txt"),
            "-o",
            str(tmp_path / "e.wav"),
            "--vocoder",
            str(tmp_path / "voc"),
        ],
    )
    assert res.exit_code == 2 and "fewer than 5 codes" in res.output
    (tmp_path / "bad.txt").write_text("1 2 hello")
    res = runner.invoke(
        _app(),
        [
            "vocode",
            str(tmp_path / "bad.txt"),
            "-o",
            str(tmp_path / "b.wav"),
            "--vocoder",
            str(tmp_path / "voc"),
        ],
    )
    assert (
        res.exit_code == 2 and "error" in res.output and len(res.output.strip().splitlines()) <= 2
    )


def test_cli_resynth(tiny: Vocoder, tmp_path: Path) -> None:
    """Tokenize then vocode, with a small random tokenizer (the pipeline, not the quality)."""
    from aqaa.tokenizer import DualCodebookTokenizer
    from aqaa.tokenizer.phonemes import PhonemeVocab
    from aqaa.train.tokenizer import TokenizerTrainConfig, make_config

    small = TokenizerTrainConfig(data="", out="", dim=32, layers=1, heads=2, n_codes=1024)
    tok = DualCodebookTokenizer(make_config(small, PhonemeVocab(["<blank>", "a", "b"])))
    tok.save(tmp_path / "tok")
    tiny.save(tmp_path / "voc")
    t = np.arange(SR) / SR
    sf.write(tmp_path / "in.wav", (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32), SR)
    res = CliRunner().invoke(
        _app(),
        [
            "resynth",
            str(tmp_path / "in.wav"),
            "-o",
            str(tmp_path / "out.wav"),
            "--tokenizer",
            str(tmp_path / "tok"),
            "--vocoder",
            str(tmp_path / "voc"),
        ],
    )
    assert res.exit_code == 0, res.output
    x, sr = sf.read(tmp_path / "out.wav")
    assert sr == SR and len(x) % SAMPLES_PER_GROUP == 0 and 0.8 * SR <= len(x) <= SR
    # a vocoder whose flow learnt another tokenizer's codes is refused in one line, exit 2
    tiny.audio_tokenizer = "ffffffffffff"
    tiny.save(tmp_path / "voc")
    tiny.audio_tokenizer = None
    args = ["resynth", str(tmp_path / "in.wav"), "-o", str(tmp_path / "out2.wav"),
            "--tokenizer", str(tmp_path / "tok"), "--vocoder", str(tmp_path / "voc")]  # fmt: skip
    res = CliRunner().invoke(_app(), args)
    assert res.exit_code == 2 and "tokenizer ffffffffffff" in res.output
    assert not (tmp_path / "out2.wav").exists()


def test_join_vocoders_takes_each_stage_from_its_run(tmp_path) -> None:
    from aqaa.train.vocoder import join_vocoders
    from aqaa.vocoder.model import Vocoder, VocoderConfig

    torch.manual_seed(1)
    a = Vocoder(VocoderConfig.tiny())
    torch.manual_seed(2)
    b = Vocoder(VocoderConfig.tiny())
    a.save(tmp_path / "a")
    b.save(tmp_path / "b")
    j = Vocoder.load(join_vocoders(tmp_path / "a", tmp_path / "b", tmp_path / "j"))
    for (name, p), q in zip(
        j.mel_vocoder.state_dict().items(), b.mel_vocoder.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(p, q.half().float(), msg=name)
    for p, q in zip(j.flow.state_dict().values(), a.flow.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q.half().float())
    # a mel vocoder trained under other mel statistics reads the flow's z-scores after a fold
    b.mel_mean.add_(torch.linspace(-1, 1, b.config.mel.n_mels))
    b.mel_std.mul_(1.5)
    b.save(tmp_path / "b2")
    b2 = Vocoder.load(tmp_path / "b2")
    j2 = Vocoder.load(join_vocoders(tmp_path / "a", tmp_path / "b2", tmp_path / "j2"))
    torch.testing.assert_close(j2.mel_mean, a.mel_mean)
    z = torch.randn(1, 40, a.config.mel.n_mels)  # the flow's z-scores, under a's statistics
    z_b = (z * a.mel_std + a.mel_mean - b2.mel_mean) / b2.mel_std
    with torch.no_grad():
        want = b2.mel_vocoder.embed(z_b.transpose(1, 2))
        got = j2.mel_vocoder.embed(z.transpose(1, 2))
    k = b.config.vocoder.kernel // 2  # zero padding differs only at the edges
    torch.testing.assert_close(got[..., k:-k], want[..., k:-k], atol=2e-2, rtol=1e-2)
    # a mel vocoder of another shape (10 ms head frames) joins a flow run's tokens and stream
    cfg = VocoderConfig.tiny()
    cfg.vocoder.upsample = 2
    cfg.stream.first_chunk_pairs = 6
    torch.manual_seed(3)
    c = Vocoder(cfg)
    c.save(tmp_path / "c")
    a.audio_tokenizer = "aaaaaaaaaaaa"
    a.save(tmp_path / "a2")
    j = Vocoder.load(join_vocoders(tmp_path / "a2", tmp_path / "c", tmp_path / "j3"))
    assert j.config.vocoder.upsample == 2 and j.audio_tokenizer == "aaaaaaaaaaaa"
    assert j.config.stream == a.config.stream and j.config.flow == a.config.flow
    audio, sr = j.decode(np.arange(10) % 5 * 200 + np.array([0, 0, 1024, 1024, 1024] * 2))
    assert sr == 24000 and len(audio) == j.num_samples(10)
    other = VocoderConfig.tiny()
    other.mel.n_mels = 64
    other.tokens.n_mels = other.flow.n_mels = other.vocoder.n_mels = 64
    Vocoder(other).save(tmp_path / "d")
    with pytest.raises(ValueError, match="different mel features"):
        join_vocoders(tmp_path / "a", tmp_path / "d", tmp_path / "j4")


def test_phase_loss_reads_delay_polarity_and_pitch_apart() -> None:
    from aqaa.vocoder.losses import phase_loss

    t = torch.arange(12000) / 24000
    y = 0.5 * torch.sin(2 * math.pi * (120 * t + 30 * t**2))[None]  # a gliding tone

    def pl(y_hat: torch.Tensor) -> dict[str, float]:
        return {k: float(v) for k, v in phase_loss(y_hat, y).items()}

    assert max(pl(y).values()) < 1e-3 and max(pl(3 * y).values()) < 1e-3  # gain-free
    flipped = pl(-y)  # opposite phase everywhere, same frequency and group delay
    assert flipped["ip"] == pytest.approx(2.0, abs=1e-2) and flipped["iaf"] < 1e-3
    delayed = pl(torch.roll(y, 37, 1))  # 1.5 ms late: the phase moves, its advance barely
    assert delayed["ip"] > 0.3 and delayed["iaf"] < 0.05
    other = pl(0.5 * torch.sin(2 * math.pi * 100 * t)[None])  # another pitch
    assert other["iaf"] > 0.5
    silent = torch.zeros_like(y, requires_grad=True)
    sum(phase_loss(silent, y).values()).backward()
    assert torch.isfinite(silent.grad).all()


def test_phase_weight_trains_on_phase_and_logs_it(corpus: Path, tmp_path: Path) -> None:
    import dataclasses

    from aqaa.train.vocoder import train_vocoder

    cfg = dataclasses.replace(train_config(corpus, tmp_path / "ph"), flow_steps=0, mel_steps=4,
                              eval_every=4, phase_weight=1.0)  # fmt: skip
    train_vocoder(cfg)
    rows = [json.loads(ln) for ln in (tmp_path / "ph" / "log.jsonl").read_text().splitlines()]
    train = [r for r in rows if r["stage"] == "mel"]
    assert train and all({"phase_ip", "phase_iaf", "phase_gd"} <= r.keys() for r in train)
    assert {"valid_phase_ip", "valid_phase_iaf", "valid_phase_gd"} <= _evals(tmp_path / "ph")[
        -1
    ].keys()
    with pytest.raises(ValueError, match="phase_weight"):
        train_vocoder(dataclasses.replace(cfg, phase_weight=-1.0))


def test_code_noise_swaps_the_expected_share_and_keeps_pads() -> None:
    from aqaa.train.vocoder import VocoderTrainConfig, corrupt_codes
    from aqaa.vocoder.tokens import LING_PAD

    ling, sem = regroup(random_codes(2000))
    valid = torch.ones(1, len(sem), dtype=torch.bool)
    valid[0, -30:] = False  # padding of a shorter crop: never touched
    b = {"ling": torch.from_numpy(ling)[None], "sem": torch.from_numpy(sem)[None], "valid": valid}
    gen = torch.Generator().manual_seed(1)
    assert corrupt_codes(b, 0.0, gen) is b
    n = corrupt_codes(b, 0.2, gen)
    assert (n["ling"] == LING_PAD).equal(b["ling"] == LING_PAD)  # pads stay, nothing becomes one
    assert n["ling"][n["ling"] != LING_PAD].max() < LING_PAD and n["ling"].min() >= 0
    assert n["sem"].max() < ids.SEMANTIC_CODES and n["sem"].min() >= 0
    assert n["ling"][~valid].equal(b["ling"][~valid]) and n["sem"][~valid].equal(b["sem"][~valid])
    real = (b["ling"] != LING_PAD) & valid
    # a swap draws the same code again 1/1024 (1/4096) of the time: the changed share is ~p
    assert 0.17 < (n["ling"] != b["ling"])[real].float().mean() < 0.23
    assert 0.17 < (n["sem"] != b["sem"])[valid].float().mean() < 0.23
    assert n["valid"] is b["valid"]  # the other fields are the batch's own
    with pytest.raises(ValueError, match="code_noise"):
        VocoderTrainConfig(data="d", out="o", code_noise=1.0).check()


def test_lm_codes_follow_the_lm_within_each_codebook(corpus: Path, tiny_model_dir: Path) -> None:
    from aqaa.engine.sampling import SamplingConfig, choose_rows
    from aqaa.lm.data import load_items
    from aqaa.lm.format import KIND_AUDIO, FormatConfig, build_example
    from aqaa.lm.model import load_checkpoint
    from aqaa.train.lm_codes import sample_lm_codes

    lm = tiny_model_dir / "lm"
    sampled = sample_lm_codes(lm, corpus, "train", progress=False)
    items = load_items(corpus, "train")
    own = {
        f"{it.id}/0/{c}": clip.codes
        for it in items
        for c, clip in enumerate(it.turns[0].answer_clips)
    }
    assert sampled.keys() == own.keys()
    for k, codes in sampled.items():
        assert len(codes) == len(own[k])
        g = codes.reshape(-1, 5)  # the [l l s s s] interleave holds: each code in its codebook
        assert (g[:, :2] < 1024).all() and (g[:, 2:] >= 1024).all() and (g < 5120).all()
    assert all(
        np.array_equal(sampled[k], v)
        for k, v in sample_lm_codes(lm, corpus, "train", progress=False).items()
    )
    # greedy: the argmax of the LM's prediction within the position's codebook, given the truth
    greedy = sample_lm_codes(
        lm, corpus, "train", SamplingConfig(audio_temperature=0.0), progress=False
    )
    model, vocab = load_checkpoint(lm)
    turn = items[0].turns[0]
    ex = build_example(vocab, [turn.chat()], "speech", FormatConfig())
    with torch.no_grad():
        logits = model(torch.tensor(ex.ids)[None]).logits[0]
    pos = [i for i, kd in enumerate(ex.kinds) if kd == KIND_AUDIO and vocab.is_audio(ex.ids[i])]
    b = vocab.audio_base
    want = [int(logits[i - 1, b : b + 1024].argmax()) if ex.ids[i] < b + 1024
            else 1024 + int(logits[i - 1, b + 1024 : vocab.size].argmax()) for i in pos]  # fmt: skip
    n0 = len(turn.answer_clips[0].codes)
    assert greedy[f"{items[0].id}/0/0"].tolist() == want[:n0]
    # choose_rows: top-k 1 and a tiny top-p are greedy too
    x = torch.randn(6, 40)
    gen = torch.Generator().manual_seed(0)
    assert choose_rows(x, 1.0, 1, 1.0, gen).equal(x.argmax(-1))
    assert choose_rows(x, 1.0, 0, 1e-6, gen).equal(x.argmax(-1))


def test_noise_lm_trains_on_the_lm_codes(
    corpus: Path, tiny_model_dir: Path, tmp_path: Path
) -> None:
    import dataclasses

    from aqaa.train.vocoder import ClipSet, build_cache, train_vocoder

    cfg = dataclasses.replace(train_config(corpus, tmp_path / "n"), flow_steps=4, mel_steps=0,
                              code_noise=0.5, noise_lm=str(tiny_model_dir / "lm"))  # fmt: skip
    train_vocoder(cfg)
    saved = np.load(tmp_path / "n" / "lm_codes.npz")
    assert len(saved.files) == 10
    clips = ClipSet(build_cache(corpus, VocoderConfig.tiny().mel, progress=False), "train")
    clips.use_alternatives({k: saved[k] for k in saved.files})
    b = clips.flow_batch(np.random.default_rng(0), 4, 5)
    assert {"ling_alt", "sem_alt"} <= b.keys() and b["ling_alt"].shape == b["ling"].shape
    assert ((b["ling_alt"] == LING_PAD) == (b["ling"] == LING_PAD)).all()
    with pytest.raises(ValueError, match="noise_lm needs code_noise"):
        train_vocoder(dataclasses.replace(cfg, code_noise=0.0))


def test_mel_input_flow_fine_tunes_the_mel_vocoder_on_the_flows_mels(
    trained: Path, corpus: Path, tmp_path: Path
) -> None:
    import dataclasses

    from aqaa.train.vocoder import ClipSet, build_cache, train_vocoder

    init = Vocoder.load(trained / "vocoder")
    cfg = dataclasses.replace(train_config(corpus, tmp_path / "f"), init=str(trained / "vocoder"),
                              flow_steps=0, mel_input="flow", seed=3)  # fmt: skip
    train_vocoder(cfg)
    clips = ClipSet(build_cache(corpus, init.config.mel, progress=False), "train")
    saved = np.memmap(tmp_path / "f" / "flow_mels" / "train.bin", np.float16, "r",
                      shape=clips.mel.shape)  # fmt: skip
    # clip 1's frames are the flow's own sample of its codes (seeded per clip), where its true
    # mel sits in the cache, and the stage-2 batches read them instead of the true mel
    codes, mel, _ = clips.clip(1)
    mo = clips.clips[1][3]
    flow = init.decode_mel(codes, seed=3 * 100_003 + 1).numpy()
    np.testing.assert_allclose(saved[mo : mo + len(mel)], flow, atol=2e-2, rtol=1e-2)
    assert np.abs(flow - mel).mean() > 0.05  # not the true mel
    clips.use_input_mels(saved)
    b = clips.mel_batch(np.random.default_rng(0), 4, 12)
    assert any(np.isin(b["mel"][j, 0].numpy().astype(np.float16), saved).all() for j in range(4))
    # the flow is frozen (only the mel vocoder trains) and the waveform losses fall
    out = Vocoder.load(tmp_path / "f" / "vocoder")
    for k, v in init.flow.state_dict().items():
        assert torch.equal(v, out.flow.state_dict()[k]), k
    evals = _evals(tmp_path / "f")
    assert evals[-1]["valid_mel_l1"] < evals[0]["valid_mel_l1"]
    # a resumed run reuses the sampled mels instead of sampling again
    stamp = (tmp_path / "f" / "flow_mels" / "train.bin").stat().st_mtime_ns
    train_vocoder(dataclasses.replace(cfg, mel_steps=16), resume=True)
    assert (tmp_path / "f" / "flow_mels" / "train.bin").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="--flow-steps 0"):
        train_vocoder(dataclasses.replace(cfg, out=str(tmp_path / "g"), flow_steps=4))
    with pytest.raises(ValueError, match="mel_input must be"):
        dataclasses.replace(cfg, mel_input="fake").check()
    with pytest.raises(ValueError, match="input mels of shape"):
        clips.use_input_mels(np.zeros((3, clips.n_mels), np.float16))


# ------------------------------------------------------------------------------------ pitch path


def test_harmonic_template_draws_the_harmonics_of_a_real_tone() -> None:
    from aqaa.vocoder.pitch import harmonic_template

    cfg = MelConfig()
    t = np.arange(SR) / SR
    for f0 in (110.0, 150.0, 230.0):
        comb = sum(0.01 * np.sin(2 * np.pi * k * f0 * t) for k in range(1, int(12000 / f0)))
        real = mel_spectrogram(comb.astype(np.float32), cfg)[25].numpy()[:30]
        tmpl = harmonic_template(torch.tensor([[f0]]), cfg)[0, :30, 0].numpy()
        # the striations of the tone's mel in the low bands, where harmonics are resolved
        assert np.corrcoef(real, tmpl)[0, 1] > 0.9, f0
    both = harmonic_template(torch.tensor([[0.0, 150.0]]), cfg)[0]
    assert both.shape == (cfg.n_mels, 2)
    assert torch.all(both[:, 0] == both[0, 0])  # unvoiced: the floor everywhere
    assert both[:, 1].max() > both[0, 0] + 1.5 and both.abs().max() < 1.5


def test_frame_f0_tracks_a_tone_on_the_mel_frames() -> None:
    from aqaa.vocoder.pitch import frame_f0

    cfg = MelConfig()
    x = 0.3 * np.sin(2 * np.pi * 200.0 * np.arange(SR) / SR)
    f0 = frame_f0(x, cfg, 51)
    assert f0.shape == (51,) and f0.dtype == np.float32
    assert abs(np.median(f0[5:45]) - 200.0) < 3.0
    assert not frame_f0(np.zeros(SR), cfg, 51).any()
    assert len(frame_f0(x[:100], cfg, 3)) == 3


def test_pitch_loss_and_f0_decoding_known_values() -> None:
    import torch.nn.functional as F

    from aqaa.vocoder.pitch import LF0_MEAN, LF0_SCALE, pitch_loss, pitch_to_f0

    f0 = torch.tensor([[0.0, 200.0, 100.0, 300.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    lf0 = (math.log(200.0) - LF0_MEAN) / LF0_SCALE
    pred = torch.tensor([[[0.3, -2.0], [lf0 + 0.4, 1.0], [0.0, 3.0], [9.0, -9.0]]])
    l1 = (0.4 + abs((math.log(100.0) - LF0_MEAN) / LF0_SCALE)) / 2  # voiced, unmasked frames
    bce = F.binary_cross_entropy_with_logits(
        torch.tensor([-2.0, 1.0, 3.0]), torch.tensor([0.0, 1, 1])
    )
    assert float(pitch_loss(pred, f0, mask)) == pytest.approx(l1 + float(bce), rel=1e-5)
    hz = pitch_to_f0(pred)
    assert hz[0, 0] == 0 and hz[0, 3] == 0  # negative voicing logits
    assert float(hz[0, 1]) == pytest.approx(200.0 * math.exp(0.4 * LF0_SCALE), rel=1e-4)


def test_pitch_flow_starts_as_its_init_learns_f0_and_streams(
    trained: Path, corpus: Path, tmp_path: Path
) -> None:
    import dataclasses

    from aqaa.train.vocoder import ClipSet, build_cache, train_vocoder

    init = Vocoder.load(trained / "vocoder")
    cfg = dataclasses.replace(train_config(corpus, tmp_path / "p"), init=str(trained / "vocoder"),
                              pitch=True, mel_steps=0, flow_steps=16, lr=1e-2)  # fmt: skip
    steps: list[dict[str, float]] = []
    train_vocoder(cfg, on_step=lambda s, losses: steps.append(losses))
    # the F0 of every frame was computed once into the cache: the chirps' pitch, 120–300 Hz
    cache = build_cache(corpus, init.config.mel, progress=False)
    clips = ClipSet(cache, "train")
    clips.load_f0(progress=False)
    voiced = clips.f0[clips.f0 > 0]
    assert (cache / "train.f0.bin").is_file() and len(voiced) > 0.8 * len(clips.f0)
    assert 110 < np.median(voiced) < 310
    b = clips.flow_batch(np.random.default_rng(0), 2, 5)
    assert b["f0"].shape == b["mel"].shape[:2]
    # the pitch head learns (the flow starts exactly as the init: its pitch input is zero)
    evals = _evals(tmp_path / "p")
    assert evals[-1]["valid_pitch"] < evals[0]["valid_pitch"]
    assert evals[0]["valid_flow"] == pytest.approx(_evals(trained)[0]["valid_flow"], rel=0.5)
    out = Vocoder.load(tmp_path / "p" / "vocoder")
    assert out.config.flow.pitch and out.flow.estimator.pitch_in is not None
    assert out.flow.estimator.pitch_in.weight.abs().max() > 0
    assert out.encoder.pitch_prior is not None and out.encoder.pitch_prior.weight.abs().max() > 0
    # decoding reads the predicted pitch; streaming still equals the offline decode
    codes = random_codes(20)
    offline, _ = out.decode(codes, seed=1)
    wide = StreamConfig(left_context_pairs=30, lookahead_pairs=12)
    streamed = np.concatenate(_stream(out, codes, 7, wide))
    assert np.abs(streamed - offline).max() < 1e-5
    with pytest.raises(ValueError, match="pitch flow needs its template"):
        mu = torch.zeros(1, out.config.mel.n_mels, 4)
        out.flow.sample(mu, torch.zeros_like(mu))
