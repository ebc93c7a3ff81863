"""The checks a runner makes before it takes a message: named, in the order that fails fast.

The runner's start (``assembly.build_parts``) and ``doctor`` run this one
list. The runner stops at the first failure with that failure's one-line
error; ``doctor`` runs every check whose prerequisites passed and prints one
line each (tick, warning or cross), so that ``doctor`` exits 0 exactly when
the runner would start. A check returns what it found (the tick's text),
adds warnings to the state (the runner logs them), and raises the runner's
own error when the runner could not start.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..aws.clients import MAX_ATTEMPTS
from ..config.schema import Config
from ..errors import ConfigError, RunnerError, TransientError
from ..queue.base import QueueInfo
from .modes import Mode
from .parts import Options, build_login, build_queue, build_store, check_docker_host

if TYPE_CHECKING:
    import docker

    from ..auth.provider import TokenProvider
    from ..aws.clients import AwsClients
    from ..matches import MatchSource
    from ..queue.sqs import SqsQueue
    from ..store.dynamodb import DynamoStore

log = logging.getLogger(__name__)

TICK = "\N{CHECK MARK}"
CROSS = "\N{BALLOT X}"
WARN = "!"
#: The key the platform's table is built on: (attribute, key type) -> attribute type.
EXPECTED_KEYS = {("ID", "HASH"): "S", ("Trial", "RANGE"): "S"}
#: How long the runner's start waits for a Docker that is restarting (doctor: not at all).
DOCKER_START_PATIENCE = 30.0
UNREACHABLE_FIX = "check the network, 'endpoint_url' and 'region_name' (AWS did not answer)"


@dataclass(frozen=True)
class Check:
    """One verdict: what was checked, what was found, and the fix when it failed.

    ``warnings`` on a passed check make it a warning line: the runner starts,
    but logs each of them.
    """

    name: str
    ok: bool
    detail: str
    fix: str = ""
    warnings: tuple[str, ...] = ()

    def line(self) -> str:
        if not self.ok:
            fix = f" -> fix: {self.fix}" if self.fix else ""
            return f"{CROSS} {self.name}: {self.detail}{fix}"
        if self.warnings:
            return f"{WARN} {self.name}: {self.detail} (warning: {'; '.join(self.warnings)})"
        return f"{TICK} {self.name}: {self.detail}"


@dataclass
class StartState:
    """What the checks read and what they build, for the checks after them and for the runner."""

    config: Config
    options: Options
    #: The modes whose start is checked: the runner's own, or every configured one (doctor).
    modes: tuple[Mode, ...]
    #: Attempts per AWS call (doctor: few, so that "unreachable" comes in seconds).
    aws_attempts: int = MAX_ATTEMPTS
    #: Seconds to wait for a Docker that does not answer yet (doctor: 0, say it at once).
    docker_patience: float = DOCKER_START_PATIENCE
    clients: AwsClients | None = None
    queues: dict[str, SqsQueue] = field(default_factory=dict)
    queue_infos: dict[str, QueueInfo] = field(default_factory=dict)
    store: DynamoStore | None = None
    docker: docker.DockerClient | None = None
    tokens: TokenProvider | None = None
    matches: MatchSource | None = None
    warnings: list[str] = field(default_factory=list)

    def warn(self, text: str) -> None:
        self.warnings.append(text)


@dataclass(frozen=True)
class StartCheck:
    """One named step of the start: ``run`` returns the tick's text or raises the runner's error."""

    name: str
    run: Callable[[StartState], str]
    #: The fix shown with a cross, from the error.
    fix: Callable[[Exception, StartState], str]
    #: Names of the checks that must have passed before this one can be tried.
    needs: tuple[str, ...] = ()


# -- the checks ----------------------------------------------------------------------


def _queue_urls(state: StartState) -> str:
    if not state.modes:
        raise ConfigError("no queue configured: set evaluator_queue_url and/or scorer_queue_url")
    urls = [mode.queue_url(state.config) and mode.queue_key for mode in state.modes]
    return ", ".join(f"{key} set" for key in urls)


def _aws(state: StartState) -> str:
    from ..aws.clients import config_clients

    state.clients = config_clients(state.config, max_attempts=state.aws_attempts)
    where = state.config.endpoint_url or "AWS"
    return f"credentials found, region {state.config.region_name} ({where})"


def _queue(mode: Mode) -> Callable[[StartState], str]:
    def run(state: StartState) -> str:
        from .queue_warnings import queue_warnings

        assert state.clients is not None
        queue = build_queue(mode, state.config, state.clients)
        info = queue.check()
        state.queues[mode.name] = queue
        state.queue_infos[mode.name] = info
        for warning in queue_warnings(info, mode.queue_key):
            state.warn(warning)
        kind = "FIFO" if info.fifo else "standard"
        redrive = (
            f"dead-letter queue after {info.max_receive_count} receives"
            if info.max_receive_count
            else "no dead-letter queue"
        )
        kept = ""
        if info.retention_seconds is not None:
            from ..fleet.queue_counts import age_text

            kept = f", keeps messages {age_text(info.retention_seconds)}"
        return (
            f"{info.url}: {kind}, visibility timeout {info.visibility_timeout} s, {redrive}{kept}"
        )

    return run


def _queue_fix(mode: Mode) -> Callable[[Exception, StartState], str]:
    def fix(exc: Exception, state: StartState) -> str:
        if isinstance(exc, TransientError):
            return UNREACHABLE_FIX
        return (
            f"check '{mode.queue_key}' (the queue's URL in region {state.config.region_name})"
            " and the keys' permissions"
        )

    return fix


def _table(state: StartState) -> str:

    assert state.clients is not None
    name = state.config.table_name
    store = build_store(state.config, state.clients)
    schema = store.key_schema()
    if schema is not None and schema != EXPECTED_KEYS:
        shown = ", ".join(f"{attr} ({kind}, {typ})" for (attr, kind), typ in schema.items())
        raise ConfigError(
            f"table {name} is keyed {shown}; expected ID (HASH, S) and Trial (RANGE, S)"
        )
    store.check()
    state.store = store
    keyed = "keyed ID/Trial (strings)" if schema else "readable (key schema not visible)"
    return f"{name}: {keyed}"


def _table_fix(exc: Exception, state: StartState) -> str:
    if isinstance(exc, TransientError):
        return UNREACHABLE_FIX
    return (
        f"point 'table_name' at the OptHub table (now {state.config.table_name!r})"
        " and check the region"
    )


def _permissions(state: StartState) -> str:
    """Every runner action with a harmless call, tried on each queue and the table."""
    from ..aws.clients import cloudwatch_client
    from ..aws.permissions import runner_actions
    from ..errors import SetupError
    from ..queue.sqs_permissions import refused_sqs_actions
    from ..store.dynamodb_permissions import refused_dynamodb_actions

    assert state.clients is not None
    cloudwatch = cloudwatch_client(state.clients, max_attempts=state.aws_attempts)
    denied: dict[str, list[str]] = {}
    for queue in state.queues.values():
        for action in refused_sqs_actions(state.clients.sqs, queue.url, cloudwatch):
            denied.setdefault(action, []).append(queue.url)
    table = state.config.table_name
    for action in refused_dynamodb_actions(state.clients.dynamodb, table):
        denied.setdefault(action, []).append(f"table {table}")
    required = {p.action for p in runner_actions(required=True)}
    missing = [
        f"{action} (on {', '.join(on)})" for action, on in denied.items() if action in required
    ]
    if missing:
        raise SetupError(
            f"the AWS keys may not {'; '.join(missing)}: allow it in their IAM policy"
            " (docs/operating.md lists every action the runner uses)"
        )
    for permission in runner_actions(required=False):
        if permission.action in denied:
            state.warn(
                f"{permission.action} is denied, so the runner goes without it ({permission.why}):"
                " allow it in the keys' IAM policy to have it"
            )
    untried = [p.action for p in runner_actions() if p.probe == "none"]
    tried = len([p for p in runner_actions() if p.probe != "none"])
    return (
        f"{tried - len(denied)} of {tried} actions tried are allowed; {', '.join(untried)}"
        " cannot be tried without moving a message (the runner's first receive tries it)"
    )


def _docker(state: StartState) -> str:
    from ..executor.docker import connect_docker
    from ..executor.docker.daemon_watch import wait_for_docker

    # A daemon restarting as the runner starts answers within seconds: wait for it.
    state.docker = wait_for_docker(
        lambda: connect_docker(workers=state.config.workers), patience=state.docker_patience
    )
    return f"reachable (server {state.docker.version().get('Version', '?')})"


def _docker_host(state: StartState) -> str:

    assert state.docker is not None
    return check_docker_host(state.config, state.docker)


def _disk(state: StartState) -> str:
    """Free space of Docker's data root and the state folder: low space is a warning.

    The runner starts with little space (and says so while it runs); what
    fails for want of it is each pull or container start, which the image
    clean-up answers.
    """
    from .disks import disk_paths, disk_report

    assert state.docker is not None
    ok, detail = disk_report(disk_paths(state.docker), state.config.disk_warning_below)
    if not ok:
        state.warn("little free space: free some (docker image prune), or set image_cleanup_after")
    return detail


def _login(state: StartState) -> str:
    config = state.config
    if config.matches_file is not None:
        return f"not needed (matches come from {config.matches_file})"

    session = state.clients.session if state.clients else None
    state.tokens = build_login(config, state.options, session)
    return f"logged in as {state.tokens.username}"


def _matches(state: StartState) -> str:
    """The catalogue file, or the API answering the login (a match that cannot exist)."""
    config = state.config
    if config.matches_file is not None:
        from ..matches.file import FileMatchSource

        state.matches = FileMatchSource(config.matches_file)
        return f"{config.matches_file} is valid"
    from ..matches import UnknownMatch
    from ..matches.cached import CachedMatchSource
    from ..matches.graphql import GraphqlMatchSource

    assert state.tokens is not None
    api_url = config.api(dev=state.options.dev).api_url
    source = GraphqlMatchSource(api_url, state.tokens.access_token)
    with contextlib.suppress(UnknownMatch):  # "unknown" proves the API answered our login
        source.get(str(uuid.UUID(int=0)))
    state.matches = CachedMatchSource(source, config.match_cache_seconds)
    return f"{api_url} answered"


def _matches_fix(exc: Exception, state: StartState) -> str:
    if state.config.matches_file is not None:
        return "fix the matches file"
    return f"check 'api_url' ({state.config.api(dev=state.options.dev).api_url}) and the network"


def _fixed(text: str) -> Callable[[Exception, StartState], str]:
    return lambda exc, state: text


def start_checks(state: StartState) -> list[StartCheck]:
    """Every check of the start, in the order the runner makes them."""
    queues = [
        StartCheck(f"{mode.name} queue", _queue(mode), _queue_fix(mode), needs=("AWS",))
        for mode in state.modes
    ]
    matches_name = "matches file" if state.config.matches_file is not None else "API"
    return [
        StartCheck(
            "queues",
            _queue_urls,
            _fixed("set evaluator_queue_url and/or scorer_queue_url in the config file"),
        ),
        StartCheck(
            "AWS",
            _aws,
            _fixed(
                "give the keys in the config file (access_key_id, secret_access_key) or in"
                " boto3's own places (AWS_ACCESS_KEY_ID, ~/.aws/credentials, an instance role)"
            ),
        ),
        *queues,
        StartCheck("table", _table, _table_fix, needs=("AWS",)),
        StartCheck(
            "AWS permissions",
            _permissions,
            _fixed("allow the actions named in the keys' IAM policy (see docs/operating.md)"),
            needs=("AWS", "table", *(check.name for check in queues)),
        ),
        StartCheck(
            "Docker",
            _docker,
            _fixed("start Docker (sudo systemctl start docker), or fix DOCKER_HOST"),
        ),
        StartCheck(
            "Docker runtime and CPUs",
            _docker_host,
            _fixed("change 'runtime' or 'cpus' in the config file, as the error says"),
            needs=("Docker",),
        ),
        StartCheck(
            "disk",
            _disk,
            _fixed("free some space: docker image prune, or image_cleanup_after"),
            needs=("Docker",),
        ),
        StartCheck(
            "login",
            _login,
            _fixed(
                "log in with the competition administrator's account"
                " (OPTHUB_USERNAME / OPTHUB_PASSWORD, or the prompt)"
            ),
        ),
        StartCheck(matches_name, _matches, _matches_fix, needs=("login",)),
    ]


def run_for_runner(state: StartState) -> None:
    """The runner's start: every check in turn; the first failure is raised as it is."""
    for check in start_checks(state):
        before = len(state.warnings)
        check.run(state)
        for warning in state.warnings[before:]:
            log.warning("%s", warning)


def run_for_doctor(state: StartState) -> Iterator[Check]:
    """Every check whose prerequisites passed, each as one verdict; none raises."""
    failed: set[str] = set()
    for check in start_checks(state):
        missing = [name for name in check.needs if name in failed]
        if missing:
            failed.add(check.name)
            yield Check(check.name, False, f"not tried: {missing[0]} failed", "fix it first")
            continue
        before = len(state.warnings)
        try:
            detail = check.run(state)
        except (RunnerError, ConfigError) as exc:
            failed.add(check.name)
            yield Check(check.name, False, " ".join(str(exc).split()), check.fix(exc, state))
            continue
        yield Check(check.name, True, detail, warnings=tuple(state.warnings[before:]))
