"""``opthub-runner doctor``: check a setup before the competition, one line per part.

Each check uses the builder the daemon uses for the same thing
(``assembly.build_queue``, ``build_store``, ``build_login``, the match
source, ``ImageTrial`` over ``assembly.build_executor``), so that a tick here
means the runner gets past the same step, and a cross carries the runner's own
error text plus the fix.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config.schema import Config
from ..errors import ConfigError, RunnerError, TransientError
from ..model import JSON, Evaluation, bare_match_id
from .modes import MODES

if TYPE_CHECKING:
    from ..auth.credentials import Credentials
    from ..aws.clients import AwsClients
    from ..jobs.tryout import ImageTrial
    from ..matches import ImageSpec, MatchSource

#: Attempts per AWS call: a doctor should say "unreachable" in seconds, not after a backoff.
DOCTOR_AWS_ATTEMPTS = 2
#: Longest run of an image on the sample input.
DEFAULT_TRY_TIMEOUT = 120
#: The key the platform's table is built on: (attribute, key type) -> attribute type.
EXPECTED_KEYS = {("ID", "HASH"): "S", ("Trial", "RANGE"): "S"}
_UNREACHABLE_FIX = "check the network, 'endpoint_url' and 'region_name' (AWS did not answer)"
TICK = "\N{CHECK MARK}"
CROSS = "\N{BALLOT X}"


@dataclass(frozen=True)
class Check:
    """One verdict: what was checked, what was found, and the fix when it failed."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        if self.ok:
            return f"{TICK} {self.name}: {self.detail}"
        fix = f" -> fix: {self.fix}" if self.fix else ""
        return f"{CROSS} {self.name}: {self.detail}{fix}"


@dataclass(frozen=True)
class DoctorOptions:
    match_id: str | None = None
    dev: bool = False
    #: The sample solution the problem image is tried on.
    solution: JSON = None
    try_timeout: int = DEFAULT_TRY_TIMEOUT
    #: Asks for the administrator's credentials when the environment lacks them.
    prompt: Callable[[], Credentials] | None = None


class Doctor:
    """Runs the checks in order; a failed part skips what depends on it."""

    def __init__(
        self,
        *,
        config: Config,
        options: DoctorOptions,
        image_trial: Callable[[Config, int], ImageTrial],
    ) -> None:
        self._config = config
        self._options = options
        self._image_trial = image_trial
        self._docker_ok = False
        self._matches: MatchSource | None = None
        self._token: Callable[[], str] | None = None

    def checks(self) -> Iterator[Check]:
        yield self._docker()
        if self._docker_ok:
            yield self._disk()
        clients = self._clients()
        if isinstance(clients, Check):
            yield clients
        else:
            yield from self._queues(clients)
            yield self._table(clients)
        yield self._login(clients if not isinstance(clients, Check) else None)
        yield self._api()
        if self._options.match_id is not None:
            yield from self._match(self._options.match_id)

    # -- Docker and AWS -------------------------------------------------------------

    def _docker(self) -> Check:
        from ..executor.docker import connect_docker

        try:
            client = connect_docker()
            version = client.version().get("Version", "?")
        except RunnerError as exc:
            return Check(
                "Docker",
                False,
                str(exc),
                "start Docker (sudo systemctl start docker), or fix DOCKER_HOST",
            )
        self._docker_ok = True
        return Check("Docker", True, f"reachable (server {version})")

    def _disk(self) -> Check:
        from ..executor.docker import connect_docker
        from .disks import disk_paths, disk_report

        paths = disk_paths(connect_docker())
        ok, detail = disk_report(paths, self._config.disk_warning_below)
        return Check(
            "disk", ok, detail, "free some space: docker image prune, or image_cleanup_after"
        )

    def _clients(self) -> AwsClients | Check:
        from ..aws.clients import config_clients

        try:
            return config_clients(self._config, max_attempts=DOCTOR_AWS_ATTEMPTS)
        except RunnerError as exc:
            return Check("AWS", False, str(exc), "fix the AWS keys in config.yml")

    def _queues(self, clients: AwsClients) -> Iterator[Check]:
        from .assembly import build_queue

        configured = [mode for mode in MODES if mode.configured(self._config)]
        if not configured:
            yield Check(
                "queues",
                False,
                "no queue configured",
                "set evaluator_queue_url and/or scorer_queue_url in config.yml",
            )
        for mode in configured:
            key = mode.queue_key
            url = mode.queue_url(self._config)
            try:
                info = build_queue(mode, self._config, clients).check()
            except RunnerError as exc:
                fix = (
                    _UNREACHABLE_FIX
                    if isinstance(exc, TransientError)
                    else f"check '{key}' (the queue's URL in region {self._config.region_name})"
                    " and the keys' permissions"
                )
                yield Check(f"{mode.name} queue", False, str(exc), fix)
                continue
            kind = "FIFO" if url.endswith(".fifo") else "standard"
            redrive = (
                f"dead-letter queue after {info.max_receive_count} receives"
                if info.max_receive_count
                else "no dead-letter queue"
            )
            yield Check(
                f"{mode.name} queue",
                True,
                f"{url}: {kind}, visibility timeout {info.visibility_timeout} s, {redrive}",
            )

    def _table(self, clients: AwsClients) -> Check:
        from .assembly import build_store

        name = self._config.table_name
        fix = f"point 'table_name' at the OptHub table (now {name!r}) and check the region"
        store = build_store(self._config, clients)
        schema = store.key_schema()
        if schema is not None and schema != EXPECTED_KEYS:
            shown = ", ".join(f"{attr} ({kind}, {typ})" for (attr, kind), typ in schema.items())
            return Check(
                "table",
                False,
                f"{name} is keyed {shown}; expected ID (HASH, S) and Trial (RANGE, S)",
                fix,
            )
        try:
            store.check()
        except RunnerError as exc:
            unreachable = isinstance(exc, TransientError)
            return Check("table", False, str(exc), _UNREACHABLE_FIX if unreachable else fix)
        keyed = "keyed ID/Trial (strings)" if schema else "readable (key schema not visible)"
        return Check("table", True, f"{name}: {keyed}")

    # -- login, API, match ------------------------------------------------------------

    def _login(self, clients: AwsClients | None) -> Check:
        config = self._config
        if config.matches_file is not None:
            return Check("login", True, f"not needed (matches come from {config.matches_file})")
        from .assembly import Options, build_login

        options = Options(dev=self._options.dev, prompt=self._options.prompt)
        try:
            provider = build_login(config, options, clients.session if clients else None)
        except RunnerError as exc:
            return Check(
                "login",
                False,
                str(exc),
                "log in with the competition administrator's account"
                " (OPTHUB_USERNAME / OPTHUB_PASSWORD, or the prompt)",
            )
        self._token = provider.access_token
        return Check("login", True, f"logged in as {provider.username}")

    def _api(self) -> Check:
        config = self._config
        if config.matches_file is not None:
            from ..matches.file import FileMatchSource

            try:
                self._matches = FileMatchSource(config.matches_file)
            except ConfigError as exc:
                return Check("matches file", False, str(exc), "fix the matches file")
            return Check("matches file", True, f"{config.matches_file} is valid")
        api_url = config.api(dev=self._options.dev).api_url
        if self._token is None:
            return Check("API", False, "not tried: no login", "fix the login first")
        from ..matches import UnknownMatch
        from ..matches.graphql import GraphqlMatchSource

        source = GraphqlMatchSource(api_url, self._token)
        try:
            # A match that cannot exist: "unknown" proves the API answered our login.
            source.get(str(uuid.UUID(int=0)))
        except UnknownMatch:
            pass
        except RunnerError as exc:
            return Check("API", False, str(exc), f"check 'api_url' ({api_url}) and the network")
        self._matches = source
        return Check("API", True, f"{api_url} answered")

    def _match(self, match_id: str) -> Iterator[Check]:
        name = f"match {match_id}"
        if self._matches is None:
            yield Check(name, False, "not tried: no match source", "fix the checks above first")
            return
        try:
            match = self._matches.get(bare_match_id(match_id))
        except RunnerError as exc:
            yield Check(name, False, str(exc), "check the match id and the administrator account")
            return
        yield Check(name, True, f"problem {match.problem.image}, indicator {match.indicator.image}")
        if not self._docker_ok:
            yield Check("images", False, "not tried: Docker is unreachable", "fix Docker first")
            return
        trial = self._image_trial(self._config, self._options.try_timeout)
        current = yield from self._try_problem(trial, match.problem)
        yield from self._try_indicator(trial, match.indicator, current)

    def _try_problem(
        self, trial: ImageTrial, spec: ImageSpec
    ) -> Generator[Check, None, Evaluation | None]:
        from ..jobs.tryout import report_lines

        sample = self._options.solution
        try:
            result = trial.problem(spec, sample)
        except RunnerError as exc:
            yield Check(f"problem image {spec.image}", False, str(exc), _image_fix(spec))
            return None
        yield Check(f"problem image {spec.image}", True, "present or pulled")
        if not result.succeeded:
            yield Check(
                f"problem image on {_short(sample)}",
                False,
                "; ".join(report_lines(result)[2:3]),
                "see `opthub-runner try problem` for details, or pass --solution with a"
                " sample the problem accepts",
            )
            return None
        yield Check(f"problem image on {_short(sample)}", True, report_lines(result)[1])
        outcome = result.outcome
        return outcome if isinstance(outcome, Evaluation) else None

    def _try_indicator(
        self, trial: ImageTrial, spec: ImageSpec, current: Evaluation | None
    ) -> Iterator[Check]:
        from ..jobs.tryout import report_lines

        current = current or Evaluation(objective=0.0)
        try:
            result = trial.indicator(spec, current, [])
        except RunnerError as exc:
            yield Check(f"indicator image {spec.image}", False, str(exc), _image_fix(spec))
            return
        yield Check(f"indicator image {spec.image}", True, "present or pulled")
        yield Check(
            "indicator image on the sample evaluation",
            result.succeeded,
            report_lines(result)[1 if result.succeeded else 2],
            "see `opthub-runner try indicator` for details",
        )


def _image_fix(spec: ImageSpec) -> str:
    return f"build or pull {spec.image} on this machine, or `docker login` to its registry"


def _short(value: JSON, limit: int = 40) -> str:
    import json

    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_config(path: str) -> tuple[Check, Config | None]:
    """The first check: can the runner start with this file at all?"""
    from ..config.loading import load_config

    try:
        loaded = load_config(path)
    except ConfigError as exc:
        return Check("config", False, str(exc), "fix the file (see config.default.yml)"), None
    notes = f" ({'; '.join(loaded.warnings)})" if loaded.warnings else ""
    return Check("config", True, f"{path} is valid{notes}"), loaded.config
