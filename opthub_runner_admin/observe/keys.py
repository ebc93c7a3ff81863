"""The config keys of what a running runner shows: logs, status line, metrics, health."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field
from pydantic.dataclasses import dataclass

from ..settings.kinds import KEYS, FilePath, Size


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


@dataclass(config=KEYS, kw_only=True, frozen=True)
class ObserveKeys:
    """Observability: logs, status line, metrics, status page, health"""

    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"], BeforeValidator(_upper)
    ] = Field(default="INFO", description="log level (any case)")
    log_format: Literal["text", "json"] = Field(
        default="text", description="`json`: one JSON object per log line, for a log shipper"
    )
    log_file: Annotated[Path, FilePath()] | None = Field(
        default=None,
        description="also write the log to this file, rotated at `log_file_size` (tmux keeps"
        " no log once its scrollback is gone; under systemd the journal has it)",
        examples=["opthub-runner.log"],
    )
    log_file_size: Annotated[int, Size(minimum=1024)] = Field(
        default=10 * 1024 * 1024,
        description="`log_file` is rotated when it reaches this size (`10 MiB`)",
    )
    log_file_count: int = Field(
        default=5,
        ge=1,
        description="rotated log files kept beside `log_file` (`.1` the newest)",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="serve `/metrics`, `/healthz` and the status page on this port"
        " (unset = off; 0 = a free port, logged)",
        examples=[9100],
    )
    metrics_host: str = Field(
        default="127.0.0.1",
        description="address that port binds to (`0.0.0.0` exposes it: the page names"
        " participants)",
    )
    status_interval: int = Field(
        default=60,
        ge=0,
        description="seconds between status lines (0 = no status line; the queue depth is"
        " still sampled every 30 s)",
    )
    slow_job_warning: int = Field(
        default=600,
        ge=1,
        description="a job running longer than this many seconds is named in the status line"
        " and highlighted on the page",
    )
    health_stall_seconds: int = Field(
        default=300,
        ge=1,
        description="`/healthz` turns 503 after this many seconds without a poll or progress"
        " (a job still within `timeout` counts as progress)",
    )
