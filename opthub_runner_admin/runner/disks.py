"""The disks a runner fills, found from its Docker client: watched while it runs, and by doctor."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Protocol

import docker

from ..executor.docker.data_root import docker_data_root
from ..executor.docker.image_cleanup import ImageCleanup, PulledImages
from ..host.disk import disk_space, gib
from ..host.pidfiles import state_dir
from ..observe.disk import DiskWatch
from ..observe.events import JobEvents

#: The record of the images the runners of this host pulled, in their state folder.
PULLED_IMAGES = "pulled-images.json"


class _CleanupKeys(Protocol):
    @property
    def image_cleanup_after(self) -> int | None: ...


def disk_paths(client: docker.DockerClient) -> dict[str, Path]:
    """``docker``: the daemon's data root when it is local; ``state``: the runner's own folder."""
    paths: dict[str, Path] = {}
    root = docker_data_root(client)
    if root is not None:
        paths["docker"] = root
    paths["state"] = state_dir()
    return paths


def watch_disks(
    client: docker.DockerClient, events: JobEvents, warn_below: int, resources: ExitStack
) -> DiskWatch:
    """Start the disk watch of a running runner; it stops when ``resources`` closes."""
    watch = DiskWatch(paths=disk_paths(client), events=events, warn_below=warn_below)
    watch.start()
    resources.callback(watch.stop)
    return watch


def disk_report(paths: Mapping[str, Path], warn_below: int) -> tuple[bool, str]:
    """For ``doctor``: whether every disk has at least ``warn_below`` free, and one line."""
    parts: list[str] = []
    ok = True
    for name, path in paths.items():
        space = disk_space(name, path)
        if space is None:
            parts.append(f"{name} ({path}): cannot be read")
            continue
        low = space.free < warn_below
        ok = ok and not low
        parts.append(space.describe() + (f" (under {gib(warn_below)})" if low else ""))
    return ok, "; ".join(parts)


def image_cleanup(
    config: _CleanupKeys,
    client: docker.DockerClient,
    on_removed: Callable[[str], None] | None = None,
) -> ImageCleanup | None:
    """The image clean-up of ``image_cleanup_after``, or None when it is not set."""
    if config.image_cleanup_after is None:
        return None
    return ImageCleanup(
        api=client.api,
        record=PulledImages(path=state_dir() / PULLED_IMAGES),
        after=float(config.image_cleanup_after),
        on_removed=on_removed,
    )


def host_disk_lines(warn_below: int) -> list[str]:
    """``status``: this host's disks (Docker's data root when Docker answers, the state folder)."""
    from ..errors import RunnerError
    from ..executor.docker import connect_docker

    try:
        paths = disk_paths(connect_docker())
    except RunnerError:
        paths = {"state": state_dir()}
    lines = ["", "disks of this host:"]
    for name, path in paths.items():
        space = disk_space(name, path)
        if space is None:
            lines.append(f"  {name} ({path}): cannot be read")
            continue
        low = f" (under disk_warning_below, {gib(warn_below)})" if space.free < warn_below else ""
        lines.append(f"  {space.describe()}{low}")
    if "docker" not in paths:
        lines.append("  docker: not on this host, or Docker does not answer")
    return lines
