"""The containers this runner made: which are still in use, and removing the rest.

A removal can fail because the daemon is away (a ``systemctl restart
docker``) or still busy with the container: the name is kept as a leftover
and tried again by the next run and once the daemon answers. A container of
this live runner carries its pid, so ``reaping.remove_orphans`` (for a
runner that died) never takes it: what is left must be removed here. A
response lost with the daemon can leave a container this runner never learnt
the name of; the sweeps take every container with this runner's labels that
is not in use.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import docker.errors
import requests

from .errors import explanation
from .reaping import HTTP_CONFLICT, remove_own

log = logging.getLogger(__name__)


class OwnContainers:
    """Names in use and leftovers of one executor; thread-safe.

    ``labels`` are the ones every container of this runner carries;
    ``on_daemon_lost`` is told when a removal finds the daemon away.
    """

    def __init__(
        self,
        *,
        api: Any,
        labels: Mapping[str, str],
        on_daemon_lost: Callable[[BaseException], None],
    ) -> None:
        self._api = api
        self._labels = dict(labels)
        self._on_daemon_lost = on_daemon_lost
        self._lock = threading.Lock()
        # Containers whose removal failed: the next run removes them once the daemon answers.
        self._leftovers: set[str] = set()
        # Containers made and not yet handed to removal: what a sweep must spare.
        self._in_use: set[str] = set()

    def made(self, name: str) -> None:
        """``name`` is about to be created: sweeps spare it until ``released``."""
        with self._lock:
            self._in_use.add(name)

    def released(self, name: str) -> None:
        """``name`` is done with (it goes to removal, or is kept with ``rm`` off)."""
        with self._lock:
            self._in_use.discard(name)

    def in_use(self, name: str) -> bool:
        with self._lock:
            return name in self._in_use

    @property
    def any_left(self) -> bool:
        """Some removal failed and has not been done since."""
        with self._lock:
            return bool(self._leftovers)

    def remove(self, name: str) -> None:
        """Force-remove, logging (never raising) so that the original outcome survives."""
        try:
            self._api.remove_container(name, force=True)
        except docker.errors.NotFound:
            pass  # never created, or already removed
        except docker.errors.APIError as exc:
            if exc.status_code != HTTP_CONFLICT:  # a removal already in progress
                log.error("could not remove container %s: %s", name, explanation(exc))
            # Tried again by the next job and at the stop (a removal in progress ends in
            # a 404 then; a daemon just back may refuse one it is still cleaning up).
            self._keep_for_later(name)
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            log.error(
                "could not remove container %s (it will be removed when Docker answers again): %s",
                name,
                exc,
            )
            self._keep_for_later(name)
            self._on_daemon_lost(exc)

    def _keep_for_later(self, name: str) -> None:
        with self._lock:
            self._leftovers.add(name)

    def remove_leftovers(self) -> None:
        """Remove the containers that ``remove`` could not; keep those it still cannot."""
        with self._lock:
            names = sorted(self._leftovers)
        for name in names:
            try:
                self._api.remove_container(name, force=True)
            except docker.errors.NotFound:
                pass  # the daemon lost it (a restart without live-restore)
            except (requests.exceptions.RequestException, docker.errors.DockerException):
                continue  # still away or busy: next time
            log.info("removed container %s, abandoned while Docker was unreachable", name)
            with self._lock:
                self._leftovers.discard(name)

    def sweep_strays(self, *, spare_in_use: bool = True, states: tuple[str, ...] = ()) -> None:
        """Remove the containers with this runner's labels (in ``states``, if given).

        ``spare_in_use=False`` takes those in use too: right after a restart,
        whatever has exited is gone for its job whatever this runner believes.
        """
        spare: Callable[[str], bool] = self.in_use if spare_in_use else (lambda name: False)
        try:
            removed = remove_own(self._api, self._labels, spare=spare, states=states)
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            log.info("could not look for this runner's stray containers: %s", exc)
            return
        if removed:
            log.warning("removed %d containers Docker kept of this runner's jobs", len(removed))

    def remove_all(self) -> None:
        """At the runner's stop: every container with its labels, whatever state it is in."""
        try:
            removed = remove_own(self._api, self._labels)
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            log.error(
                "could not look for this runner's containers at its stop (%s): the next start"
                " removes them",
                " ".join(str(exc).split())[:300],
            )
            return
        if removed:
            log.warning("removed %d containers this runner left on Docker", len(removed))
