"""Every key of the operator's ``config.yml``, joined from the parts that declare them.

Every key is declared once, with its type, default, bounds and description,
next to the part that reads it (``*/keys.py`` and ``ContainerLimits``);
``Config`` joins them, so that the validation (``loading``), the JSON Schema
and the documentation table (``docs``) all follow the declarations. Operators
already hold a ``config.yml`` for the earlier implementation; every key it knew
keeps its meaning.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from pydantic import Field
from pydantic.dataclasses import dataclass
from pydantic.fields import FieldInfo

from ..auth.endpoints import ApiKeys
from ..aws.keys import AwsKeys
from ..errors import ConfigError
from ..executor.keys import DockerKeys
from ..executor.limits import ContainerLimits
from ..fleet.keys import FleetKeys
from ..jobs.keys import JobKeys
from ..matches.keys import MatchKeys
from ..model import RunnerScope
from ..observe.keys import ObserveKeys
from ..settings.kinds import KEYS
from ..worker.keys import WorkerKeys

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
    FleetKeys,
)


# The bases in the reverse order of SECTIONS: a dataclass takes its bases' fields last first.
@dataclass(config=KEYS, kw_only=True, frozen=True)
class Config(
    FleetKeys,
    ApiKeys,
    MatchKeys,
    ObserveKeys,
    ContainerLimits,
    DockerKeys,
    JobKeys,
    WorkerKeys,
    AwsKeys,
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


def scope_of(mode: str, config: Config) -> RunnerScope:
    """The scope of the ``mode`` runner of ``config`` (ConfigError if its queue is unset)."""
    return RunnerScope(queue_url=config.queue_url(mode), table_name=config.table_name)
