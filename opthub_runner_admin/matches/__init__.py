"""Which image and environment a match uses: a catalogue file or the OptHub API."""

from .base import ImageSpec, MatchSource, MatchSpec, UnknownMatch

__all__ = ["ImageSpec", "MatchSource", "MatchSpec", "UnknownMatch"]
