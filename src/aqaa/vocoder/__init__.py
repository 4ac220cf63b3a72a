"""Token-only vocoder (design §1.4): audio codes → flow-matching mel → 24 kHz waveform."""

from aqaa.vocoder.model import Vocoder, VocoderConfig, frame_noise
from aqaa.vocoder.stream import StreamConfig, StreamDecoder, seam_report

__all__ = [
    "StreamConfig",
    "StreamDecoder",
    "Vocoder",
    "VocoderConfig",
    "frame_noise",
    "seam_report",
]
