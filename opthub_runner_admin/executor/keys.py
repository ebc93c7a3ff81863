"""The config keys of the Docker executor (images, runtime, output, clean-up); limits: limits.py."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic.dataclasses import dataclass

from ..settings.durations import Duration
from ..settings.kinds import KEYS


@dataclass(config=KEYS, kw_only=True, frozen=True)
class DockerKeys:
    """Containers: images, runtime, output and clean-up"""

    rm: bool = Field(
        default=True,
        description="remove containers after use (`false` only to debug an image with"
        " `docker logs`)",
    )
    output_limit: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="bytes of stdout and of stderr kept per container (the end is kept)",
    )
    pull_policy: Literal["always", "if-missing", "never"] = Field(
        default="if-missing", description="when images are pulled (see *Images*)"
    )
    pull_interval: int = Field(
        default=300,
        ge=0,
        description="with `pull_policy: always`, seconds before the same tag is pulled again",
    )
    runtime: str | None = Field(
        default=None,
        description="OCI runtime of the containers (`crun`, `runsc`, `nvidia`), passed to"
        " Docker as is (unset = Docker's default; see *Container runtime*)",
        examples=["crun"],
    )
    prestart: bool = Field(
        default=True,
        description="start the next job's container while the runner finishes the current one;"
        " `false` turns it off (see Performance)",
    )
    image_cleanup_after: Annotated[int, Duration(minimum=3600)] | None = Field(
        default=None,
        description="remove the images the runner pulled that no job used for this long"
        " (`7d`; by tag, never one a container uses; also tried once when Docker's disk is"
        " full); unset = never",
        examples=["7d"],
    )
    measure_usage: bool = Field(
        default=True,
        description="read each container's peak memory and CPU time from its cgroup for the"
        " job's log line, the metrics and the status page; `false` turns it off (see"
        " Performance)",
    )
