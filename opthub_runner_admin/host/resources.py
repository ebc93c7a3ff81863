"""This machine's memory and cores, for what the trials' figures suggest."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class HostResources:
    """Bytes of physical memory and logical cores (None where the system does not say)."""

    memory: int | None
    cores: int | None


def this_host() -> HostResources:
    try:
        memory: int | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    return HostResources(memory=memory, cores=os.cpu_count())
