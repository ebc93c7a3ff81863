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


def check_runtime(client: docker.DockerClient, runtime: str | None) -> None:
    """Refuse to start with a ``runtime`` the daemon does not know (one line naming it).

    Docker would otherwise reject every container, one job at a time.
    """
    if runtime is None:
        return
    try:
        known = sorted((client.api.info().get("Runtimes") or {}).keys())
    except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
        raise FatalError(f"{_CONNECT_MESSAGE} ({' '.join(str(exc).split())})") from exc
    if runtime not in known:
        raise FatalError(
            f"runtime {runtime!r} is not registered with this Docker daemon (it knows"
            f" {', '.join(known) or 'none'}): register it in /etc/docker/daemon.json"
            " ('runtimes') and restart Docker, or remove 'runtime' from the configuration"
        )
