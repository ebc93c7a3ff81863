"""Reading the operator's ``config.yml``: once, at start, every problem in one line each.

Errors name the file and the key in one line per problem, because the
operator reading them is usually in a tmux pane on a remote machine, not in a
debugger. A secret's value is never echoed back.
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..errors import ConfigError
from ..settings.yaml_text import read_text_file, read_yaml
from .schema import DECLARED, SECRET_KEYS, Config


@dataclasses.dataclass(frozen=True)
class LoadedConfig:
    config: Config
    warnings: list[str]


def load_config(path: str | Path) -> LoadedConfig:
    """Read and validate ``path``; raise ``ConfigError`` naming every problem, one per line."""
    path = Path(path)
    if not path.exists() and not path.is_symlink():
        raise ConfigError(
            f"{path}: configuration file not found (copy config.default.yml and fill it in,"
            " or pass --config)"
        )
    text = read_text_file(path, "configuration file")
    return parse_config(text, source=str(path), base_dir=path.parent)


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
