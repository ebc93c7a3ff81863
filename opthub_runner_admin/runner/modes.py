"""The two things a runner can be: the evaluator and the scorer.

A ``Mode`` carries what differs between them (the config key of its queue,
the job it runs, the kind of item it writes), so that the assembly, ``doctor``
and the CLI ask the value instead of spelling ``"evaluator"`` and
``"scorer"`` in branches of their own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config.schema import Config
from ..errors import ConfigError
from ..store.items import EVALUATIONS, SCORES

if TYPE_CHECKING:
    from ..executor import Executor
    from ..jobs.outcome import Handler
    from ..matches import MatchSource
    from ..store import Store


@dataclass(frozen=True)
class JobParts:
    """The seams a job is made of, already built and checked."""

    config: Config
    store: Store
    matches: MatchSource
    executor: Executor
    #: The mode's queue is FIFO (the scorer then defers by resending into its group).
    fifo_queue: bool = False


@dataclass(frozen=True)
class Mode:
    """One kind of runner: where its messages come from, what it does, what it writes."""

    name: str
    #: The config key naming this mode's SQS queue.
    queue_key: str
    #: The kind of item its results are (the table's ``<kind>#Match#...`` partitions).
    item_kind: str
    #: The CLI command's one-line help.
    summary: str
    queue_url_in: Callable[[Config], str | None]
    job: Callable[[JobParts], Handler]

    def queue_url(self, config: Config) -> str:
        """This mode's queue URL; a missing one is a configuration error."""
        url = self.queue_url_in(config)
        if not url:
            raise ConfigError(
                f"'{self.queue_key}' is required to run the {self.name} (the SQS queue URL)"
            )
        return url

    def configured(self, config: Config) -> bool:
        return bool(self.queue_url_in(config))


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/opthub-runner`` (the systemd unit's CacheDirectory), else ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "opthub-runner"


def _evaluate_job(parts: JobParts) -> Handler:
    from ..jobs.evaluate import EvaluateJob

    config = parts.config
    return EvaluateJob(
        store=parts.store,
        matches=parts.matches,
        executor=parts.executor,
        timeout=config.timeout,
        command=config.command,
        max_solution_bytes=config.max_solution_bytes,
    )


def _score_job(parts: JobParts) -> Handler:
    from ..history import HistoryBuilder, SqliteHistoryCache
    from ..jobs.score import ScoreJob

    config = parts.config
    cache_dir = config.cache_dir or default_cache_dir()
    scope = f"{config.endpoint_url or 'aws'}|{config.region_name}|{config.table_name}"
    cache = SqliteHistoryCache(cache_dir / "history.sqlite3", scope=scope)
    return ScoreJob(
        store=parts.store,
        matches=parts.matches,
        executor=parts.executor,
        history=HistoryBuilder(parts.store, cache),
        timeout=config.timeout,
        command=config.command,
        max_deferrals=config.max_deferrals,
        defer_seconds=config.defer_seconds,
        fifo_queue=parts.fifo_queue,
    )


EVALUATOR = Mode(
    name="evaluator",
    queue_key="evaluator_queue_url",
    item_kind=EVALUATIONS,
    summary="Evaluate submitted solutions with the problem image.",
    queue_url_in=lambda config: config.evaluator_queue_url,
    job=_evaluate_job,
)
SCORER = Mode(
    name="scorer",
    queue_key="scorer_queue_url",
    item_kind=SCORES,
    summary="Score successful evaluations with the indicator image.",
    queue_url_in=lambda config: config.scorer_queue_url,
    job=_score_job,
)
#: Every mode, in the order the CLI and ``doctor`` list them.
MODES = (EVALUATOR, SCORER)


def mode_named(name: str) -> Mode:
    """The mode called ``name`` (``evaluator`` or ``scorer``)."""
    for mode in MODES:
        if mode.name == name:
            return mode
    raise ValueError(f"no mode {name!r}: expected one of {', '.join(m.name for m in MODES)}")
