"""Connecting to the Docker daemon, once, at start-up."""

from __future__ import annotations

import docker
import docker.errors
import requests

from ...errors import ConfigError, FatalError

_CONNECT_MESSAGE = (
    "Unable to communicate with Docker. Please ensure Docker is running and accessible."
)
_PERMISSION_HINT = (
    " If the socket's permission is denied, add the user to the docker group"
    " (sudo usermod -aG docker $USER) and log in again."
)


#: Connections per job in the pool of a URL that every job calls at once (the
#: image's inspect needs about one: see ``pool_size``); three leaves room.
CONNECTIONS_PER_JOB = 3
#: The background remover, image pulls and look-ups.
SHARED_CONNECTIONS = 4


def pool_size(workers: int) -> int:
    """docker-py's connection pool for ``workers`` concurrent jobs.

    docker-py keeps one pool of this size per request URL, so a container's
    own calls never share one; what concurrent jobs of a match share is the
    image's inspect, about one connection per job. A pool smaller than that
    makes urllib3 close the extra connections and warn "Connection pool is
    full" (tests/docker/test_docker_connection_pool.py); the margin here is generous.
    """
    return max(10, CONNECTIONS_PER_JOB * workers + SHARED_CONNECTIONS)


def connect_docker(base_url: str | None = None, *, workers: int = 1) -> docker.DockerClient:
    """A client for the local Docker daemon (or ``base_url``), checked with a ping.

    Raises a ``FatalError`` with the one line the published README documents,
    because without Docker the runner can do nothing useful.
    """
    size = pool_size(workers)
    try:
        client = (
            docker.from_env(max_pool_size=size)
            if base_url is None
            else docker.DockerClient(base_url=base_url, max_pool_size=size)
        )
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
    if runtime not in known:  # a config a restart cannot mend: EX_CONFIG
        raise ConfigError(
            f"runtime {runtime!r} is not registered with this Docker daemon (it knows"
            f" {', '.join(known) or 'none'}): register it in /etc/docker/daemon.json"
            " ('runtimes') and restart Docker, or remove 'runtime' from the configuration"
        )
