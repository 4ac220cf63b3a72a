"""Phoneme symbols for the CTC heads, from espeak-ng IPA strings.

espeak-ng's `--ipa` output is split into symbols: stress marks and word boundaries are dropped (they
are not what a speaker-invariant phone recogniser should have to guess), the length mark `ː` stays
with its vowel, every other character is a symbol. The inventory is the fixed list below plus
anything new a corpus brings (saved with the tokenizer), index 0 being the CTC blank.
"""

from __future__ import annotations

_DROP = set("ˈˌ\u200d-_|.,!?'\"")
BLANK = "<blank>"


def ipa_symbols(ipa: str) -> list[str]:
    """'həlˈoʊ wˈɜːld' -> ['h', 'ə', 'l', 'o', 'ʊ', 'w', 'ɜː', 'l', 'd']"""
    out: list[str] = []
    for ch in ipa:
        if ch.isspace() or ch in _DROP:
            continue
        if ch == "ː" and out:
            out[-1] += ch
        else:
            out.append(ch)
    return out


class PhonemeVocab:
    def __init__(self, symbols: list[str]) -> None:
        if not symbols or symbols[0] != BLANK:
            symbols = [BLANK, *[s for s in symbols if s != BLANK]]
        self.symbols = symbols
        self.index = {s: i for i, s in enumerate(symbols)}

    @classmethod
    def from_texts(cls, ipa_texts: list[str]) -> PhonemeVocab:
        seen = sorted({s for t in ipa_texts for s in ipa_symbols(t)})
        return cls([BLANK, *seen])

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, ipa: str) -> list[int]:
        """Symbol ids; symbols outside the inventory are skipped."""
        return [self.index[s] for s in ipa_symbols(ipa) if s in self.index]

    def decode(self, ids: list[int]) -> list[str]:
        return [self.symbols[i] for i in ids if 0 < i < len(self.symbols)]
