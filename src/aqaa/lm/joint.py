"""Joint CTC/attention decoding of the ASR task: the LM's spelling head votes on every word.

After `--ctc-weight` pretraining (`aqaa.lm.spelling`) the LM can transcribe a clip two ways: its
decoder writes BPE tokens after the audio (attention decoding), and its output head spells letters
at the audio positions (CTC). Measured in session 6, the second is much better early in training
(lm5 @ 800: spelling CER 27% on training clips while the decoder's WER is 91%). Hybrid decoding
(Watanabe et al., 2017, as in ESPnet) uses both in one beam search: each hypothesis is scored by
``(1 - λ) · log p_att(y) + λ · log p_ctc(prefix = spell(y))``, where the CTC prefix probability is
summed over every alignment of the hypothesis' letters to the clip. The decoder brings the
vocabulary and the sentence; the CTC term keeps it on what was actually said. No new weights.

Written here rather than taken from a library: ESPnet's `CTCPrefixScore` is tied to its own
decoders and would pull in the whole toolkit; the recursion is twenty lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import DynamicCache

from aqaa.lm.format import FormatConfig, asr_prompt
from aqaa.lm.spelling import SPELL_CHARS, spell_columns, spell_targets
from aqaa.lm.vocab import N_SPECIAL, TEXT_END_ID, Vocab

_NEG = -math.inf


class CTCPrefixScorer:
    """CTC prefix log-probabilities of letter strings over one clip.

    `logp` (T, C) are log-probabilities per position over blank (class 0) and the letters of
    `SPELL_CHARS` (class ``i + 1``). States are cached per string, so a beam that extends a
    hypothesis by one token costs one pass over T per new letter.
    """

    def __init__(self, logp: np.ndarray) -> None:
        if logp.ndim != 2 or logp.shape[0] == 0:
            raise ValueError(f"need (T, C) log-probabilities with T > 0, got {logp.shape}")
        self.logp = logp.astype(np.float64)
        blank = np.cumsum(self.logp[:, 0])
        # (r_n, r_b, prefix): paths ending in a letter / a blank at each t, and log ψ
        self._states: dict[str, tuple[np.ndarray, np.ndarray, float]] = {
            "": (np.full(len(blank), _NEG), blank, 0.0)
        }

    def _state(self, s: str) -> tuple[np.ndarray, np.ndarray, float]:
        if s in self._states:
            return self._states[s]
        r_n, r_b, _ = self._state(s[:-1])
        c = SPELL_CHARS.index(s[-1]) + 1
        x = self.logp[:, c]
        # a repeated letter needs a blank in between
        phi = r_b if len(s) > 1 and s[-2] == s[-1] else np.logaddexp(r_n, r_b)
        n_new = np.full_like(r_n, _NEG)
        b_new = np.full_like(r_b, _NEG)
        n_new[0] = x[0] if len(s) == 1 else _NEG
        psi = n_new[0]
        blank = self.logp[:, 0]
        for t in range(1, len(x)):
            n_new[t] = np.logaddexp(n_new[t - 1], phi[t - 1]) + x[t]
            b_new[t] = np.logaddexp(b_new[t - 1], n_new[t - 1]) + blank[t]
            psi = np.logaddexp(psi, phi[t - 1] + x[t])
        self._states[s] = (n_new, b_new, float(psi))
        return self._states[s]

    def prefix(self, s: str) -> float:
        """log P(the clip's labelling starts with `s`)."""
        return self._state(s)[2]

    def full(self, s: str) -> float:
        """log P(the clip's labelling is exactly `s`)."""
        r_n, r_b, _ = self._state(s)
        return float(np.logaddexp(r_n[-1], r_b[-1]))


def spelled(text: str) -> str:
    """The letters CTC spells for `text` (the targets of `aqaa.lm.spelling`, as a string)."""
    return "".join(SPELL_CHARS[c - 1] for c in spell_targets(text))


@dataclass
class _Hyp:
    ids: list[int]
    att: float
    score: float


@torch.no_grad()
def joint_transcribe(
    model: torch.nn.Module,
    vocab: Vocab,
    codes: Sequence[int] | np.ndarray,
    fmt: FormatConfig,
    ctc_weight: float = 0.3,
    beam: int = 4,
    candidates: int = 8,
    max_new_tokens: int = 64,
) -> str:
    """Transcript of a question's audio tokens by joint CTC/attention beam search (the ASR
    prompt, text mode). ``ctc_weight`` 0 is plain beam search on the decoder."""
    if not 0.0 <= ctc_weight <= 1.0:
        raise ValueError(f"ctc_weight must be in [0, 1], got {ctc_weight}")
    if len(codes) == 0:
        raise ValueError("the question has no audio tokens")
    ids, (a, e) = asr_prompt(vocab, codes, fmt)
    cache = DynamicCache()
    out = model.model(input_ids=torch.tensor([ids]), cache=cache, use_cache=True)
    hidden = out.last_hidden_state[0]
    cols = torch.tensor(spell_columns(vocab))
    spell_logp = (hidden[a:e] @ model.lm_head.weight[cols].T).float()
    ctc = CTCPrefixScorer(spell_logp.log_softmax(-1).numpy())
    allowed = torch.zeros(model.lm_head.weight.shape[0], dtype=torch.bool)
    allowed[N_SPECIAL : vocab.audio_base] = True  # BPE text
    allowed[TEXT_END_ID] = True
    logits = model.lm_head(hidden[-1:]).float()
    alive = [_Hyp([], 0.0, 0.0)]
    done: list[_Hyp] = []
    for _ in range(max_new_tokens):
        logp = logits.masked_fill(~allowed, _NEG).log_softmax(-1)  # (len(alive), V)
        cand: list[tuple[float, float, int, int]] = []  # score, att, beam index, token
        for b, h in enumerate(alive):
            top = logp[b].topk(candidates)
            for lp, tok in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                att = h.att + lp
                letters = spelled(vocab.decode(h.ids + ([] if tok == TEXT_END_ID else [tok])))
                c = ctc.full(letters) if tok == TEXT_END_ID else ctc.prefix(letters)
                cand.append(((1 - ctc_weight) * att + ctc_weight * c, att, b, tok))
        cand.sort(key=lambda x: -x[0])
        keep: list[tuple[float, float, int, int]] = []
        for sc, att, b, tok in cand:
            if tok == TEXT_END_ID:
                done.append(_Hyp(alive[b].ids, att, sc))
            elif len(keep) < beam:
                keep.append((sc, att, b, tok))
        best_done = max((h.score for h in done), default=_NEG)
        if not keep or best_done >= keep[0][0]:
            break  # scores only fall as hypotheses grow: nothing alive can win any more
        cache.reorder_cache(torch.tensor([b for _, _, b, _ in keep]))
        alive = [_Hyp([*alive[b].ids, tok], att, sc) for sc, att, b, tok in keep]
        new = torch.tensor([[tok] for _, _, _, tok in keep])
        h = model.model(input_ids=new, cache=cache, use_cache=True).last_hidden_state
        logits = model.lm_head(h[:, -1]).float()
    best = max(done or alive, key=lambda h: h.score)
    return vocab.decode(best.ids)
