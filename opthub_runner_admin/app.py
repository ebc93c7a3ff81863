"""Wiring: real implementations of every seam, built from one validated config.

This is the only module that knows which concrete classes make a runner; the
CLI calls it, the demo calls it, and the end-to-end tests call it, so that
all three exercise the same assembly.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import docker

from .aws import config_clients
from .config import Config, ConfigError, section
from .executor import Executor
from .executor.docker import (
    LABEL_INSTANCE,
    DockerExecutor,
    ImagePolicy,
    check_runtime,
    connect_docker,
    remove_orphans,
    runner_labels,
    scope_labels,
)
from .executor.limits import ContainerLimits, host_mismatch
from .history import HistoryBuilder, SqliteHistoryCache
from .jobs.evaluate import EvaluateJob
from .jobs.outcome import Handler
from .jobs.score import ScoreJob
from .jobs.trial_job import MISSING_INPUT_RECEIVES
from .matches import MatchSource
from .matches.cached import CachedMatchSource
from .matches.file import FileMatchSource
from .observe.events import JobEvents
from .observe.executor import ObservedExecutor
from .observe.monitor import Monitor
from .queue.base import MAX_WAIT_SECONDS, QueueInfo
from .queue.sqs import SqsQueue
from .runner_scope import scope_of
from .store.dynamodb import DynamoStore
from .tryout import ImageTrial, PeakMemory
from .worker import Worker, WorkerSettings

if TYPE_CHECKING:
    import boto3.session

    from .auth.credentials import Credentials

log = logging.getLogger(__name__)


@dataclass
class Options:
    """What the command line adds to the config file."""

    dev: bool = False
    interactive: bool = True
    #: Reads the administrator's credentials (default: environment, else a prompt).
    credentials: Callable[[], Credentials] | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)
    #: Who hears what the runner does (status line, metrics, page); None = nobody.
    events: JobEvents | None = None


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/opthub-runner`` (the systemd unit's CacheDirectory), else ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "opthub-runner"


def build_match_source(
    config: Config, options: Options, session: boto3.session.Session | None = None
) -> MatchSource:
    """The catalogue file when configured, else the OptHub API behind the administrator's login.

    The login happens here, before any message is taken, so that a wrong
    password ends the runner at once instead of failing jobs.
    """
    if config.matches_file is not None:
        return FileMatchSource(config.matches_file)
    from .auth.provider import login_for_runner
    from .matches.graphql import GraphqlMatchSource

    api = config.api(dev=options.dev)
    tokens = login_for_runner(
        api,
        endpoint_url=config.endpoint_url,
        interactive=options.interactive,
        read=options.credentials,
        session=session,
        on_refresh=options.events.token_refreshed if options.events else None,
    )
    source = GraphqlMatchSource(api.api_url, tokens.access_token)
    return CachedMatchSource(source, config.match_cache_seconds)


def container_limits(config: Config) -> ContainerLimits:
    """What every container of this runner may use, from the config's isolation keys."""
    return section(config, ContainerLimits)


def warn_about_redrive(info: QueueInfo, key: str) -> None:
    """A redrive limit at or below the runner's own put-backs sends waiting messages away.

    A solution not yet in the table is put back for up to ``MISSING_INPUT_RECEIVES``
    receives, and every receive counts toward the dead-letter limit.
    """
    limit = info.max_receive_count
    if limit is not None and limit <= MISSING_INPUT_RECEIVES:
        log.warning(
            "%s: its dead-letter queue takes a message after %d receives, which a message"
            " waiting for its solution (up to %d receives) can reach: raise the redrive"
            " policy's maxReceiveCount to 10 or more",
            key,
            limit,
            MISSING_INPUT_RECEIVES,
        )


def build_executor(
    config: Config,
    docker_client: docker.DockerClient,
    labels: Mapping[str, str],
    resources: ExitStack | None = None,
    *,
    on_image_pulled: Callable[[str], None] | None = None,
) -> DockerExecutor:
    """The one place the executor is made, so that the daemon and ``try`` run alike.

    With ``resources``, the executor overlaps its work with the runner's
    (``prestart``) and is closed when ``resources`` is; without, it does not
    overlap and needs no closing. Raises ``ConfigError`` when the limits
    cannot be honoured on Docker's host.
    """
    check_runtime(docker_client, config.runtime)
    limits = container_limits(config)
    if limits.cpus is not None:
        mismatch = host_mismatch(limits, int(docker_client.info().get("NCPU") or 0))
        if mismatch is not None:
            raise ConfigError(mismatch)
    executor = DockerExecutor(
        client=docker_client,
        rm=config.rm,
        output_limit=config.output_limit,
        labels=labels,
        images=ImagePolicy(pull_policy=config.pull_policy, pull_interval=config.pull_interval),
        runtime=config.runtime,
        prestart=config.prestart and resources is not None,
        limits=limits,
        on_image_pulled=on_image_pulled,
    )
    if resources is not None:
        resources.callback(executor.close)
    return executor


def build_image_trial(
    config: Config, timeout: int | None = None, *, labels: Mapping[str, str] | None = None
) -> ImageTrial:
    """``try`` and ``doctor``: the daemon's executor and limits, with a memory sampler.

    ``timeout`` lowers the configured one (``doctor`` must not wait 12 hours).
    """
    docker_client = connect_docker()
    instance = uuid.uuid4().hex[:12]
    labels = {**runner_labels(instance), "opthub-runner.mode": "try", **(labels or {})}
    return ImageTrial(
        executor=build_executor(config, docker_client, labels),
        timeout=min(config.timeout, timeout) if timeout else config.timeout,
        memory=PeakMemory(client=docker_client, labels={LABEL_INSTANCE: instance}),
    )


def build_worker(
    mode: str,
    config: Config,
    options: Options | None = None,
    resources: ExitStack | None = None,
) -> Worker:
    """Assemble the evaluator or the scorer. Raises FatalError or ConfigError with one line.

    What must be released at the end (the executor's containers started
    ahead) is registered on ``resources``; close it after ``Worker.run``.
    """
    options = options or Options()
    queue_url = config.queue_url(mode)
    clients = config_clients(config)
    queue = SqsQueue(clients.sqs, queue_url, config_key=f"{mode}_queue_url")
    queue_info = queue.check()
    warn_about_redrive(queue_info, f"{mode}_queue_url")
    store = DynamoStore(clients.dynamodb, config.table_name)
    store.check()
    docker_client = connect_docker(workers=config.workers)
    runner_scope = scope_of(mode, config)
    removed = remove_orphans(docker_client, scope=runner_scope)
    if removed:
        log.warning("removed %d containers left by runners that are gone", len(removed))
    instance = uuid.uuid4().hex[:12]
    labels = {
        **runner_labels(instance),
        **scope_labels(runner_scope),
        "opthub-runner.mode": mode,
        **options.extra_labels,
    }
    executor: Executor = build_executor(
        config,
        docker_client,
        labels,
        resources,
        on_image_pulled=options.events.image_pulled if options.events else None,
    )
    if options.events is not None:
        executor = ObservedExecutor(executor=executor, events=options.events)
    matches = build_match_source(config, options, clients.session)
    handler: Handler
    if mode == "evaluator":
        handler = EvaluateJob(
            store=store,
            matches=matches,
            executor=executor,
            timeout=config.timeout,
            command=config.command,
            max_solution_bytes=config.max_solution_bytes,
        )
    else:
        cache_dir = config.cache_dir or default_cache_dir()
        scope = f"{config.endpoint_url or 'aws'}|{config.region_name}|{config.table_name}"
        cache = SqliteHistoryCache(cache_dir / "history.sqlite3", scope=scope)
        handler = ScoreJob(
            store=store,
            matches=matches,
            executor=executor,
            history=HistoryBuilder(store, cache),
            timeout=config.timeout,
            command=config.command,
            max_deferrals=config.max_deferrals,
            defer_seconds=config.defer_seconds,
            fifo_queue=queue_info.fifo,
        )
    settings = WorkerSettings(
        poll_seconds=max(1, min(config.interval, MAX_WAIT_SECONDS)),
        visibility_window=config.visibility_timeout,
        max_jobs=config.num,
        grace_period=config.grace_period,
        workers=config.workers,
        max_jobs_per_group=config.max_jobs_per_participant,
    )
    kind = " (FIFO queue)" if queue_info.fifo else ""
    log.info(
        "%s %s ready on %s%s (table %s, %d worker%s)",
        mode,
        instance,
        queue_url,
        kind,
        config.table_name,
        config.workers,
        "" if config.workers == 1 else "s",
    )
    return Worker(queue=queue, handler=handler, settings=settings, name=mode, events=options.events)


def build_monitor(mode: str, config: Config) -> Monitor:
    """The runner's status line, metrics and status page, reading the queue as the fleet sees it."""
    from .fleet.queues import fleet_queues

    queue = fleet_queues(config, (mode,))[mode]
    return Monitor(mode=mode, config=config, stats=queue.stats)
