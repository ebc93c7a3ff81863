"""The match-source seam."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import AdminError


@dataclass(frozen=True)
class ImageSpec:
    """An image and the environment its containers get.

    The environment holds the match's private values, which are secrets: it
    is left out of ``repr`` so that it cannot reach a log by accident.
    """

    image: str
    environment: Mapping[str, str] = field(default_factory=dict, repr=False)
    #: Arguments replacing the image's default command (None: the image's own, or config's).
    command: tuple[str, ...] | None = None


@dataclass(frozen=True)
class MatchSpec:
    match_id: str
    problem: ImageSpec
    indicator: ImageSpec


class UnknownMatch(AdminError):
    """The source knows no such match: the catalogue or the API must be fixed."""


class MatchSource(Protocol):
    """Looks a match up by its bare UUID.

    Raises ``UnknownMatch`` or another ``errors.AdminError`` for what the
    administrator must fix, ``errors.TransientError`` for what may pass.
    """

    def get(self, match_id: str) -> MatchSpec: ...
