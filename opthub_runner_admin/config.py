"""The operator's YAML configuration, validated once into a frozen dataclass.

Operators already hold a ``config.yml`` for the earlier implementation; every
key it knew keeps its meaning. Errors name the key and what is expected in one
line, because the operator reading them is usually in a tmux pane on a remote
machine, not in a debugger.
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .queue.base import MAX_VISIBILITY_SECONDS
from .queue.urls import queue_url_problem
from .sizes import parse_size

log = logging.getLogger(__name__)

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
MODES = ("evaluator", "scorer")

#: Most jobs one process runs at once: each holds a thread, a heartbeat and Docker
#: connections; beyond this, start more runner processes (or hosts) instead.
MAX_WORKERS = 64


class ConfigError(Exception):
    """A configuration the runner cannot start with; the text is one line for the operator."""


@dataclass(frozen=True)
class ApiSettings:
    """Where the administrator logs in and where match information comes from."""

    api_url: str
    cognito_region: str
    cognito_user_pool_id: str
    cognito_client_id: str


PRODUCTION_API = ApiSettings(
    api_url="https://tf5tepcpn5bori46x5cyxh3ehe.appsync-api.ap-northeast-1.amazonaws.com/graphql",
    cognito_region="ap-northeast-1",
    cognito_user_pool_id="ap-northeast-1_9TAMGx5NT",
    cognito_client_id="7t7snlnn801j8mjsf97eaart1s",
)
DEVELOPMENT_API = ApiSettings(
    api_url="https://jciqso7l7rhajfkt5s3dhybpcu.appsync-api.ap-northeast-1.amazonaws.com/graphql",
    cognito_region="ap-northeast-1",
    cognito_user_pool_id="ap-northeast-1_1Y69fktA0",
    cognito_client_id="24nvfsrgbuvu75h4o8oj2c2oek",
)


@dataclass(frozen=True)
class Config:
    """Every setting the runner reads. Field docs are the operator-facing meanings."""

    # Keys of the published README.
    region_name: str
    table_name: str
    evaluator_queue_url: str | None = None
    scorer_queue_url: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    interval: int = 2
    timeout: int = 43200
    rm: bool = True
    log_level: str = "INFO"
    force: bool = False
    num: int = 0
    # Keys this implementation adds.
    endpoint_url: str | None = None
    matches_file: Path | None = None
    api_url: str | None = None
    cognito_region: str | None = None
    cognito_user_pool_id: str | None = None
    cognito_client_id: str | None = None
    match_cache_seconds: int = 300
    visibility_timeout: int = 60
    output_limit: int = 4 * 1024 * 1024
    grace_period: int | None = None
    max_deferrals: int = 30
    defer_seconds: int = 10
    cache_dir: Path | None = None
    # Concurrency (issue 9): jobs at once, and at most this many of one participant.
    workers: int = 1
    max_jobs_per_participant: int | None = None
    # Observability (status line, JSON logs, metrics, status page, health).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    log_format: str = "text"
    status_interval: int = 60
    slow_job_warning: int = 600
    health_stall_seconds: int = 300
    # The container's command (issue 8): arguments after the image's entrypoint.
    command: tuple[str, ...] | None = None
    # Images and runtime of the containers (issue 9).
    pull_policy: str = "if-missing"
    pull_interval: int = 300
    runtime: str | None = None
    # On by default (issue 17): `prestart: false` only turns containers started ahead off.
    prestart: bool = True
    # Container isolation and input bounds (see the README's "Isolation").
    # ``None`` means no limit; executor.limits.ContainerLimits has the same defaults.
    memory: int | None = 4 * 1024**3
    memory_swap: int | None = None
    cpus: float | None = None
    pids_limit: int | None = 1024
    nofile: int | None = 4096
    network: str = "bridge"
    read_only: bool = False
    tmpfs_size: int = 256 * 1024**2
    user: str | None = None
    no_new_privileges: bool = True
    cap_add: tuple[str, ...] = ()
    log_max_size: int = 10 * 1024**2
    log_max_files: int = 1
    gpus: str | tuple[str, ...] | None = None
    max_solution_bytes: int = 1024 * 1024

    def queue_url(self, mode: str) -> str:
        """The queue of ``mode``; a missing one is a configuration error."""
        key = f"{mode}_queue_url"
        url: str | None = getattr(self, key)
        if not url:
            raise ConfigError(f"'{key}' is required to run the {mode} (the SQS queue URL)")
        return url

    def api(self, *, dev: bool = False) -> ApiSettings:
        """Production (or development) endpoints, with any key set in the file winning."""
        base = DEVELOPMENT_API if dev else PRODUCTION_API
        return ApiSettings(
            api_url=self.api_url or base.api_url,
            cognito_region=self.cognito_region or base.cognito_region,
            cognito_user_pool_id=self.cognito_user_pool_id or base.cognito_user_pool_id,
            cognito_client_id=self.cognito_client_id or base.cognito_client_id,
        )


# key -> (type, minimum) for numbers; the types the YAML must carry.
_INTS: dict[str, int] = {
    "interval": 0,
    "timeout": 1,
    "num": 0,
    "match_cache_seconds": 0,
    "visibility_timeout": 1,
    "output_limit": 1024,
    "grace_period": 0,
    "max_deferrals": 0,
    "defer_seconds": 0,
    "workers": 1,
    "max_jobs_per_participant": 1,
    "metrics_port": 0,
    "status_interval": 0,
    "slow_job_warning": 1,
    "health_stall_seconds": 1,
    "pull_interval": 0,
    "log_max_files": 1,
}
_BOOLS = ("rm", "force", "prestart", "read_only", "no_new_privileges")
_STRS = (
    "region_name",
    "table_name",
    "evaluator_queue_url",
    "scorer_queue_url",
    "access_key_id",
    "secret_access_key",
    "log_level",
    "endpoint_url",
    "api_url",
    "cognito_region",
    "cognito_user_pool_id",
    "cognito_client_id",
    "metrics_host",
    "log_format",
    "pull_policy",
    "runtime",
)
LOG_FORMATS = ("text", "json")
#: Text keys that take one of a few words.
_CHOICES = {"pull_policy": ("always", "if-missing", "never")}
_PATHS = ("matches_file", "cache_dir")
_REQUIRED = ("region_name", "table_name")
#: Keys holding credentials: never echoed back in an error message, and a
#: config file holding one should be readable by its owner only.
SECRET_KEYS = ("access_key_id", "secret_access_key")
_SECRETS = set(SECRET_KEYS)
_NULLABLE = {"grace_period", "max_jobs_per_participant", "metrics_port", "command"}

# Container isolation keys: sizes take bytes or text such as 512m; key -> smallest.
_SIZES: dict[str, int] = {
    "memory": 6 * 1024**2,  # Docker refuses less than 6 MiB
    "memory_swap": 6 * 1024**2,
    "tmpfs_size": 1024**2,
    "log_max_size": 1024,
    "max_solution_bytes": 1,
}
#: Keys whose ``null`` removes the limit (their default is a limit).
_NULL_MEANS_NO_LIMIT = {"memory", "memory_swap", "cpus", "pids_limit", "nofile", "user", "gpus"}
#: Smallest pids_limit and nofile: below these not even a shell starts its pipeline.
_COUNTS = {"pids_limit": 8, "nofile": 16}
_NETWORK_MODES = ("bridge", "none")


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    warnings: list[str]


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate ``path``; raise ``ConfigError`` with one line naming the problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: configuration file not found (copy config.default.yml and fill it in,"
            " or pass --config)"
        ) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file ({exc.strerror})") from None
    return parse_config(text, source=str(path), base_dir=path.parent)


def read_yaml(text: str, source: str, loader: type[yaml.SafeLoader] = yaml.SafeLoader) -> Any:
    """Parse YAML (safely: no Python objects); a syntax error names the line, in one line."""
    try:
        return yaml.load(text, Loader=loader)  # a SafeLoader (sub)class: no Python objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}{where}: YAML syntax error: {problem}") from None


def parse_config(
    text: str, *, source: str = "config", base_dir: Path | None = None
) -> LoadedConfig:
    """Validate YAML text; relative paths in it are taken from ``base_dir``."""
    raw = read_yaml(text, source)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys to values at the top level")
    return _validate(raw, source, base_dir or Path.cwd())


def _validate(raw: Mapping[Any, Any], source: str, base_dir: Path) -> LoadedConfig:
    known = {f.name for f in fields(Config)}
    warnings = [
        f"{source}: unknown key '{key}' is ignored (check its spelling)"
        for key in raw
        if key not in known
    ]
    values: dict[str, Any] = {}
    for key in known & {str(k) for k in raw}:
        value = raw[key]
        if value is None and key in _NULL_MEANS_NO_LIMIT:
            values[key] = None
            continue
        if value is None and (key in _NULLABLE or key in _STRS or key in _PATHS):
            continue
        values[key] = _check(key, value, source, base_dir)
    _check_swap(values, source)
    for key in _REQUIRED:
        if not values.get(key):
            raise ConfigError(f"{source}: '{key}' is required ({_MEANING[key]})")
    for key in ("evaluator_queue_url", "scorer_queue_url"):
        problem = values.get(key) and queue_url_problem(
            key, values[key], region_name=values["region_name"]
        )
        if problem:
            raise ConfigError(f"{source}: {problem}")
    level = values.get("log_level", "INFO")
    if level.upper() not in LOG_LEVELS:
        raise ConfigError(
            f"{source}: 'log_level' must be one of {', '.join(LOG_LEVELS)}, got {level!r}"
        )
    values["log_level"] = level.upper()
    log_format = values.get("log_format", "text")
    if log_format not in LOG_FORMATS:
        raise ConfigError(
            f"{source}: 'log_format' must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}"
        )
    if values.get("force"):
        warnings.append(f"{source}: 'force' is a legacy key with no effect in this version")
    return LoadedConfig(config=Config(**values), warnings=warnings)


_MEANING = {
    "region_name": "the AWS region of the queues and the table, e.g. ap-northeast-1",
    "table_name": "the DynamoDB table of solutions, evaluations and scores",
}


def parse_command(value: Any, where: str) -> tuple[str, ...]:
    """A container command from YAML: a list of arguments, or one string split as a shell would.

    Raises ``ConfigError`` naming ``where`` (a file and key) when it is neither.
    """
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ConfigError(f"{where} cannot be split into arguments ({exc})") from None
    elif isinstance(value, list) and all(
        isinstance(w, (str, int, float)) and not isinstance(w, bool) for w in value
    ):
        words = [str(w) for w in value]
    else:
        raise ConfigError(f"{where} must be a list of arguments or a string")
    if not words:
        raise ConfigError(f"{where} is empty (leave it out to use the image's own command)")
    return tuple(words)


def _check_int(key: str, value: Any, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{source}: '{key}' must be a whole number, got {value!r}")
    if value < _INTS[key]:
        raise ConfigError(f"{source}: '{key}' must be at least {_INTS[key]}, got {value}")
    if key == "workers" and value > MAX_WORKERS:
        raise ConfigError(f"{source}: 'workers' must be at most {MAX_WORKERS}, got {value}")
    if key == "metrics_port" and value > 65535:
        raise ConfigError(f"{source}: 'metrics_port' must be a TCP port (1..65535)")
    if key == "visibility_timeout" and value > MAX_VISIBILITY_SECONDS:
        raise ConfigError(
            f"{source}: 'visibility_timeout' must be at most {MAX_VISIBILITY_SECONDS}"
        )
    return value


def _check(key: str, value: Any, source: str, base_dir: Path) -> Any:
    if key in _OWN_CHECKS:
        return _OWN_CHECKS[key](key, value, source)
    if key in _INTS:
        return _check_int(key, value, source)
    if key in _BOOLS:
        if not isinstance(value, bool):
            raise ConfigError(f"{source}: '{key}' must be true or false, got {value!r}")
        return value
    if key in _PATHS:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{source}: '{key}' must be a path, got {value!r}")
        path = Path(value).expanduser()
        return path if path.is_absolute() else base_dir / path
    if not isinstance(value, str):
        shown = type(value).__name__ if key in _SECRETS else repr(value)
        raise ConfigError(f"{source}: '{key}' must be text, got {shown}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise ConfigError(
            f"{source}: '{key}' must be one of {', '.join(_CHOICES[key])}, got {value!r}"
        )
    return value


# -- container isolation ---------------------------------------------------


def _check_size(key: str, value: Any, source: str) -> int:
    if key == "memory_swap" and value == -1:
        return -1  # Docker's "unlimited swap"
    try:
        size = parse_size(value) if isinstance(value, (int, str)) else -1
    except ValueError:
        size = -1
    if size < 0:
        raise ConfigError(
            f"{source}: '{key}' must be a size in bytes or such as 512m or 2g, got {value!r}"
        )
    if size < _SIZES[key]:
        raise ConfigError(f"{source}: '{key}' must be at least {_SIZES[key]} bytes, got {value!r}")
    return size


def _check_count(key: str, value: Any, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < _COUNTS[key]:
        raise ConfigError(
            f"{source}: '{key}' must be a whole number of at least {_COUNTS[key]}"
            f" (or null for no limit), got {value!r}"
        )
    return value


def _check_cpus(key: str, value: Any, source: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ConfigError(
            f"{source}: '{key}' must be a number of CPUs above 0 such as 1.5, got {value!r}"
        )
    return float(value)


def _check_network(key: str, value: Any, source: str) -> str:
    if value not in _NETWORK_MODES:
        raise ConfigError(
            f"{source}: '{key}' must be one of {', '.join(_NETWORK_MODES)}, got {value!r}"
        )
    return str(value)


def _check_user(key: str, value: Any, source: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value) == "":
        raise ConfigError(
            f"{source}: '{key}' must be a user as docker run --user takes it"
            f" (name, uid or uid:gid), got {value!r}"
        )
    return str(value)


def _check_cap_add(key: str, value: Any, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(cap, str) and cap for cap in value):
        raise ConfigError(
            f"{source}: '{key}' must be a list of capability names such as [CHOWN], got {value!r}"
        )
    return tuple(cap.upper() for cap in value)


def _check_gpus(key: str, value: Any, source: str) -> str | tuple[str, ...]:
    if value == "all":
        return "all"
    if (
        isinstance(value, list)
        and value
        and all(isinstance(d, (int, str)) and not isinstance(d, bool) for d in value)
    ):
        return tuple(str(device) for device in value)
    raise ConfigError(
        f"{source}: '{key}' must be all or a list of GPU device ids such as [0, 1], got {value!r}"
    )


def _check_swap(values: dict[str, Any], source: str) -> None:
    """Docker refuses a memory+swap total below the memory limit; say so before it does."""
    memory = values.get("memory", Config.memory)
    swap = values.get("memory_swap")
    if memory is None and swap is not None:
        raise ConfigError(f"{source}: 'memory_swap' needs 'memory' (Docker refuses it alone)")
    if memory is not None and swap is not None and swap != -1 and swap < memory:
        raise ConfigError(
            f"{source}: 'memory_swap' is memory plus swap and must be at least 'memory'"
            f" ({memory} bytes), or -1 for unlimited swap"
        )


def _check_command(key: str, value: Any, source: str) -> tuple[str, ...]:
    return parse_command(value, f"{source}: '{key}'")


#: Keys with a checker of their own: key -> check(key, value, source).
_OWN_CHECKS = {
    "command": _check_command,
    **{key: _check_size for key in _SIZES},
    **{key: _check_count for key in _COUNTS},
    "cpus": _check_cpus,
    "network": _check_network,
    "user": _check_user,
    "cap_add": _check_cap_add,
    "gpus": _check_gpus,
}
