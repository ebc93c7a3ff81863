"""The config keys of the evaluation and scoring jobs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic.dataclasses import dataclass

from ..settings.kinds import KEYS, Command, FilePath, Size


@dataclass(config=KEYS, kw_only=True, frozen=True)
class JobKeys:
    """Jobs: time limit, command, solution bound, the scorer's waits and cache"""

    timeout: int = Field(
        default=43200,
        ge=1,
        description="seconds one container may run; also bounded by SQS's 12 h cap on a message",
    )
    command: Annotated[tuple[str, ...], Command()] | None = Field(
        default=None,
        description="arguments given to the container in place of the image's default command"
        ' (`[--dim, "3"]`, or `--dim 3`, split as a shell would); a match\'s own `command`'
        " in `matches_file` wins",
        examples=[["--dim", "3"]],
    )
    max_solution_bytes: Annotated[int, Size(minimum=1)] = Field(
        default=1024 * 1024,
        description="largest solution (its JSON text) evaluated; a larger one fails at once,"
        " before any container",
    )
    max_deferrals: int = Field(
        default=30,
        ge=0,
        description="scorer: times a trial waits for earlier trials' results before it is"
        " scored without them",
    )
    defer_seconds: int = Field(
        default=10, ge=0, description="scorer: seconds before a waiting trial is tried again"
    )
    cache_dir: Annotated[Path, FilePath()] | None = Field(
        default=None,
        description="scorer: on-disk history cache (unset = `~/.cache/opthub-runner`)",
        examples=["~/.cache/opthub-runner"],
    )
