"""The kinds of value a config key may hold beyond whole numbers, booleans and text.

Each part of the runner declares the keys it reads as one frozen pydantic
dataclass (``@dataclass(config=KEYS, kw_only=True, frozen=True)``) whose fields
carry type, default, bounds and a one-line description; ``config/schema.py`` joins
them into the operator's ``Config`` (``config/schema.py``). The kinds here validate YAML values that
pydantic has no type for (``512m``, a user as ``docker run --user`` takes it,
a command as a shell would split it) and describe them in the JSON Schema, so
that the validation, the schema and the documentation come from one place.
Their messages are the text after ``'key'`` in the operator's one-line error.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic_core import CoreSchema, PydanticCustomError, core_schema

from ..errors import ConfigError
from .sizes import format_size, parse_size

#: One setting for every section: YAML's types are taken as they are ("2" is not 2).
KEYS = ConfigDict(strict=True)

#: A size as YAML gives it: bytes, or Docker's binary units.
SIZE_PATTERN = r"^\s*[0-9]+\s*[bkmgtBKMGT]?([iI]?[bB])?\s*$"


def refuse(message: str) -> PydanticCustomError:
    """The error for a value of the wrong form; ``message`` follows the key's name."""
    return PydanticCustomError("config", "{message}", {"message": message})


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class Rule:
    """A value kind with its own check and schema; ``kind`` names it in the docs table."""

    kind: str = ""

    def describe(self) -> str:
        """The kind as the docs table's type column shows it."""
        return self.kind

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def schema(self) -> dict[str, Any]:
        raise NotImplementedError

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(self.check)

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> dict[str, Any]:
        return self.schema()


@dataclass(frozen=True)
class Size(Rule):
    """Bytes, or text such as ``512m`` (Docker's binary units); at least ``minimum``."""

    kind: str = "size"
    minimum: int = 0
    #: Docker's "unlimited" (memory_swap: -1) is accepted as is.
    unlimited: bool = False

    def check(self, value: Any) -> int:
        if self.unlimited and value == -1 and not isinstance(value, bool):
            return -1
        try:
            size = parse_size(value) if isinstance(value, (int, str)) else -1
        except ValueError:
            size = -1
        if size < 0:
            raise refuse(f"must be a size in bytes or such as 512m or 2g, got {value!r}")
        if size < self.minimum:
            bare = " (a number without a unit is bytes: 100m is 100 MiB)" if _is_int(value) else ""
            raise refuse(
                f"must be at least {format_size(self.minimum)} ({self.minimum} bytes),"
                f" got {value!r}{bare}"
            )
        return size

    def schema(self) -> dict[str, Any]:
        number: dict[str, Any] = {"type": "integer", "minimum": self.minimum}
        sizes = [number, {"type": "string", "pattern": SIZE_PATTERN}]
        if self.unlimited:
            sizes.append({"const": -1})
        return {"anyOf": sizes}


@dataclass(frozen=True)
class Limit(Rule):
    """A whole number of at least ``minimum`` whose ``null`` removes the limit."""

    kind: str = "int"
    minimum: int = 1

    def describe(self) -> str:
        return f"int ≥ {self.minimum}"

    def check(self, value: Any) -> int:
        if not _is_int(value) or value < self.minimum:
            raise refuse(
                f"must be a whole number of at least {self.minimum}"
                f" (or null for no limit), got {value!r}"
            )
        return int(value)

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum}


@dataclass(frozen=True)
class Cpus(Rule):
    """A number of CPUs above 0, such as 1.5."""

    kind: str = "number"

    def check(self, value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise refuse(f"must be a number of CPUs above 0 such as 1.5, got {value!r}")
        return float(value)

    def schema(self) -> dict[str, Any]:
        return {"type": "number", "exclusiveMinimum": 0}


@dataclass(frozen=True)
class DockerUser(Rule):
    """A user as ``docker run --user`` takes it: name, uid or uid:gid."""

    kind: str = "str"

    def check(self, value: Any) -> str:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or str(value) == "":
            raise refuse(
                "must be a user as docker run --user takes it"
                f" (name, uid or uid:gid), got {value!r}"
            )
        return str(value)

    def schema(self) -> dict[str, Any]:
        return {"type": ["string", "integer"]}


@dataclass(frozen=True)
class Capabilities(Rule):
    """A list of Linux capability names, upper-cased as Docker wants them."""

    kind: str = "list"

    def check(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(cap, str) and cap for cap in value
        ):
            raise refuse(
                f"must be a list of capability names such as [CHOWN], got {_shown(value)!r}"
            )
        return tuple(cap.upper() for cap in value)

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string", "minLength": 1}}


@dataclass(frozen=True)
class Gpus(Rule):
    """``all``, or a list of GPU device ids or UUIDs."""

    kind: str = "`all` or list"

    def check(self, value: Any) -> str | tuple[str, ...]:
        if value == "all":
            return "all"
        if (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(d, (int, str)) and not isinstance(d, bool) for d in value)
        ):
            return tuple(str(device) for device in value)
        raise refuse(f"must be all or a list of GPU device ids such as [0, 1], got {value!r}")

    def schema(self) -> dict[str, Any]:
        device = {"type": ["string", "integer"]}
        return {"anyOf": [{"const": "all"}, {"type": "array", "items": device, "minItems": 1}]}


def command_words(value: Any) -> tuple[str, ...]:
    """A container command: a list of arguments, or one string split as a shell would.

    Raises ``ValueError`` with the text that follows the key's name.
    """
    if isinstance(value, str):
        try:
            words = shlex.split(value)
        except ValueError as exc:
            raise ValueError(f"cannot be split into arguments ({exc})") from None
    elif isinstance(value, (list, tuple)) and all(
        isinstance(w, (str, int, float)) and not isinstance(w, bool) for w in value
    ):
        words = [str(w) for w in value]
    else:
        raise ValueError("must be a list of arguments or a string")
    if not words:
        raise ValueError("is empty (leave it out to use the image's own command)")
    return tuple(words)


@dataclass(frozen=True)
class Command(Rule):
    """Arguments after the image's entrypoint: a list, or a string split as a shell would."""

    kind: str = "list or str"

    def check(self, value: Any) -> tuple[str, ...]:
        try:
            return command_words(value)
        except ValueError as exc:
            raise refuse(str(exc)) from None

    def schema(self) -> dict[str, Any]:
        word = {"type": ["string", "number"]}
        listed = {"type": "array", "items": word, "minItems": 1}
        return {"anyOf": [listed, {"type": "string", "minLength": 1}]}


@dataclass(frozen=True)
class FilePath(Rule):
    """A path; ``~`` is expanded, a relative one is taken from the config file's folder."""

    kind: str = "path"

    def check(self, value: Any) -> Path:
        if isinstance(value, Path):
            return value
        if not isinstance(value, str) or not value:
            raise refuse(f"must be a path, got {value!r}")
        return Path(value).expanduser()

    def schema(self) -> dict[str, Any]:
        return {"type": "string", "minLength": 1}


def _shown(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def parse_command(value: Any, where: str) -> tuple[str, ...]:
    """A container command from YAML: a list of arguments, or one string split as a shell would.

    Raises ``ConfigError`` naming ``where`` (a file and key) when it is neither.
    """
    try:
        return command_words(value)
    except ValueError as exc:
        raise ConfigError(f"{where} {exc}") from None
