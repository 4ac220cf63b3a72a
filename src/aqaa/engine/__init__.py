"""End-to-end answering: the streaming engine, sessions and sampling (see `engine.py`)."""

from aqaa.engine.engine import (
    Answer,
    AudioChunk,
    Engine,
    EngineConfig,
    EngineError,
    Finished,
    TextDelta,
    Timings,
)
from aqaa.engine.sampling import SamplingConfig
from aqaa.engine.session import Session, SessionError

__all__ = [
    "Answer",
    "AudioChunk",
    "Engine",
    "EngineConfig",
    "EngineError",
    "Finished",
    "SamplingConfig",
    "Session",
    "SessionError",
    "TextDelta",
    "Timings",
]
