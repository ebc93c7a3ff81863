"""Which competition a runner serves: its queue and its table.

One account may run several competitions on one host. ``opthub-runner stop``
and the start-up reaper must then act on the runners and containers of one
competition only: the scope is written in each runner's pid file and on each
container it starts (``reaping.scope_labels``).
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Config


@dataclass(frozen=True)
class RunnerScope:
    """The SQS queue a runner receives from and the DynamoDB table it writes."""

    queue_url: str
    table_name: str

    def describe(self) -> str:
        return f"queue {self.queue_url}, table {self.table_name}"


def scope_of(mode: str, config: Config) -> RunnerScope:
    """The scope of the ``mode`` runner of ``config`` (ConfigError if its queue is unset)."""
    return RunnerScope(queue_url=config.queue_url(mode), table_name=config.table_name)
