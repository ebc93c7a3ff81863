"""The config keys of the worker: polling, the heartbeat window, concurrency, stopping."""

from __future__ import annotations

from pydantic import Field
from pydantic.dataclasses import dataclass

from ..queue.base import MAX_VISIBILITY_SECONDS
from ..settings.kinds import KEYS

#: Most jobs one process runs at once: each holds a thread, a heartbeat and Docker
#: connections; beyond this, start more runner processes (or hosts) instead.
MAX_WORKERS = 64


@dataclass(config=KEYS, kw_only=True, frozen=True)
class WorkerKeys:
    """Worker: polling, heartbeats and jobs at once"""

    interval: int = Field(
        default=2,
        ge=0,
        description="seconds one receive waits on an empty queue (SQS long poll, 1 to 20;"
        " a new message is taken at once)",
    )
    num: int = Field(
        default=0, ge=0, description="stop after this many finished jobs and exit 0 (0 = no limit)"
    )
    visibility_timeout: int = Field(
        default=60,
        ge=1,
        le=MAX_VISIBILITY_SECONDS,
        description="heartbeat window: a held message is renewed every third of it, so a"
        " crashed runner's message returns to the others within it",
    )
    grace_period: int | None = Field(
        default=None,
        ge=0,
        description="after the first stop signal, seconds the running jobs may take before"
        " they are cancelled (unset = no limit)",
        examples=[600],
    )
    workers: int = Field(
        default=1,
        ge=1,
        le=MAX_WORKERS,
        description="jobs run at once in this process; `--workers N` overrides it",
    )
    max_jobs_per_participant: int | None = Field(
        default=None,
        ge=1,
        description="at most this many jobs of one participant run at once (unset = no cap);"
        " see *Several jobs at once*",
        examples=[2],
    )
