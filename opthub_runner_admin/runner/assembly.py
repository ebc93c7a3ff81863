"""Wiring: one runner from one validated config, its start checked part by part.

``build_parts`` runs the start checks (``start_checks``, the list ``doctor``
runs too), which build each seam with ``parts``; ``assemble_worker`` joins
them into a worker. The CLI, the demo and the end-to-end tests all come
through here, so that all three exercise the same assembly.
"""

from __future__ import annotations

import logging
import uuid
from contextlib import ExitStack
from dataclasses import dataclass

from ..config.schema import Config, scope_of
from ..executor import Executor
from ..executor.docker import (
    remove_orphans,
    runner_labels,
    scope_labels,
)
from ..matches import MatchSource
from ..observe.events import JobEvents
from ..observe.executor import ObservedExecutor
from ..observe.monitor import Monitor
from ..queue.base import QueueInfo
from ..queue.sqs import SqsQueue
from ..store.dynamodb import DynamoStore
from ..worker import Worker, WorkerSettings
from ..worker.hold import Holds
from .config_check import poll_seconds
from .disks import watch_disks
from .modes import JobParts, Mode
from .parts import Options, build_executor
from .start_checks import StartState, run_for_runner

log = logging.getLogger(__name__)


@dataclass
class RunnerParts:
    """The seams of one runner, built and checked against AWS and Docker."""

    queue: SqsQueue
    queue_info: QueueInfo
    store: DynamoStore
    executor: Executor
    matches: MatchSource
    instance: str


def build_parts(
    mode: Mode, config: Config, options: Options, resources: ExitStack | None = None
) -> RunnerParts:
    """Run the start checks (those ``doctor`` runs), then build every seam from what they made.

    The I/O of the start (queue and table checks, orphans removed, the login)
    happens here, so that ``assemble_worker`` is wiring only.
    """
    state = StartState(config=config, options=options, modes=(mode,))
    run_for_runner(state)  # the first failure is raised, as its one line
    assert state.store is not None and state.docker is not None and state.matches is not None
    queue, queue_info = state.queues[mode.name], state.queue_infos[mode.name]
    runner_scope = scope_of(mode.name, config)
    removed = remove_orphans(state.docker, scope=runner_scope)
    if removed:
        log.warning("removed %d containers left by runners that are gone", len(removed))
    if resources is not None and options.events is not None:
        watch_disks(state.docker, options.events, config.disk_warning_below, resources)
    instance = uuid.uuid4().hex[:12]
    labels = {
        **runner_labels(instance),
        **scope_labels(runner_scope),
        "opthub-runner.mode": mode.name,
        **options.extra_labels,
    }
    docker_executor = build_executor(
        config,
        state.docker,
        labels,
        resources,
        on_image_pulled=options.events.image_pulled if options.events else None,
        on_docker_state=options.events.docker_state if options.events else None,
        on_image_removed=options.events.image_removed if options.events else None,
        check=False,
    )
    if options.holds is not None:
        # Held: no container is started ahead for a job that is not coming.
        options.holds.listen(lambda holds: docker_executor.stand_by(bool(holds)))
    executor: Executor = docker_executor
    if options.events is not None:
        executor = ObservedExecutor(executor=executor, events=options.events)
    return RunnerParts(queue, queue_info, state.store, executor, state.matches, instance)


def worker_settings(config: Config) -> WorkerSettings:
    """The worker loop's settings from the config."""
    return WorkerSettings(
        poll_seconds=poll_seconds(config.interval),
        visibility_window=config.visibility_timeout,
        max_jobs=config.num,
        grace_period=config.grace_period,
        workers=config.workers,
        max_jobs_per_group=config.max_jobs_per_participant,
    )


def assemble_worker(
    mode: Mode,
    config: Config,
    parts: RunnerParts,
    events: JobEvents | None = None,
    holds: Holds | None = None,
) -> Worker:
    """Wire the mode's job to built parts: no I/O, so tests may pass any seams."""
    handler = mode.job(
        JobParts(
            config=config,
            store=parts.store,
            matches=parts.matches,
            executor=parts.executor,
            fifo_queue=parts.queue_info.fifo,
        )
    )
    return Worker(
        queue=parts.queue,
        handler=handler,
        settings=worker_settings(config),
        name=mode.name,
        events=events,
        holds=holds,
    )


def build_worker(
    mode: Mode,
    config: Config,
    options: Options | None = None,
    resources: ExitStack | None = None,
) -> Worker:
    """Assemble the evaluator or the scorer. Raises FatalError or ConfigError with one line.

    What must be released at the end (the executor's containers started
    ahead) is registered on ``resources``; close it after ``Worker.run``.
    """
    options = options or Options()
    parts = build_parts(mode, config, options, resources)
    worker = assemble_worker(mode, config, parts, options.events, options.holds)
    kind = " (FIFO queue)" if parts.queue_info.fifo else ""
    log.info(
        "%s %s ready on %s%s (table %s, %d worker%s)",
        mode.name,
        parts.instance,
        parts.queue.url,
        kind,
        config.table_name,
        config.workers,
        "" if config.workers == 1 else "s",
    )
    return worker


def build_monitor(mode: Mode, config: Config) -> Monitor:
    """The runner's status line, metrics and status page, reading the queue as the fleet sees it."""
    from ..fleet.queues import fleet_queues

    mode.queue_url(config)  # a missing queue URL: the mode's own one-line config error
    queue = fleet_queues(config, (mode.name,))[mode.name]
    return Monitor(mode=mode.name, config=config, stats=queue.stats)
