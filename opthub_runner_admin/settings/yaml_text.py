"""YAML as the runner reads it: safely, bounded, and every problem as one line naming the file.

``config.yml`` and the matches file are both read this way. Whatever the
file holds (bytes that are not UTF-8, binary, a YAML "bomb" of anchors that
expands to billions of values, nesting thousands deep, a value that refers to
itself), the reader ends in a value of bounded size or in one ``ConfigError``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

#: The largest file read: a config is a few kilobytes, a catalogue of matches a few hundred.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Nesting deeper than this is no configuration (and would exhaust Python's recursion).
MAX_DEPTH = 64
#: Values once every alias is expanded: what validation and error messages may walk.
MAX_VALUES = 200_000


def read_text_file(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``; a missing, unreadable, huge or non-UTF-8 file is one line."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    if len(data) > MAX_FILE_BYTES:
        raise ConfigError(
            f"{path}: the {what} is over {MAX_FILE_BYTES // (1024 * 1024)} MiB:"
            " is it the right file?"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{path} line {line}: the {what} is not UTF-8 text (byte 0x{data[exc.start]:02x}):"
            " save it as UTF-8 (a comment in Shift_JIS is enough to break it)"
        ) from None


class _TooComplex(yaml.YAMLError):
    def __init__(self, problem: str, mark: yaml.Mark | None) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark


class BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses nesting deeper than ``MAX_DEPTH`` while composing."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                event = self.peek_event()  # type: ignore[no-untyped-call]
                raise _TooComplex(
                    f"nested deeper than {MAX_DEPTH} levels", event.start_mark if event else None
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_yaml(text: str, source: str, loader: type[yaml.SafeLoader] = BoundedLoader) -> Any:
    """Parse YAML (safely: no Python objects); each problem in one line naming ``source``."""
    bounded = loader if issubclass(loader, BoundedLoader) else _bounded(loader)
    try:
        value = yaml.load(text, Loader=bounded)  # a SafeLoader (sub)class: no Python objects
    except _TooComplex as exc:
        raise ConfigError(f"{source}{_where(exc)}: {exc.problem}") from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError(
            f"{source}: holds a character YAML does not allow (code {exc.character!r}):"
            " is it a text file?"
        ) from None
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(f"{source}{_where(exc)}: YAML syntax error: {problem}") from None
    except RecursionError:  # a loader subclass of the caller's, composed without the bound
        raise ConfigError(f"{source}: nested too deep") from None
    problem = _size_problem(value)
    if problem is not None:
        raise ConfigError(f"{source}: {problem}")
    return value


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" line {mark.line + 1}" if mark is not None else ""


def _bounded(loader: type[yaml.SafeLoader]) -> type[yaml.SafeLoader]:
    return type(f"Bounded{loader.__name__}", (BoundedLoader, loader), {})


def _size_problem(value: Any) -> str | None:
    """Why ``value`` is too big to walk once its aliases are expanded, or None.

    Aliases make the loaded value a graph: sizes are summed over it with each
    shared node counted once per use (what a walk would visit), memoised per
    node so that the count itself stays linear; a node inside itself is refused.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack: list[tuple[Any, bool]] = [(value, False)]
    while stack:
        node, children_done = stack.pop()
        if not isinstance(node, (list, dict)):
            continue
        key = id(node)
        children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
        if children_done:
            total = 1 + sum(sizes.get(id(c), 1) for c in children)
            sizes[key] = total
            open_nodes.discard(key)
            if total > MAX_VALUES:
                return f"holds over {MAX_VALUES} values once its anchors are expanded"
            continue
        if key in sizes:
            continue
        if key in open_nodes:
            return "a value refers to itself (an anchor used inside its own value)"
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((child, False) for child in children)
    return None
