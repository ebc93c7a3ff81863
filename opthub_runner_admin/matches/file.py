"""A local match catalogue in YAML, for runs without the OptHub API (demo, tests, offline).

The file maps each match UUID to its two images::

    3b7c0b1e-0000-4000-8000-000000000001:
      problem:
        image: opthub/sphere:latest
        environment: {SPHERE_DIM: 2}
      indicator:
        image: opthub/best:latest
        command: [--reference, "1.0,1.0"]   # optional: a list, or a string split like a shell

An image's ``command`` wins over the ``command`` key of ``config.yml``.

The whole file is validated when it is loaded, so that a typo stops the runner
at start with one line naming the file, the match and the key, instead of
failing one job at a time hours later. Environment values are turned into
strings (``2`` -> ``"2"``, ``true`` -> ``"true"``) because that is all a
container's environment can carry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError
from ..model import bare_match_id
from ..settings.kinds import parse_command
from ..settings.yaml_text import read_text_file, read_yaml
from .base import ImageSpec, MatchSpec, UnknownMatch

log = logging.getLogger(__name__)

#: Keys an image entry may carry; anything else is most likely a misspelt
#: ``environment`` whose variables would silently be lost.
_IMAGE_KEYS = ("image", "environment", "command")
_MATCH_KEYS = ("problem", "indicator")


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys.

    PyYAML keeps the last of two equal keys without a word; in a catalogue a
    pasted match twice would then run with whichever entry came last.
    """


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


class FileMatchSource:
    """Serves matches from a YAML catalogue read once, at construction.

    Reading at construction (not at the first lookup) is deliberate: the
    runner checks the catalogue before it takes any message.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._matches = load_catalogue(self.path)

    def get(self, match_id: str) -> MatchSpec:
        """The match ``match_id`` (bare UUID); ``UnknownMatch`` if the catalogue lacks it."""
        try:
            return self._matches[match_id]
        except KeyError:
            raise UnknownMatch(
                f"match {match_id} is not in the matches file {self.path}"
                " (add it to the catalogue and restart the runner)"
            ) from None

    def match_ids(self) -> list[str]:
        """Every match of the catalogue, for start-up logs and the demo."""
        return sorted(self._matches)


def load_catalogue(path: Path) -> dict[str, MatchSpec]:
    """Read and validate ``path``; raise ``ConfigError`` with one line naming the problem."""
    if not path.exists() and not path.is_symlink():
        raise ConfigError(f"{path}: matches file not found (check 'matches_file')")
    text = read_text_file(path, "matches file")
    return parse_catalogue(text, source=str(path))


def parse_catalogue(text: str, *, source: str = "matches file") -> dict[str, MatchSpec]:
    """Validate catalogue YAML; ``source`` names the file in error messages."""
    raw = read_yaml(text, source, _UniqueKeyLoader)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{source}: expected a mapping of match UUIDs to their problem and indicator"
        )
    if not raw:
        raise ConfigError(f"{source}: the catalogue defines no match")
    matches: dict[str, MatchSpec] = {}
    for key, entry in raw.items():
        match_id = _match_id(key, source)
        if match_id in matches:
            raise ConfigError(f"{source}: match {match_id} is listed twice")
        matches[match_id] = _match(match_id, entry, source)
    log.debug("loaded %d matches from %s", len(matches), source)
    return matches


def _match_id(key: Any, source: str) -> str:
    if isinstance(key, bool) or not isinstance(key, (str, int)):
        raise ConfigError(f"{source}: match id {key!r} must be text (the match UUID)")
    # An id copied from the table carries its prefix; matches are looked up without it.
    match_id = bare_match_id(str(key).strip())
    if not match_id:
        raise ConfigError(f"{source}: a match id is empty")
    return match_id


def _match(match_id: str, entry: Any, source: str) -> MatchSpec:
    where = f"{source}: match {match_id}"
    if not isinstance(entry, Mapping):
        raise ConfigError(f"{where}: expected a mapping with 'problem' and 'indicator'")
    _reject_unknown(entry, _MATCH_KEYS, where)
    return MatchSpec(
        match_id=match_id,
        problem=_image(entry, "problem", where),
        indicator=_image(entry, "indicator", where),
    )


def _image(entry: Mapping[Any, Any], role: str, where: str) -> ImageSpec:
    if role not in entry:
        raise ConfigError(f"{where}: '{role}' is required (its image and environment)")
    spec = entry[role]
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: '{role}' must be a mapping with 'image' and 'environment'")
    _reject_unknown(spec, _IMAGE_KEYS, f"{where}: '{role}'")
    image = spec.get("image")
    if not isinstance(image, str) or not image.strip():
        raise ConfigError(f"{where}: '{role}.image' must be a Docker image name, got {image!r}")
    command = spec.get("command")
    return ImageSpec(
        image=image.strip(),
        environment=_environment(spec.get("environment"), f"{role}.environment", where),
        command=None if command is None else parse_command(command, f"{where}: '{role}.command'"),
    )


def _environment(raw: Any, key: str, where: str) -> dict[str, str]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: '{key}' must be a mapping of variable names to values")
    environment: dict[str, str] = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not name or "=" in name:
            raise ConfigError(f"{where}: '{key}' has an invalid variable name {name!r}")
        environment[name] = _env_value(value, f"{key}.{name}", where)
    return environment


def _env_value(value: Any, key: str, where: str) -> str:
    # Values are not echoed back: the environment may hold the match's secrets.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    if value is None:
        raise ConfigError(f"{where}: '{key}' has no value (write '' for an empty string)")
    raise ConfigError(f"{where}: '{key}' must be text or a number, got a {type(value).__name__}")


def _reject_unknown(mapping: Mapping[Any, Any], known: tuple[str, ...], where: str) -> None:
    for key in mapping:
        if key not in known:
            expected = ", ".join(f"'{k}'" for k in known)
            raise ConfigError(f"{where}: unknown key {key!r} (expected {expected})")
