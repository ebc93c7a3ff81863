"""Where Docker keeps its images and containers (``docker info``'s DockerRootDir), if local."""

from __future__ import annotations

import os
from pathlib import Path

import docker
import docker.errors
import requests


def is_local(docker_host: str | None) -> bool:
    """Whether the daemon runs on this machine (its socket, not a TCP or SSH address)."""
    return not docker_host or docker_host.startswith("unix://")


def docker_data_root(client: docker.DockerClient, docker_host: str | None = None) -> Path | None:
    """The daemon's data root when it is on this machine, else None (its disk is not ours).

    ``docker_host`` defaults to ``DOCKER_HOST``, as the client read it.
    """
    host = os.environ.get("DOCKER_HOST") if docker_host is None else docker_host
    if not is_local(host):
        return None
    try:
        root = client.api.info().get("DockerRootDir")
    except (docker.errors.DockerException, requests.exceptions.RequestException):
        return None
    return Path(root) if root else None
