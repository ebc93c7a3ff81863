"""Connecting to the Docker daemon, once, at start-up."""

from __future__ import annotations

import docker
import docker.errors
import requests

from ...errors import FatalError

_CONNECT_MESSAGE = (
    "Unable to communicate with Docker. Please ensure Docker is running and accessible."
)
_PERMISSION_HINT = (
    " If the socket's permission is denied, add the user to the docker group"
    " (sudo usermod -aG docker $USER) and log in again."
)


def connect_docker(base_url: str | None = None) -> docker.DockerClient:
    """A client for the local Docker daemon (or ``base_url``), checked with a ping.

    Raises a ``FatalError`` with the one line the published README documents,
    because without Docker the runner can do nothing useful.
    """
    try:
        client = docker.from_env() if base_url is None else docker.DockerClient(base_url=base_url)
        client.ping()
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        reason = " ".join(str(exc).split())
        hint = _PERMISSION_HINT if "permission denied" in reason.lower() else ""
        raise FatalError(f"{_CONNECT_MESSAGE} ({reason}){hint}") from exc
    return client
