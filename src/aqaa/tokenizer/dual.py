"""`DualCodebookTokenizer`: audio → linguistic + semantic codes → the interleaved LM stream.

    tok = DualCodebookTokenizer.load()            # the default weights shipped in the package
    out = tok.encode("question.wav")              # or (array, sample_rate), or bytes
    out.linguistic, out.semantic, out.codes        # 16.67 Hz, 25 Hz, interleaved [l l s s s] in [0, 5120)

    stream = tok.stream()                          # a server tokenizes while the user speaks
    for chunk in microphone: codes = stream.push(chunk)   # 16 kHz float chunks of any size
    codes = stream.flush()

Streaming computes the same function as `encode` (same frames, same block-masked attention); on
a signal that is already peak-normalised the codes are identical (tested). A live stream cannot
know the final peak, so it normalises with the running peak; pass `gain=` when the level is known.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from aqaa.audio import HOP_LENGTH, SAMPLE_RATE, WIN_LENGTH, load_audio, num_frames
from aqaa.tokenizer import ids
from aqaa.tokenizer.encoder import EncoderConfig, EncoderState
from aqaa.tokenizer.features import fbank, stack_frames, stacked_frames
from aqaa.tokenizer.linguistic import CmnState, LinguisticConfig, LinguisticTokenizer
from aqaa.tokenizer.phonemes import PhonemeVocab
from aqaa.tokenizer.semantic import SemanticConfig, SemanticTokenizer

DEFAULT_DIR = Path(__file__).resolve().parent.parent / "weights" / "tokenizer"


def check_tokenizer_match(
    part: str, have: str | None, want: str | None, what: str, fix: str
) -> None:
    """Raise ValueError when `part` learnt the codes of tokenizer `have` but `what` uses tokenizer
    `want` (fingerprints; None on either side means unknown and skips the check). A model reads
    another tokenizer's codes as noise, and nothing in the ids shows it."""
    if have is not None and want is not None and have != want:
        raise ValueError(
            f"the {part} reads the audio codes of tokenizer {have}, but {what} uses tokenizer "
            f"{want}: {fix}"
        )


@dataclass
class Tokens:
    linguistic: np.ndarray
    semantic: np.ndarray
    codes: np.ndarray
    duration: float

    @property
    def rates(self) -> dict[str, float]:
        d = max(self.duration, 1e-9)
        return {
            "linguistic_hz": len(self.linguistic) / d,
            "semantic_hz": len(self.semantic) / d,
            "interleaved_hz": len(self.codes) / d,
        }


@dataclass
class TokenizerConfig:
    linguistic: LinguisticConfig
    semantic: SemanticConfig
    phonemes: list[str]
    #: Fingerprint of the tokenizer this one was fine-tuned from with its k-means codebook and its
    #: semantic branch kept (`aqaa train tokenizer --init --keep-centroids --freeze-semantic`):
    #: its codes mean what that tokenizer's codes meant, so an LM and a vocoder trained on them
    #: may adopt it (`aqaa train adopt`). None (left out of the JSON) for any other tokenizer.
    keeps_codes_of: str | None = None

    def to_json(self) -> str:
        d = asdict(self)
        if (
            d["keeps_codes_of"] is None
        ):  # so configs (and fingerprints) from before it stay the same
            del d["keeps_codes_of"]
        return json.dumps(d, indent=2, ensure_ascii=False)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TokenizerConfig:
        ling = dict(d["linguistic"])
        ling["encoder"] = EncoderConfig(**ling["encoder"])
        sem = dict(d["semantic"])
        sem["encoder"] = EncoderConfig(**sem["encoder"])
        sem["decoder"] = EncoderConfig(**sem["decoder"])
        sem["fsq_levels"] = tuple(sem["fsq_levels"])
        return cls(
            LinguisticConfig(**ling),
            SemanticConfig(**sem),
            list(d["phonemes"]),
            d.get("keeps_codes_of"),
        )


class DualCodebookTokenizer:
    def __init__(self, cfg: TokenizerConfig) -> None:
        self.cfg = cfg
        self.linguistic = LinguisticTokenizer(cfg.linguistic).eval()
        self.semantic = SemanticTokenizer(cfg.semantic).eval()
        self.vocab = PhonemeVocab(cfg.phonemes)
        #: where `load` read it from (None for a tokenizer built in memory)
        self.directory: Path | None = None

    # ----------------------------------------------------------------------------- persistence
    def state_dict(self) -> dict[str, torch.Tensor]:
        sd = {f"linguistic.{k}": v for k, v in self.linguistic.state_dict().items()}
        sd |= {f"semantic.{k}": v for k, v in self.semantic.state_dict().items()}
        return sd

    def fingerprint(self) -> str:
        """12 hex digits naming the codes this tokenizer writes: a hash of its config and of its
        weights as saved (fp16), so a saved copy and the model it was saved from agree.

        Token shards and LM checkpoints record it, so an LM is never paired with the tokens of
        another tokenizer without an error (`aqaa.lm.model.check_audio_tokenizer`)."""
        h = hashlib.sha256(self.cfg.to_json().encode())
        for k, v in sorted(self.state_dict().items()):
            t = v.detach().to(torch.float16) if v.is_floating_point() else v.detach()
            h.update(k.encode())
            h.update(t.contiguous().numpy().tobytes())
        return h.hexdigest()[:12]

    def save(self, directory: Path | str, dtype: torch.dtype = torch.float16) -> Path:
        """`model.safetensors` (weights cast to `dtype`) + `config.json`, written atomically."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        sd = {
            k: v.detach().to(dtype).contiguous() if v.is_floating_point() else v.contiguous()
            for k, v in self.state_dict().items()
        }
        tmp = d / "model.safetensors.tmp"
        save_file(sd, str(tmp))
        tmp.replace(d / "model.safetensors")
        (d / "config.json.tmp").write_text(self.cfg.to_json())
        (d / "config.json.tmp").replace(d / "config.json")
        return d

    @classmethod
    def load(cls, directory: Path | str | None = None) -> DualCodebookTokenizer:
        d = Path(directory) if directory is not None else DEFAULT_DIR
        if not (d / "config.json").exists() or not (d / "model.safetensors").exists():
            raise FileNotFoundError(
                f"no tokenizer in {d} (expected config.json and model.safetensors); "
                "train one with `aqaa train tokenizer`"
            )
        tok = cls(TokenizerConfig.from_dict(json.loads((d / "config.json").read_text())))
        sd = {
            k: v.float() if v.is_floating_point() else v
            for k, v in load_file(str(d / "model.safetensors")).items()
        }
        tok.linguistic.load_state_dict(
            {k[11:]: v for k, v in sd.items() if k.startswith("linguistic.")}
        )
        tok.semantic.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("semantic.")})
        tok.directory = d
        return tok

    # ----------------------------------------------------------------------------- encoding
    @torch.no_grad()
    def encode_features(self, feats: torch.Tensor, lengths: torch.Tensor | None = None):
        """fbank (B, F, 80) -> linguistic codes (B, T_l), semantic codes (B, T_s) and lengths."""
        ling_cfg, sem_cfg = self.cfg.linguistic, self.cfg.semantic
        f_len = lengths if lengths is not None else torch.full((feats.shape[0],), feats.shape[1])
        lfr = stack_frames(self.linguistic.norm(feats), ling_cfg.lfr_m, ling_cfg.lfr_n)
        stk = stack_frames(self.semantic.norm(feats), sem_cfg.stack, sem_cfg.stack)
        l_len = torch.tensor(
            [stacked_frames(int(n), ling_cfg.lfr_m, ling_cfg.lfr_n) for n in f_len]
        )
        s_len = torch.tensor([stacked_frames(int(n), sem_cfg.stack, sem_cfg.stack) for n in f_len])
        ling = self.linguistic.quantize(self.linguistic.hidden(lfr, l_len))
        _, sem = self.semantic.encode(stk, s_len)
        return ling, sem, l_len, s_len

    def encode(
        self, audio: Any, sample_rate: int | None = None, *, max_duration: float = 60.0
    ) -> Tokens:
        """Tokenize a path, bytes, file object or array (then `sample_rate` is required)."""
        x = load_audio(audio, sample_rate, max_duration=max_duration)
        return self.encode_waveform(x)

    def encode_waveform(self, x: np.ndarray) -> Tokens:
        """Tokenize 16 kHz mono audio that is already normalised (no checks, no resampling)."""
        feats = fbank(x)[None]
        ling, sem, l_len, s_len = self.encode_features(feats)
        ling_np = ling[0, : l_len[0]].numpy()
        sem_np = sem[0, : s_len[0]].numpy()
        return Tokens(ling_np, sem_np, ids.interleave(ling_np, sem_np), len(x) / SAMPLE_RATE)

    def stream(self, gain: float | None = None) -> TokenizerStream:
        return TokenizerStream(self, gain)


class TokenizerStream:
    """Incremental tokenization of one utterance; emits interleaved codes group by group."""

    def __init__(self, tok: DualCodebookTokenizer, gain: float | None = None) -> None:
        self.tok = tok
        self.gain = gain
        self.peak = 0.0
        self._samples = np.zeros(0, dtype=np.float32)
        self._feats: list[torch.Tensor] = []
        self._n_feats = 0
        self._ling_done = 0  # stacked frames already encoded
        self._sem_done = 0
        self._ling_state = EncoderState()
        self._ling_cmn = CmnState()
        self._sem_state = EncoderState()
        self.linguistic: list[int] = []
        self.semantic: list[int] = []
        self._groups_emitted = 0
        self.finished = False

    def push(self, chunk: np.ndarray) -> np.ndarray:
        """Add 16 kHz float samples; returns the interleaved codes that became final."""
        if self.finished:
            raise RuntimeError("this stream was flushed; start a new one with tokenizer.stream()")
        chunk = np.asarray(chunk, dtype=np.float32).reshape(-1)
        if self.gain is None:  # running-peak normalisation (see the module docstring)
            self.peak = max(self.peak, float(np.max(np.abs(chunk), initial=0.0)))
            chunk = chunk / max(self.peak, 0.01) * 0.999
        else:
            chunk = chunk * self.gain
        self._samples = np.concatenate([self._samples, chunk])
        n = num_frames(len(self._samples), HOP_LENGTH, WIN_LENGTH)
        if n:
            self._feats.append(fbank(self._samples[: (n - 1) * HOP_LENGTH + WIN_LENGTH]))
            self._n_feats += n
            self._samples = self._samples[n * HOP_LENGTH :]
        return self._advance(final=False)

    def flush(self) -> np.ndarray:
        """End of the utterance: encode the partial last chunks; returns the last codes."""
        out = self._advance(final=True)
        self.finished = True
        return out

    @torch.no_grad()
    def _advance(self, final: bool) -> np.ndarray:
        tok = self.tok
        lc, sc = tok.cfg.linguistic, tok.cfg.semantic
        feats = torch.cat(self._feats) if self._feats else torch.zeros(0, 80)
        self._feats = [feats]
        base = self._n_feats - feats.shape[0]  # absolute index of feats[0]
        n_l = stacked_frames(self._n_feats, lc.lfr_m, lc.lfr_n)
        n_s = stacked_frames(self._n_feats, sc.stack, sc.stack)
        enc_l, enc_s = tok.linguistic.encoder, tok.semantic.encoder
        todo_l = (
            n_l
            if final
            else self._ling_done + (n_l - self._ling_done) // enc_l.cfg.chunk * enc_l.cfg.chunk
        )
        todo_s = (
            n_s
            if final
            else self._sem_done + (n_s - self._sem_done) // enc_s.cfg.chunk * enc_s.cfg.chunk
        )
        if todo_l > self._ling_done:
            start = self._ling_done * lc.lfr_n
            lfr = stack_frames(tok.linguistic.norm(feats[start - base :]), lc.lfr_m, lc.lfr_n)
            lfr = lfr[: todo_l - self._ling_done]
            lfr = tok.linguistic.cmn(lfr[None], self._ling_cmn)
            h, _ = enc_l.stream(lfr, self._ling_state, final=final)
            self.linguistic += tok.linguistic.quantize(h)[0].tolist()
            self._ling_done = todo_l
        if todo_s > self._sem_done:
            start = self._sem_done * sc.stack
            stk = stack_frames(tok.semantic.norm(feats[start - base :]), sc.stack, sc.stack)
            stk = stk[: todo_s - self._sem_done]
            h, _ = enc_s.stream(stk[None], self._sem_state, final=final)
            _, codes = tok.semantic.fsq(tok.semantic.pre_q(h))
            self.semantic += codes[0].tolist()
            self._sem_done = todo_s
        # drop features no stacker needs any more
        keep_from = min(self._ling_done * lc.lfr_n, self._sem_done * sc.stack)
        if keep_from > base:
            self._feats = [feats[keep_from - base :]]
        groups = min(len(self.linguistic) // 2, len(self.semantic) // 3)
        new = ids.interleave(
            np.array(self.linguistic[self._groups_emitted * 2 : groups * 2], dtype=np.int64),
            np.array(self.semantic[self._groups_emitted * 3 : groups * 3], dtype=np.int64),
        )
        self._groups_emitted = groups
        return new
