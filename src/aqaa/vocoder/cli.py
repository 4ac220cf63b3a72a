"""Vocoder commands, registered by :mod:`aqaa.cli`: ``aqaa vocode``, ``aqaa resynth`` and
``aqaa train vocoder``.

Errors a user can fix print one line and exit with code 2.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console

console = Console()

VocDir = Annotated[
    Path | None, typer.Option("--vocoder", help="Vocoder directory (default: the shipped one).")
]
Seed = Annotated[int, typer.Option(help="Seed of the flow's noise (same seed, same audio).")]
Steps = Annotated[int | None, typer.Option("--steps", help="Euler steps (default: the config's).")]
Cfg = Annotated[float | None, typer.Option("--cfg", help="Guidance strength (default: config's).")]


def _fail(msg: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {msg}", highlight=False, soft_wrap=True)
    return typer.Exit(code=2)


def _load_vocoder(directory: Path | None) -> Any:
    from aqaa.vocoder import Vocoder

    try:
        return Vocoder.load(directory)
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None


def read_codes(path: Path) -> np.ndarray:
    """Codes from a file: JSON (a list, or an object with ``codes`` as printed by
    ``aqaa tokenize --json``) or plain text of integers separated by spaces, commas or newlines."""
    if not path.is_file():
        raise ValueError(f"tokens file not found: {path}")
    text = path.read_text().strip()
    if not text:
        raise ValueError(f"{path} is empty")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        try:
            return np.array([int(t) for t in text.replace(",", " ").split()], dtype=np.int64)
        except ValueError:
            raise ValueError(
                f"{path} is neither JSON nor a list of integers separated by spaces or commas"
            ) from None
    if isinstance(obj, dict):
        if "codes" not in obj:
            raise ValueError(f"{path}: a JSON object needs a 'codes' list")
        obj = obj["codes"]
    if not isinstance(obj, list) or not all(isinstance(c, int) for c in obj):
        raise ValueError(f"{path}: expected a JSON list of integer codes")
    return np.asarray(obj, dtype=np.int64)


def _write(out: Path, audio: np.ndarray, rate: int, t0: float) -> None:
    from aqaa.audio import save_audio

    try:
        save_audio(out, audio, rate)
    except (OSError, ValueError) as e:
        raise _fail(str(e)) from None
    dur = len(audio) / rate
    took = time.perf_counter() - t0
    console.print(
        f"wrote {out}: {dur:.2f} s at {rate} Hz in {took:.2f} s (RTF {took / max(dur, 1e-9):.3f})"
    )


def vocode(
    tokens_file: Annotated[Path, typer.Argument(help="Codes in [0, 5120), [l l s s s] order.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output audio (.wav/.flac/.ogg).")],
    vocoder: VocDir = None,
    seed: Seed = 0,
    steps: Steps = None,
    cfg: Cfg = None,
    stream: Annotated[bool, typer.Option(help="Decode chunk by chunk as a server would.")] = False,
) -> None:
    """Turn audio tokens into speech."""
    try:
        codes = read_codes(tokens_file)
    except ValueError as e:
        raise _fail(str(e)) from None
    voc = _load_vocoder(vocoder)
    t0 = time.perf_counter()
    try:
        if stream:
            chunks = [codes[i : i + 15] for i in range(0, len(codes), 15)]
            pieces = list(voc.stream(chunks, seed=seed, n_steps=steps, cfg_strength=cfg))
            audio = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        else:
            audio, _ = voc.decode(codes, seed=seed, n_steps=steps, cfg_strength=cfg)
    except ValueError as e:
        raise _fail(f"{tokens_file}: {e}") from None
    if len(audio) == 0:
        raise _fail(f"{tokens_file}: fewer than 5 codes, nothing to decode (one group is 5 codes)")
    _write(out, audio, voc.sample_rate, t0)


def resynth(
    in_wav: Annotated[Path, typer.Argument(help="Speech to tokenize and vocode again.")],
    out: Annotated[Path, typer.Option("-o", "--out", help="Output audio (.wav/.flac/.ogg).")],
    tokenizer: Annotated[
        Path | None, typer.Option("--tokenizer", help="Tokenizer directory (default: shipped).")
    ] = None,
    vocoder: VocDir = None,
    seed: Seed = 0,
    steps: Steps = None,
    cfg: Cfg = None,
) -> None:
    """Tokenize IN_WAV, then vocode the tokens: a listening test of tokenizer + vocoder."""
    from aqaa.audio import AudioError
    from aqaa.tokenizer import DualCodebookTokenizer

    try:
        tok = DualCodebookTokenizer.load(tokenizer)
    except FileNotFoundError as e:
        raise _fail(str(e)) from None
    voc = _load_vocoder(vocoder)
    try:
        voc.check_tokenizer(tok.fingerprint(), f"the tokenizer {tok.directory}")
    except ValueError as e:
        raise _fail(str(e)) from None
    t0 = time.perf_counter()
    try:
        codes = tok.encode(in_wav).codes
    except (AudioError, FileNotFoundError) as e:
        raise _fail(str(e)) from None
    if len(codes) < 5:
        raise _fail(f"{in_wav} is too short: it gave no whole 120 ms group of tokens")
    audio, rate = voc.decode(codes, seed=seed, n_steps=steps, cfg_strength=cfg)
    console.print(f"{len(codes)} codes ({len(codes) // 5} groups)")
    _write(out, audio, rate, t0)


def train_vocoder(
    data: Annotated[Path, typer.Option(help="Corpus with tokens/{train,valid}.jsonl.")],
    out: Annotated[Path, typer.Option(help="Run directory (checkpoint, logs, plots, vocoder).")],
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoint.pt.")] = False,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop this run at this global step (resume later).")
    ] = None,
    flow_steps: Annotated[int, typer.Option(help="Stage 1 steps (tokens → mel).")] = 20000,
    mel_steps: Annotated[int, typer.Option(help="Stage 2 steps (mel → waveform).")] = 20000,
    preset: Annotated[str, typer.Option(help="Model size: default or tiny.")] = "default",
    init: Annotated[
        Path | None,
        typer.Option(
            help="Start from this vocoder (e.g. retrain only the flow with --mel-steps 0 for a "
            "new tokenizer: its code embeddings start over)."
        ),
    ] = None,
    mel_upsample: Annotated[
        int, typer.Option(help="Mel vocoder head frames per mel frame (2: hop 240, less buzz).")
    ] = 1,
    mel_phase_advance: Annotated[
        bool,
        typer.Option(
            help="Add each STFT bin's steady phase advance to the mel vocoder's phase (removes "
            "the 50 Hz harmonic grid of its buzz; see aqaa.vocoder.istft)."
        ),
    ] = False,
    phase_weight: Annotated[
        float,
        typer.Option(
            help="Weight of the phase losses (instantaneous phase, frequency, group delay) in "
            "stage 2; 0: off (aqaa.vocoder.losses.phase_loss)."
        ),
    ] = 0.0,
    code_noise: Annotated[
        float,
        typer.Option(
            help="Stage 1: chance that each code is swapped for a random one (robustness to the "
            "LM's sampled codes); 0: off."
        ),
    ] = 0.0,
    noise_lm: Annotated[
        Path | None,
        typer.Option(
            help="With --code-noise: swap codes for this LM's teacher-forced samples (its own "
            "errors) instead of random codes (aqaa.train.lm_codes)."
        ),
    ] = None,
    mel_input: Annotated[
        str,
        typer.Option(
            help="Stage 2 input: true (the clip's mel) or flow (the --init vocoder's flow from "
            "the clip's codes: fine-tune the mel vocoder on what the flow writes; --flow-steps 0)."
        ),
    ] = "true",
    pitch: Annotated[
        bool,
        typer.Option(
            "--pitch",
            help="Give the flow the explicit pitch path: an F0 head on the token encoder and the "
            "harmonic template of that F0 as the flow's extra input (added to an --init vocoder "
            "that lacks it, starting from zero).",
        ),
    ] = False,
    pitch_weight: Annotated[float, typer.Option(help="Weight of the F0 head's loss.")] = 1.0,
    batch_size: Annotated[int, typer.Option(help="Stage 1 crops per step.")] = 16,
    mel_batch_size: Annotated[int, typer.Option(help="Stage 2 crops per step.")] = 8,
    lr: Annotated[float, typer.Option(help="Stage 1 peak learning rate.")] = 3e-4,
    mel_lr: Annotated[float, typer.Option(help="Stage 2 peak learning rate.")] = 2e-4,
    gan_start: Annotated[int, typer.Option(help="Stage 2 steps before the GAN losses.")] = 2000,
    ckpt_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 250,
    plot_every: Annotated[int, typer.Option(help="Steps between spectrogram plots.")] = 1000,
    bf16: Annotated[
        str, typer.Option(help="bf16 autocast: auto (if faster here), on, off.")
    ] = "auto",
    threads: Annotated[int | None, typer.Option(help="Torch CPU threads.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of weights and data order.")] = 0,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train the vocoder: flow matching (tokens → mel), then the mel vocoder (mel → 24 kHz)."""
    from aqaa.train.vocoder import DataError, VocoderTrainConfig
    from aqaa.train.vocoder import train_vocoder as run

    cfg = VocoderTrainConfig(
        data=str(data),
        out=str(out),
        preset=preset,
        init=str(init) if init else None,
        mel_upsample=mel_upsample,
        mel_phase_advance=mel_phase_advance,
        phase_weight=phase_weight,
        code_noise=code_noise,
        noise_lm=str(noise_lm) if noise_lm else None,
        mel_input=mel_input,
        pitch=pitch,
        pitch_weight=pitch_weight,
        flow_steps=flow_steps,
        mel_steps=mel_steps,
        max_steps=max_steps,
        batch_size=batch_size,
        mel_batch_size=mel_batch_size,
        lr=lr,
        mel_lr=mel_lr,
        gan_start=gan_start,
        ckpt_every=ckpt_every,
        plot_every=plot_every,
        bf16=bf16,
        threads=threads,
        seed=seed,
        progress=progress,
    )
    try:
        path = run(cfg, resume=resume)
    except (DataError, ValueError, FileExistsError, FileNotFoundError) as e:
        raise _fail(str(e)) from None
    console.print(f"vocoder in {path}; losses in {out / 'log.jsonl'}, plots in {out / 'plots'}")


def join_vocoders(
    flow: Annotated[Path, typer.Option(help="Vocoder whose token encoder and flow are kept.")],
    mel: Annotated[Path, typer.Option(help="Vocoder whose mel vocoder is kept.")],
    out: Annotated[Path, typer.Option(help="Where to write the joined vocoder (fp16).")],
) -> None:
    """Join a flow-only and a mel-only training run (run the two stages in parallel)."""
    from aqaa.train.vocoder import join_vocoders as join

    try:
        path = join(flow, mel, out)
    except (FileNotFoundError, ValueError) as e:
        raise _fail(str(e)) from None
    console.print(f"joined vocoder in {path}")
