"""The LM's id layout: special tokens, text (byte-level BPE) and exactly 5,120 audio ids.

This module owns every id; nothing else hard-codes one. The layout is

| ids                                   | what                                              |
|---------------------------------------|---------------------------------------------------|
| `0 … 5`                               | specials, in `SPECIALS` order (`PAD_ID` … `TEXT_END_ID`) |
| `N_SPECIAL … audio_base - 1`          | text: the trained byte-level BPE                  |
| `audio_base … audio_base + 5119`      | audio: `audio_id(N) = audio_base + N`, N as in `aqaa.tokenizer.ids` |

`audio_base` depends on how many BPE tokens training produced, so it is a property of a `Vocab`
(read from its tokenizer), not a constant. The audio ids are also tokens of the Hugging Face
tokenizer (`<audio_0>` … `<audio_5119>`, special), so the saved tokenizer covers the whole
model vocabulary and a checkpoint loads with `AutoTokenizer` and serves with vLLM unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from aqaa.tokenizer.ids import AUDIO_CODES, LINGUISTIC_CODES

PAD = "<pad>"
BOT = "<|BOT|>"
EOT = "<|EOT|>"
AUDIO_START = "<audio_start>"
AUDIO_END = "<audio_end>"
TEXT_END = "<text_end>"
SPECIALS: tuple[str, ...] = (PAD, BOT, EOT, AUDIO_START, AUDIO_END, TEXT_END)
PAD_ID, BOT_ID, EOT_ID, AUDIO_START_ID, AUDIO_END_ID, TEXT_END_ID = range(len(SPECIALS))
N_SPECIAL = len(SPECIALS)

#: Default size of the text section (specials + BPE) for the `base` model.
DEFAULT_TEXT_VOCAB = 2048
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


def audio_token(n: int) -> str:
    """The tokenizer's string for audio code `n`."""
    return f"<audio_{n}>"


class Vocab:
    """A trained text tokenizer plus the special and audio ids around it."""

    def __init__(self, tokenizer: object) -> None:
        from tokenizers import Tokenizer

        if not isinstance(tokenizer, Tokenizer):
            raise TypeError("Vocab wraps a tokenizers.Tokenizer")
        self.tokenizer = tokenizer
        for i, s in enumerate(SPECIALS):
            if tokenizer.token_to_id(s) != i:
                raise ValueError(f"tokenizer does not have {s} at id {i}")
        base = tokenizer.token_to_id(audio_token(0))
        if base is None:
            raise ValueError("tokenizer has no audio tokens")
        last = tokenizer.token_to_id(audio_token(AUDIO_CODES - 1))
        if last != base + AUDIO_CODES - 1 or tokenizer.get_vocab_size() != base + AUDIO_CODES:
            raise ValueError("audio tokens must be the last 5,120 contiguous ids")
        self.audio_base: int = base
        self.size: int = base + AUDIO_CODES

    # ----- layout -------------------------------------------------------------------------

    @property
    def n_text(self) -> int:
        """Number of BPE text ids (specials excluded)."""
        return self.audio_base - N_SPECIAL

    def audio_id(self, code: int) -> int:
        """LM id of audio code `code ∈ [0, 5120)`."""
        if not 0 <= code < AUDIO_CODES:
            raise ValueError(f"audio code must be in [0, {AUDIO_CODES}), got {code}")
        return self.audio_base + code

    def audio_ids(self, codes: Iterable[int] | np.ndarray) -> list[int]:
        """LM ids of a sequence of audio codes (validated)."""
        a = np.asarray(list(codes) if not isinstance(codes, np.ndarray) else codes, np.int64)
        if a.size and (a.min() < 0 or a.max() >= AUDIO_CODES):
            raise ValueError(f"audio codes must be in [0, {AUDIO_CODES})")
        return (a + self.audio_base).tolist()

    def audio_code(self, token_id: int) -> int:
        """Inverse of `audio_id`."""
        if not self.is_audio(token_id):
            raise ValueError(f"id {token_id} is not an audio id")
        return token_id - self.audio_base

    def is_audio(self, token_id: int) -> bool:
        return self.audio_base <= token_id < self.size

    def is_text(self, token_id: int) -> bool:
        """A BPE text id (not a special, not audio)."""
        return N_SPECIAL <= token_id < self.audio_base

    def masks(self) -> dict[str, np.ndarray]:
        """Boolean masks over the vocabulary: `text`, `linguistic`, `semantic`, `audio`."""
        n = self.size
        out = {k: np.zeros(n, dtype=bool) for k in ("text", "linguistic", "semantic", "audio")}
        out["text"][N_SPECIAL : self.audio_base] = True
        out["linguistic"][self.audio_base : self.audio_base + LINGUISTIC_CODES] = True
        out["semantic"][self.audio_base + LINGUISTIC_CODES : n] = True
        out["audio"][self.audio_base : n] = True
        return out

    # ----- text ---------------------------------------------------------------------------

    def encode(self, text: str) -> list[int]:
        """BPE ids of `text` (specials inside the string are not interpreted)."""
        ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        bad = [i for i in ids if not self.is_text(i)]
        if bad:
            raise ValueError(f"text {text!r} encodes to non-text ids {bad[:4]}")
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the BPE ids among `ids` (specials and audio are skipped)."""
        return self.tokenizer.decode([i for i in ids if self.is_text(i)], skip_special_tokens=True)

    def token_str(self, token_id: int) -> str:
        return self.tokenizer.id_to_token(token_id)

    # ----- persistence --------------------------------------------------------------------

    def save(self, directory: str | Path) -> None:
        """Write `tokenizer.json` + `tokenizer_config.json` (loadable with `AutoTokenizer`)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save(str(directory / TOKENIZER_FILE))
        config = {
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": BOT,
            "eos_token": EOT,
            "pad_token": PAD,
            "clean_up_tokenization_spaces": False,
            "model_max_length": 1_000_000,
        }
        (directory / TOKENIZER_CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | Path) -> Vocab:
        from tokenizers import Tokenizer

        path = Path(directory) / TOKENIZER_FILE
        if not path.exists():
            raise FileNotFoundError(f"no {TOKENIZER_FILE} in {directory}")
        return cls(Tokenizer.from_file(str(path)))

    def fingerprint(self) -> str:
        """What decides the id of every string (saving may add a no-op post-processor)."""
        d = json.loads(self.tokenizer.to_str())
        keys = ("model", "added_tokens", "normalizer", "pre_tokenizer", "decoder")
        return json.dumps({k: d.get(k) for k in keys}, sort_keys=True)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.fingerprint() == other.fingerprint()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def __repr__(self) -> str:
        return f"Vocab(text={self.n_text}, audio_base={self.audio_base}, size={self.size})"


def train_vocab(texts: Iterable[str], text_vocab_size: int = DEFAULT_TEXT_VOCAB) -> Vocab:
    """Train a byte-level BPE on `texts` and append the 5,120 audio tokens.

    `text_vocab_size` counts specials, the 256-byte alphabet and merges; a small corpus may
    yield fewer merges. Training is deterministic for the same texts in the same order.
    """
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers

    if text_vocab_size < N_SPECIAL + 256:
        raise ValueError(f"text_vocab_size must be at least {N_SPECIAL + 256}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=text_vocab_size,
        special_tokens=list(SPECIALS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    tok.add_special_tokens(
        [AddedToken(audio_token(i), special=True, normalized=False) for i in range(AUDIO_CODES)]
    )
    return Vocab(tok)


def shard_texts(items: Iterable[dict]) -> Iterator[str]:
    """The texts of token-shard records a vocabulary is trained on (questions and answers)."""
    for item in items:
        for t in item["turns"]:
            yield t["human_text"]
            yield t["answer_text"]
