"""The config keys of the match catalogue: a local file, or the API's answers cached."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass

from ..settings.kinds import KEYS, FilePath


@dataclass(config=KEYS, kw_only=True, frozen=True)
class MatchKeys:
    """Matches: which images and environment a match uses"""

    matches_file: Annotated[Path, FilePath()] | None = Field(
        default=None,
        description="local match catalogue (see *Match catalogue*); when set, no login is needed",
        examples=["matches.yml"],
    )
    match_cache_seconds: int = Field(
        default=300,
        ge=0,
        description="how long a match's image and environment are reused before asking"
        " the API again",
    )
