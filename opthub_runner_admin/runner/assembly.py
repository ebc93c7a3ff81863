"""Wiring: real implementations of every seam, built from one validated config.

This is the only module that knows which concrete classes make a runner; the
CLI calls it, the demo calls it, and the end-to-end tests call it, so that
all three exercise the same assembly.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import docker

from ..aws.clients import MAX_ATTEMPTS, AwsClients, AwsSession, config_clients
from ..config.schema import Config, scope_of, section
from ..errors import ConfigError
from ..executor import Executor
from ..executor.docker import (
    LABEL_INSTANCE,
    DockerExecutor,
    ImagePolicy,
    check_runtime,
    connect_docker,
    remove_orphans,
    runner_labels,
    scope_labels,
)
from ..executor.docker.memory import PeakMemory
from ..executor.limits import ContainerLimits, host_mismatch
from ..jobs.tryout import ImageTrial
from ..matches import MatchSource
from ..matches.cached import CachedMatchSource
from ..matches.file import FileMatchSource
from ..observe.events import JobEvents
from ..observe.executor import ObservedExecutor
from ..observe.monitor import Monitor
from ..queue.base import QueueInfo
from ..queue.sqs import SqsQueue
from ..store.dynamodb import DynamoStore
from ..worker import Worker, WorkerSettings
from ..worker.hold import Holds
from .config_check import poll_seconds
from .disks import image_cleanup, watch_disks
from .modes import JobParts, Mode

if TYPE_CHECKING:
    from ..auth.credentials import Credentials
    from ..auth.login_state import LoginState
    from ..auth.provider import TokenProvider

log = logging.getLogger(__name__)


@dataclass
class Options:
    """What the command line adds to the config file."""

    dev: bool = False
    #: Asks for the administrator's credentials when the environment lacks them (the
    #: CLI's prompt); None: environment or token cache only.
    prompt: Callable[[], Credentials] | None = None
    #: Reads the administrator's credentials (default: environment, else ``prompt``).
    credentials: Callable[[], Credentials] | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)
    #: Who hears what the runner does (status line, metrics, page); None = nobody.
    events: JobEvents | None = None
    #: Why no new job is taken (pause, login needed); None: the worker's own.
    holds: Holds | None = None
    #: Asks the password of the named account again when the login ends (a terminal);
    #: None: nobody can type it.
    ask_again: Callable[[str], Credentials] | None = None


def build_queue(
    mode: Mode,
    config: Config,
    clients: AwsClients | None = None,
    *,
    max_attempts: int = MAX_ATTEMPTS,
) -> SqsQueue:
    """The mode's SQS queue (not yet checked: ``SqsQueue.check`` calls AWS).

    A missing queue URL is reported before the AWS keys are looked at.
    ``max_attempts`` bounds the retries of each call when the clients are made here.
    """
    url = mode.queue_url(config)
    if clients is None:
        clients = config_clients(config, max_attempts=max_attempts)
    return SqsQueue(clients.sqs, url, config_key=mode.queue_key)


def build_store(config: Config, clients: AwsClients | None = None) -> DynamoStore:
    """The OptHub table (not yet checked: ``DynamoStore.check`` calls AWS)."""
    clients = clients or config_clients(config)
    return DynamoStore(clients.dynamodb, config.table_name)


def build_login(
    config: Config, options: Options, session: AwsSession | None = None
) -> TokenProvider:
    """The administrator's login to the OptHub API, kept fresh for weeks."""
    from ..auth.provider import login_for_runner

    return login_for_runner(
        config.api(dev=options.dev),
        endpoint_url=config.endpoint_url,
        prompt=options.prompt,
        read=options.credentials,
        session=session,
        on_refresh=options.events.token_refreshed if options.events else None,
        ask_again=options.ask_again,
        listener=login_listener(options),
        validity_seconds=config.refresh_token_validity_days * 86400,
    )


def login_listener(options: Options) -> Callable[[LoginState], None]:
    """The login's changes to the holds (no new job while it waits) and to the observers."""
    from ..observe.holds import LOGIN_NEEDED

    def changed(state: LoginState) -> None:
        if options.holds is not None:
            if state.needed:
                options.holds.hold(LOGIN_NEEDED, state.needed)
            else:
                options.holds.release(LOGIN_NEEDED)
        if options.events is not None:
            options.events.login_changed(state)

    return changed


def build_matches(
    config: Config, options: Options, session: AwsSession | None = None
) -> MatchSource:
    """The catalogue file when configured, else the OptHub API behind the administrator's login.

    The login happens here, before any message is taken, so that a wrong
    password ends the runner at once instead of failing jobs.
    """
    if config.matches_file is not None:
        return FileMatchSource(config.matches_file)
    from ..matches.graphql import GraphqlMatchSource

    tokens = build_login(config, options, session)
    source = GraphqlMatchSource(config.api(dev=options.dev).api_url, tokens.access_token)
    return CachedMatchSource(source, config.match_cache_seconds)


def container_limits(config: Config) -> ContainerLimits:
    """What every container of this runner may use, from the config's isolation keys."""
    return section(config, ContainerLimits)


def check_docker_host(config: Config, docker_client: docker.DockerClient) -> str:
    """Refuse a ``runtime`` Docker does not know and more ``cpus`` than its host has.

    Raises ``ConfigError`` (one line) where every container would be refused;
    returns what was found. A start check of its own and part of ``build_executor``.
    """
    check_runtime(docker_client, config.runtime)
    host_cpus = int(docker_client.info().get("NCPU") or 0)
    mismatch = host_mismatch(container_limits(config), host_cpus)
    if mismatch is not None:
        raise ConfigError(mismatch)
    runtime = config.runtime or "Docker's default runtime"
    return f"{runtime}, {host_cpus} CPUs on Docker's host"


def build_executor(
    config: Config,
    docker_client: docker.DockerClient,
    labels: Mapping[str, str],
    resources: ExitStack | None = None,
    *,
    on_image_pulled: Callable[[str], None] | None = None,
    on_docker_state: Callable[[bool], None] | None = None,
    on_image_removed: Callable[[str], None] | None = None,
    check: bool = True,
) -> DockerExecutor:
    """The one place the executor is made, so that the daemon and ``try`` run alike.

    With ``resources``, the executor overlaps its work with the runner's
    (``prestart``) and is closed when ``resources`` is; without, it does not
    overlap and needs no closing. Raises ``ConfigError`` when the limits
    cannot be honoured on Docker's host (``check=False``: the start checks did it).
    """
    if check:
        check_docker_host(config, docker_client)
    limits = container_limits(config)
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
        on_docker_state=on_docker_state,
        image_cleanup=image_cleanup(config, docker_client, on_image_removed),
        measure_usage=config.measure_usage,
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
    from .start_checks import StartState, run_for_runner

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
