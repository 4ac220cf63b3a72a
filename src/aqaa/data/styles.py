"""Named speaking styles, each a set of prosody controls.

One table serves both sides of a dialogue: the human's rendering ("speak fast", "whisper") and the
assistant's planned style per sentence (the `(sad)` tag in the text channel). The numbers are
deliberately large, so that a style is measurable after tokenization and vocoding: the evaluation
judges "sad" by a lower median F0, a slower rate and a lower RMS level than the neutral rendering.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace


@dataclass(frozen=True)
class Prosody:
    """Controls applied to a neutral rendering.

    rate:        speaking-rate multiplier (2.0 = twice as fast, 0.5 = half speed).
    pitch:       shift of the whole F0 contour in semitones.
    pitch_range: multiplier of the F0 excursions around the utterance's mean (0 = monotone).
    loudness:    level change in dB (positive = louder; loud speech also gets a flatter tilt).
    whisper:     replace voicing by breath noise (no F0 at all).
    glide:       a linear F0 ramp over the utterance, in semitones from start to end (singing a
                 rising scale is `glide=12`).
    """

    rate: float = 1.0
    pitch: float = 0.0
    pitch_range: float = 1.0
    loudness: float = 0.0
    whisper: bool = False
    glide: float = 0.0

    def __post_init__(self) -> None:
        if not 0.25 <= self.rate <= 4.0:
            raise ValueError(f"rate must be within [0.25, 4], got {self.rate}")
        if not -24.0 <= self.pitch <= 24.0:
            raise ValueError(f"pitch must be within ±24 semitones, got {self.pitch}")
        if not 0.0 <= self.pitch_range <= 4.0:
            raise ValueError(f"pitch_range must be within [0, 4], got {self.pitch_range}")
        if not -40.0 <= self.loudness <= 20.0:
            raise ValueError(f"loudness must be within [-40, 20] dB, got {self.loudness}")
        if not -24.0 <= self.glide <= 24.0:
            raise ValueError(f"glide must be within ±24 semitones, got {self.glide}")

    @property
    def is_neutral(self) -> bool:
        return self == Prosody()

    def combine(self, other: Prosody) -> Prosody:
        """Stack two prosodies (e.g. a preset on top of a random human jitter)."""
        return replace(
            self,
            rate=self.rate * other.rate,
            pitch=self.pitch + other.pitch,
            pitch_range=self.pitch_range * other.pitch_range,
            loudness=self.loudness + other.loudness,
            whisper=self.whisper or other.whisper,
            glide=self.glide + other.glide,
        )

    def to_dict(self) -> dict[str, float | bool]:
        return asdict(self)


#: Voice-instruction styles ("say it slowly / loudly / in a high voice / in a whisper").
INSTRUCTION_STYLES: dict[str, Prosody] = {
    "neutral": Prosody(),
    "slow": Prosody(rate=0.65),
    "fast": Prosody(rate=1.6),
    "loud": Prosody(loudness=10.0, pitch=1.0),
    "quiet": Prosody(loudness=-14.0),
    "high": Prosody(pitch=6.0),
    "low": Prosody(pitch=-5.0),
    "whisper": Prosody(whisper=True, loudness=-8.0),
}

#: Emotion presets, built from the same controls.
EMOTION_STYLES: dict[str, Prosody] = {
    "happy": Prosody(rate=1.12, pitch=3.0, pitch_range=1.6, loudness=3.0),
    "sad": Prosody(rate=0.75, pitch=-3.0, pitch_range=0.5, loudness=-8.0),
    "angry": Prosody(rate=1.15, pitch=1.5, pitch_range=1.4, loudness=9.0),
    "calm": Prosody(rate=0.85, pitch=-1.5, pitch_range=0.6, loudness=-4.0),
    "excited": Prosody(rate=1.3, pitch=5.0, pitch_range=1.8, loudness=6.0),
}

#: Role-play personas.
PERSONA_STYLES: dict[str, Prosody] = {
    "robot": Prosody(rate=0.85, pitch=-1.0, pitch_range=0.0),
    "child": Prosody(rate=1.15, pitch=8.0, pitch_range=1.3),
    "giant": Prosody(rate=0.7, pitch=-8.0, pitch_range=0.8, loudness=6.0),
}

#: Creative styles: a sung rising scale.
CREATIVE_STYLES: dict[str, Prosody] = {
    "sing": Prosody(rate=0.6, pitch_range=0.2, glide=12.0),
}

STYLES: dict[str, Prosody] = {
    **INSTRUCTION_STYLES,
    **EMOTION_STYLES,
    **PERSONA_STYLES,
    **CREATIVE_STYLES,
}


def style_prosody(name: str) -> Prosody:
    """The prosody of a named style; raises a clear error for an unknown name."""
    try:
        return STYLES[name]
    except KeyError:
        known = ", ".join(sorted(STYLES))
        raise KeyError(f"unknown style {name!r}; known styles: {known}") from None
