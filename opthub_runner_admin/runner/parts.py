"""Each seam of a runner, built from the config: queue, store, login, matches, executor.

No checks and no wiring here: ``start_checks`` uses these builders to try
each part in turn, ``assembly`` joins what they built into a worker.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import docker

from ..aws.clients import MAX_ATTEMPTS, AwsClients, AwsSession, config_clients
from ..config.schema import Config, section
from ..errors import ConfigError
from ..executor.docker import (
    LABEL_INSTANCE,
    DockerExecutor,
    ImagePolicy,
    check_runtime,
    connect_docker,
    runner_labels,
)
from ..executor.docker.memory import PeakMemory
from ..executor.limits import ContainerLimits, host_mismatch
from ..jobs.tryout import ImageTrial
from ..matches import MatchSource
from ..matches.cached import CachedMatchSource
from ..matches.file import FileMatchSource
from ..observe.events import JobEvents
from ..queue.sqs import SqsQueue
from ..store.dynamodb import DynamoStore
from ..worker.hold import Holds
from .disks import image_cleanup
from .modes import Mode

if TYPE_CHECKING:
    from ..auth.credentials import Credentials
    from ..auth.login_state import LoginState
    from ..auth.provider import TokenProvider


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
