"""The operator's YAML configuration: read once, each key routed to the part declaring it.

Every key is declared once, with its type, default, bounds and description,
next to the part that reads it (``*Keys`` classes and ``ContainerLimits``);
``Config`` joins them, so that the validation here, the JSON Schema and the
documentation table (``config_docs``) all follow the declarations. Operators
already hold a ``config.yml`` for the earlier implementation; every key it knew
keeps its meaning. Errors name the file and the key in one line per problem,
because the operator reading them is usually in a tmux pane on a remote
machine, not in a debugger.
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml
from pydantic import Field, ValidationError
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from .auth.endpoints import ApiKeys
from .aws_keys import AwsKeys
from .executor.keys import DockerKeys
from .executor.limits import ContainerLimits
from .jobs.keys import JobKeys
from .matches.keys import MatchKeys
from .observe.keys import ObserveKeys
from .setting_types import KEYS, command_words
from .worker.keys import MAX_WORKERS, WorkerKeys

__all__ = ["MAX_WORKERS", "MODES", "SECTIONS", "Config", "ConfigError", "load_config"]

log = logging.getLogger(__name__)

MODES = ("evaluator", "scorer")

#: The parts' declarations, in the order the docs and config.default.yml show them.
SECTIONS: tuple[type[Any], ...] = (
    AwsKeys,
    WorkerKeys,
    JobKeys,
    DockerKeys,
    ContainerLimits,
    ObserveKeys,
    MatchKeys,
    ApiKeys,
)


class ConfigError(Exception):
    """A configuration the runner cannot start with; one line per problem for the operator."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# The bases in the reverse order of SECTIONS: a dataclass takes its bases' fields last first.
@dataclass(config=KEYS, kw_only=True, frozen=True)
class Config(
    ApiKeys, MatchKeys, ObserveKeys, ContainerLimits, DockerKeys, JobKeys, WorkerKeys, AwsKeys
):
    """Every setting the runner reads."""

    force: bool = Field(default=False, description="legacy key of the published runner, no effect")

    def queue_url(self, mode: str) -> str:
        """The queue of ``mode``; a missing one is a configuration error."""
        key = f"{mode}_queue_url"
        url: str | None = getattr(self, key)
        if not url:
            raise ConfigError(f"'{key}' is required to run the {mode} (the SQS queue URL)")
        return url


#: The declaration of every key (pydantic keeps them on the class).
DECLARED: dict[str, FieldInfo] = getattr(Config, "__pydantic_fields__")  # noqa: B009
#: Keys holding credentials (declared with ``repr=False``): never echoed back in an
#: error message, and a config file holding one should be readable by its owner only.
SECRET_KEYS = tuple(key for key, info in DECLARED.items() if not info.repr)

Section = TypeVar("Section")


def section(config: Config, keys: type[Section]) -> Section:
    """The values of one part's declaration (``ContainerLimits`` for the executor...)."""
    names = {f.name for f in dataclasses.fields(keys)}  # type: ignore[arg-type]
    return keys(**{name: getattr(config, name) for name in names})


@dataclasses.dataclass(frozen=True)
class LoadedConfig:
    config: Config
    warnings: list[str]


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate ``path``; raise ``ConfigError`` naming every problem, one per line."""
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
    warnings = [_unknown(str(key), source) for key in raw if key not in DECLARED]
    values = {key: value for key, value in raw.items() if key in DECLARED and _given(key, value)}
    try:
        config = Config(**values)
    except ValidationError as exc:
        order = list(raw)
        errors = sorted(exc.errors(), key=lambda e: _position(e, order))
        raise ConfigError(*(_problem(error, source) for error in errors)) from None
    base = base_dir or Path.cwd()
    relative: dict[str, Any] = {
        key: base / value
        for key, value in dataclasses.asdict(config).items()
        if isinstance(value, Path) and not value.is_absolute()
    }
    if config.force:
        warnings.append(f"{source}: 'force' is a legacy key with no effect in this version")
    return LoadedConfig(config=dataclasses.replace(config, **relative), warnings=warnings)


def parse_command(value: Any, where: str) -> tuple[str, ...]:
    """A container command from YAML: a list of arguments, or one string split as a shell would.

    Raises ``ConfigError`` naming ``where`` (a file and key) when it is neither.
    """
    try:
        return command_words(value)
    except ValueError as exc:
        raise ConfigError(f"{where} {exc}") from None


def _unknown(key: str, source: str) -> str:
    close = difflib.get_close_matches(key, DECLARED, n=1, cutoff=0.75)
    hint = f"did you mean '{close[0]}'?" if close else "check its spelling"
    return f"{source}: unknown key '{key}' is ignored ({hint})"


def _given(key: str, value: Any) -> bool:
    """False for a value that means "not set": null or '' for a required key, null for text.

    ``null`` is a value of its own for a key that takes it (``memory: null``
    removes the limit); for other text keys it leaves the default, as YAML's
    empty ``key:`` reads.
    """
    info = DECLARED[key]
    if info.is_required():
        return value not in (None, "")
    if value is not None:
        return True
    annotation = info.annotation
    takes_null = type(None) in get_args(annotation)
    return takes_null or not (annotation is str or get_origin(annotation) is Literal)


def _position(error: ErrorDetails, order: list[Any]) -> int:
    """Problems in the order of the file, then missing keys, then those about several keys."""
    key = error["loc"][0] if error["loc"] else None
    if key in order:
        return order.index(key)
    return len(order) if key is not None else len(order) + 1


#: pydantic's error types -> the text after 'key' (input: what the file holds).
_MESSAGES = {
    "int_type": "must be a whole number, got {input!r}",
    "bool_type": "must be true or false, got {input!r}",
    "string_type": "must be text, got {input!r}",
    "greater_than_equal": "must be at least {ge}, got {input!r}",
    "less_than_equal": "must be at most {le}, got {input!r}",
}


def _problem(error: ErrorDetails, source: str) -> str:
    if not error["loc"]:  # a rule about several keys, whose message names them
        return f"{source}: {error['msg']}"
    key = str(error["loc"][0])
    kind, value, context = error["type"], error["input"], error.get("ctx", {})
    if kind == "missing":
        return f"{source}: '{key}' is required ({DECLARED[key].description})"
    if key in SECRET_KEYS:
        value = _Hidden(type(value).__name__)
    if kind == "literal_error":
        words = str(context["expected"]).replace("'", "").replace(" or ", ", ")
        return f"{source}: '{key}' must be one of {words}, got {value!r}"
    template = _MESSAGES.get(kind)
    text = template.format(input=value, **context) if template else error["msg"]
    return f"{source}: '{key}' {text}"


class _Hidden(str):
    """A secret's type name in place of its value: its repr is the bare name."""

    def __repr__(self) -> str:
        return str(self)
