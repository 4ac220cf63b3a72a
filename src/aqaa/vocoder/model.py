"""The :class:`Vocoder`: audio codes → 24 kHz speech, offline or streaming; save, load, export.

Pipeline (design §1.4): codes → :func:`~aqaa.vocoder.tokens.regroup` into 25 Hz pairs →
:class:`~aqaa.vocoder.tokens.TokenEncoder` (``mu`` at 50 Hz) → :class:`~aqaa.vocoder.flow.FlowMatching`
(a few Euler steps from seeded noise, with classifier-free guidance) → normalised log-mel →
:class:`~aqaa.vocoder.istft.MelVocoder` → waveform. ``G`` whole groups of codes give ``6·G`` mel
frames and ``G × 120 ms × 24 kHz = 2880·G`` samples.
With ``flow.pitch`` the encoder also predicts F0, and the flow reads its
harmonic template (:mod:`aqaa.vocoder.pitch`).

The flow's initial noise is a function of the seed and the *absolute* mel-frame index
(:func:`frame_noise`), so a decode is deterministic and a streamed window draws the same noise as
the offline decode for the same frames.

On disk a vocoder is a directory with ``config.json`` (the dataclass configs) and
``model.safetensors`` (fp32, or fp16 for the committed default: :meth:`Vocoder.save` with
``fp16=True``; loading always casts to fp32).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from aqaa.vocoder.flow import FlowConfig, FlowMatching
from aqaa.vocoder.istft import MelVocoder, MelVocoderConfig
from aqaa.vocoder.layers import count_params
from aqaa.vocoder.mel import MelConfig
from aqaa.vocoder.pitch import harmonic_template, pitch_to_f0
from aqaa.vocoder.stream import StreamConfig, StreamDecoder, stream_decode
from aqaa.vocoder.tokens import FRAMES_PER_PAIR, TokenEncoder, TokenEncoderConfig, regroup

#: Where the shipped default vocoder lives (fp16 safetensors + config.json).
DEFAULT_DIR = Path(__file__).resolve().parent.parent / "weights" / "vocoder"
FORMAT_VERSION = 1
_NOISE_BLOCK = 64  # frames per independently seeded noise block


@dataclass
class VocoderConfig:
    mel: MelConfig = field(default_factory=MelConfig)
    tokens: TokenEncoderConfig = field(default_factory=TokenEncoderConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    vocoder: MelVocoderConfig = field(default_factory=MelVocoderConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)

    @classmethod
    def tiny(cls) -> VocoderConfig:
        """A 0.36M-parameter model (0.16M of it code embeddings) for tests."""
        return cls(
            tokens=TokenEncoderConfig(dim=32, layers=1, heads=2, window=4, ff_mult=2),
            flow=FlowConfig(channels=32, mid_blocks=1, heads=2, window=4, time_dim=32, n_steps=2),
            vocoder=MelVocoderConfig(dim=32, intermediate=64, layers=2),
            stream=StreamConfig(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"format_version": FORMAT_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VocoderConfig:
        parts = {f.name: f.type for f in dataclasses.fields(cls)}
        kinds = {
            "mel": MelConfig,
            "tokens": TokenEncoderConfig,
            "flow": FlowConfig,
            "vocoder": MelVocoderConfig,
            "stream": StreamConfig,
        }
        unknown = set(d) - set(parts) - {"format_version"}
        if unknown:
            raise ValueError(f"unknown vocoder config sections: {sorted(unknown)}")
        return cls(**{k: kinds[k](**d[k]) for k in parts if k in d})

    def check(self) -> None:
        if self.vocoder.hop_length != self.mel.hop_length:
            raise ValueError("the mel vocoder's hop must equal the mel hop")
        if self.flow.n_mels != self.mel.n_mels or self.tokens.n_mels != self.mel.n_mels:
            raise ValueError("all parts must use the mel config's n_mels")
        if self.vocoder.n_mels != self.mel.n_mels:
            raise ValueError("the mel vocoder must use the mel config's n_mels")


def frame_noise(seed: int, start: int, stop: int, n_mels: int) -> torch.Tensor:
    """Standard normal noise ``(stop − start, n_mels)`` for absolute mel frames ``[start, stop)``.

    Frames are drawn in blocks of 64, each from a generator seeded by ``(seed, block)``, so any
    window of frames gets the same values as the whole utterance.
    """
    if stop <= start:
        return torch.zeros(0, n_mels)
    b0, b1 = start // _NOISE_BLOCK, (stop - 1) // _NOISE_BLOCK
    blocks = []
    for b in range(b0, b1 + 1):
        g = torch.Generator().manual_seed((int(seed) * 1_000_003 + b) % (2**63))
        blocks.append(torch.randn(_NOISE_BLOCK, n_mels, generator=g))
    allf = torch.cat(blocks)
    off = start - b0 * _NOISE_BLOCK
    return allf[off : off + stop - start]


class Vocoder(nn.Module):
    """Token-only vocoder: ``decode(codes) -> (audio, 24000)`` and ``stream(token_chunks)``."""

    def __init__(self, config: VocoderConfig | None = None) -> None:
        super().__init__()
        self.config = config or VocoderConfig()
        self.config.check()
        c = self.config
        #: fingerprint of the audio tokenizer whose codes the flow was trained on (None: unknown);
        #: saved in config.json, checked by the engine and by `aqaa train ship`
        self.audio_tokenizer: str | None = None
        self.encoder = TokenEncoder(c.tokens, pitch=c.flow.pitch)
        self.flow = FlowMatching(c.flow)
        self.mel_vocoder = MelVocoder(c.vocoder)
        # per-bin statistics of the training log-mel; the flow and the mel vocoder see z-scores
        self.register_buffer("mel_mean", torch.full((c.mel.n_mels,), -5.0))
        self.register_buffer("mel_std", torch.full((c.mel.n_mels,), 3.0))
        self.bf16 = False  # bf16 autocast at inference (faster on CPUs with AMX/AVX512-BF16)

    # ---- sizes ---------------------------------------------------------------------------------

    @property
    def sample_rate(self) -> int:
        return self.config.mel.sample_rate

    @property
    def samples_per_pair(self) -> int:
        return FRAMES_PER_PAIR * self.config.mel.hop_length

    def num_samples(self, n_codes: int) -> int:
        """Samples decoded from ``n_codes`` codes (whole groups only): 2880 per group at 24 kHz."""
        groups = n_codes // 5
        return groups * 3 * self.samples_per_pair

    def param_counts(self) -> dict[str, int]:
        return {
            "token_encoder": count_params(self.encoder),
            "flow_estimator": count_params(self.flow),
            "mel_vocoder": count_params(self.mel_vocoder),
            "total": count_params(self),
        }

    # ---- mel normalisation ---------------------------------------------------------------------

    def normalize(self, logmel: torch.Tensor) -> torch.Tensor:
        return (logmel - self.mel_mean) / self.mel_std

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.mel_std + self.mel_mean

    def condition(
        self, mu: torch.Tensor, f0_hz: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The flow's inputs from the encoder's ``mu`` (B, F, n_mels) and, for a pitch flow, an
        F0 contour (B, F) in Hz: (``mu`` (B, n_mels, F) plus the template's learnt share,
        the harmonic template (B, n_mels, F) or None)."""
        mu = mu.float().transpose(1, 2)
        if f0_hz is None or self.encoder.pitch_prior is None:
            return mu, None
        aux = harmonic_template(f0_hz, self.config.mel)
        return mu + self.encoder.pitch_prior(aux), aux

    # ---- decoding ------------------------------------------------------------------------------

    @torch.inference_mode()
    def synthesize(
        self,
        ling: np.ndarray,
        sem: np.ndarray,
        offset: int = 0,
        seed: int = 0,
        n_steps: int | None = None,
        cfg_strength: float | None = None,
    ) -> tuple[torch.Tensor, np.ndarray]:
        """Decode pairs ``[offset, offset + P)``: → (log-mel ``(2P, n_mels)``, audio ``(2P·hop,)``).

        The one code path of both :meth:`decode` and the streaming windows; audio is not clipped.
        """
        was = self.training
        self.eval()
        try:
            p = len(sem)
            n_mels = self.config.mel.n_mels
            if p == 0:
                return torch.zeros(0, n_mels), np.zeros(0, dtype=np.float32)
            lt = torch.as_tensor(np.asarray(ling), dtype=torch.long)[None]
            st = torch.as_tensor(np.asarray(sem), dtype=torch.long)[None]
            noise = frame_noise(seed, 2 * offset, 2 * (offset + p), n_mels).T[None]
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
                mu, pitch = self.encoder.encode(lt, st, offset=offset)
                mu, aux = self.condition(mu, None if pitch is None else pitch_to_f0(pitch))
                z = self.flow.sample(mu, noise, None, n_steps, cfg_strength, aux)
                audio = self.mel_vocoder(z.transpose(1, 2), frame0=FRAMES_PER_PAIR * offset)[
                    0
                ].float()
            return self.denormalize(z[0].T.float()), audio.numpy().astype(np.float32)
        finally:
            self.train(was)

    def decode(
        self,
        codes: np.ndarray | list[int] | torch.Tensor,
        seed: int = 0,
        n_steps: int | None = None,
        cfg_strength: float | None = None,
    ) -> tuple[np.ndarray, int]:
        """Interleaved codes in ``[0, 5120)`` → (float32 mono audio in [-1, 1], sample rate).

        An incomplete tail group is dropped; ``G`` groups give ``2880·G`` samples. Raises
        ``ValueError`` for codes out of range or not in ``[l l s s s]`` order.
        """
        ling, sem = regroup(_whole_groups(codes))
        audio = self.synthesize(ling, sem, 0, seed, n_steps, cfg_strength)[1]
        return np.clip(audio, -1.0, 1.0), self.sample_rate

    @torch.inference_mode()
    def copy_synthesis(self, audio: np.ndarray) -> np.ndarray:
        """Audio at the vocoder's rate → its log-mel → the mel vocoder (no tokens, no flow).

        The mel vocoder's own ceiling: `aqaa eval vocoder` scores it beside the resynthesis, so a
        quality gap can be put on the flow or on the mel vocoder.
        """
        from aqaa.vocoder.mel import mel_spectrogram

        mel = mel_spectrogram(np.asarray(audio, dtype=np.float32), self.config.mel)
        return self.vocode_mel(mel)[: len(audio)]

    @torch.inference_mode()
    def vocode_mel(self, logmel: np.ndarray | torch.Tensor) -> np.ndarray:
        """A log-mel ``(F, n_mels)`` (not normalised) → ``F · hop`` samples by the mel vocoder."""
        was = self.training
        self.eval()
        try:
            mel = torch.as_tensor(np.asarray(logmel, dtype=np.float32))
            y = self.mel_vocoder(self.normalize(mel)[None])[0].float().numpy()
            return np.clip(y, -1.0, 1.0).astype(np.float32)
        finally:
            self.train(was)

    def decode_mel(
        self,
        codes: np.ndarray | list[int] | torch.Tensor,
        seed: int = 0,
        n_steps: int | None = None,
        cfg_strength: float | None = None,
    ) -> torch.Tensor:
        """Codes → the flow's log-mel ``(6·G, n_mels)`` (for plots and Griffin-Lim)."""
        ling, sem = regroup(_whole_groups(codes))
        return self.synthesize(ling, sem, 0, seed, n_steps, cfg_strength)[0]

    def stream(
        self,
        token_chunks: Iterable[Iterable[int]],
        seed: int = 0,
        n_steps: int | None = None,
        cfg_strength: float | None = None,
        config: StreamConfig | None = None,
    ) -> Iterator[np.ndarray]:
        """Yield float32 audio chunks as code chunks arrive (see :mod:`aqaa.vocoder.stream`)."""
        return stream_decode(self, token_chunks, seed, n_steps, cfg_strength, config)

    def stream_decoder(self, seed: int = 0, **kwargs: Any) -> StreamDecoder:
        """An incremental :class:`~aqaa.vocoder.stream.StreamDecoder` (``push``/``flush``)."""
        return StreamDecoder(self, seed, **kwargs)

    # ---- persistence ---------------------------------------------------------------------------

    def check_tokenizer(self, fingerprint: str | None, what: str) -> None:
        """Fail if the flow learnt another tokenizer's codes than `what`'s (`fingerprint`)."""
        from aqaa.tokenizer.dual import check_tokenizer_match

        fix = "retrain the vocoder's flow stage on token shards of that tokenizer"
        check_tokenizer_match("vocoder", self.audio_tokenizer, fingerprint, what, fix)

    def save(self, directory: str | os.PathLike[str], fp16: bool = False) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (fp16 if asked) atomically."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        state = {
            k: (v.half() if fp16 and v.is_floating_point() else v).contiguous()
            for k, v in self.state_dict().items()
        }
        tmp = d / f".model.safetensors.{os.getpid()}.tmp"
        save_file(state, str(tmp), metadata={"format": "pt", "dtype": "fp16" if fp16 else "fp32"})
        os.replace(tmp, d / "model.safetensors")
        tmpc = d / f".config.json.{os.getpid()}.tmp"
        meta = {"audio_tokenizer": self.audio_tokenizer} if self.audio_tokenizer else {}
        tmpc.write_text(json.dumps({**self.config.to_dict(), **meta}, indent=2) + "\n")
        os.replace(tmpc, d / "config.json")
        return d

    @classmethod
    def load(cls, directory: str | os.PathLike[str] | None = None) -> Vocoder:
        """Load a directory written by :meth:`save` (default: the shipped vocoder), fp32, eval."""
        d = Path(directory) if directory is not None else DEFAULT_DIR
        cfg_path, weights = d / "config.json", d / "model.safetensors"
        if not cfg_path.is_file() or not weights.is_file():
            raise FileNotFoundError(
                f"no vocoder in {d}: expected config.json and model.safetensors "
                f"(train one with `aqaa train vocoder`)"
            )
        cfg = json.loads(cfg_path.read_text())
        audio_tokenizer = cfg.pop("audio_tokenizer", None)
        model = cls(VocoderConfig.from_dict(cfg))
        state = {k: v.float() for k, v in load_file(str(weights)).items()}
        model.load_state_dict(state)
        model.audio_tokenizer = audio_tokenizer
        return model.eval()


def _whole_groups(codes: np.ndarray | list[int] | torch.Tensor) -> np.ndarray:
    from aqaa.vocoder.tokens import complete_codes

    return complete_codes(codes)
