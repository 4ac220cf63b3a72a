"""aqaa: an end-to-end spoken assistant (audio query -> audio answer)."""

__version__ = "0.1.0"
