"""Host-level crash recovery: the labels that tie a container to its runner, and the reaper.

A runner killed with SIGKILL cannot remove its containers. Each container
carries the host name, pid namespace and pid of the runner that made it, and
the queue and table it serves; at the next start, ``remove_orphans`` removes
those of the same queue and table whose runner is gone, and only those: one
host may run several competitions, and one competition's start leaves the
others alone. A pid is judged only from the namespace it was taken in: a
runner in a container of its own (host networking gives it the host's name)
would see every live host runner's pid as dead.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import docker
import docker.errors

from ...host.processes import pid_alive, pid_namespace
from ...model import RunnerScope

log = logging.getLogger(__name__)

#: Docker's answer when a removal of the same container is already in progress.
HTTP_CONFLICT = 409

#: Label on every container a runner creates; ``remove_orphans`` filters on it.
LABEL_RUNNER = "opthub-runner"
#: Host name of the runner that created the container (pids only mean something there).
LABEL_HOST = "opthub-runner.host"
#: Pid of the runner process that created the container (dead pid = orphan).
LABEL_PID = "opthub-runner.pid"
#: Pid namespace of that runner (``pid:[...]``): its pid means something only there.
LABEL_PID_NAMESPACE = "opthub-runner.pidns"
#: Free-form id of the runner instance, for the administrator's ``docker ps --filter``.
LABEL_INSTANCE = "opthub-runner.instance"
#: "1" on containers created with ``rm: false``: kept on purpose, never reaped.
LABEL_KEEP = "opthub-runner.keep"
#: "true" on containers started ahead of their job (``warm``): a job may or may not take them.
LABEL_WARM = "opthub-runner.warm"
#: The SQS queue URL the runner that created the container receives from.
LABEL_QUEUE = "opthub-runner.queue"
#: The DynamoDB table the runner that created the container writes.
LABEL_TABLE = "opthub-runner.table"


def runner_labels(instance_id: str) -> dict[str, str]:
    """Labels that tie a container to this runner process, for crash recovery."""
    labels = {
        LABEL_RUNNER: "1",
        LABEL_HOST: socket.gethostname(),
        LABEL_PID: str(os.getpid()),
        LABEL_INSTANCE: instance_id,
    }
    namespace = pid_namespace()
    if namespace is not None:
        labels[LABEL_PID_NAMESPACE] = namespace
    return labels


def scope_labels(scope: RunnerScope) -> dict[str, str]:
    """Labels that tie a container to the queue and table of its runner."""
    return {LABEL_QUEUE: scope.queue_url, LABEL_TABLE: scope.table_name}


def remove_orphans(
    client: docker.DockerClient,
    *,
    scope: RunnerScope | None = None,
    alive: Callable[[int], bool] = pid_alive,
) -> list[str]:
    """Remove containers that a runner on THIS host left behind when it died.

    Only containers labelled by a runner on this host are considered, only
    those of ``scope`` (None: of any queue and table), only those meant to be
    removed (not kept by ``rm: false``), and only when their runner's pid is
    no longer alive: a live runner's containers, other competitions' and
    other hosts' containers (sharing a remote daemon) are never touched. A
    container without the queue label (made by an earlier version) counts as
    in scope, so that an upgrade does not leave its orphans for ever. A pid
    reused by an unrelated process makes us keep the container until that
    process ends, which errs on the safe side.

    A container made in another pid namespace than this process's is kept
    too, whatever its pid: that pid names another process here, or none.
    Only a runner of that namespace may reap it (a host's runners share one
    but those in containers of their own). One without the namespace label
    (an earlier version's) is judged by its pid, as before. Returns the
    removed ids.
    """
    ours = pid_namespace()
    host_filter = {"label": [f"{LABEL_RUNNER}=1", f"{LABEL_HOST}={socket.gethostname()}"]}
    removed: list[str] = []
    for info in client.api.containers(all=True, filters=host_filter):
        container_id = str(info["Id"])
        labels = info.get("Labels") or {}
        if labels.get(LABEL_PID_NAMESPACE, ours) != ours:
            continue  # its pid cannot be judged from here
        pid = _parse_pid(labels.get(LABEL_PID))
        if pid is None or pid == os.getpid() or alive(pid) or labels.get(LABEL_KEEP) == "1":
            continue  # a kept container (rm: false) stays for ``docker logs``
        if scope is not None and not _in_scope(labels, scope):
            continue  # another competition's: its own runner reaps it
        try:
            client.api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            continue  # gone meanwhile
        except docker.errors.APIError as exc:
            if exc.status_code == HTTP_CONFLICT:
                continue  # another runner starting on this host is removing it right now
            raise
        log.warning("removed container %s left behind by dead runner pid %s", container_id, pid)
        removed.append(container_id)
    return removed


def remove_own(
    api: Any,
    labels: Mapping[str, str],
    spare: Callable[[str], bool] = lambda name: False,
    states: Sequence[str] = (),
) -> list[str]:
    """Remove every container made with ``labels`` (its instance and pid), but kept ones.

    ``spare(name)`` keeps the containers still in use (a job's, one started ahead);
    ``states`` (e.g. ``exited``) takes only containers in those states.

    The runner's last sweep at its stop: whatever a lost answer of Docker
    left (a removal that failed while the daemon restarted, a container
    created as the connection broke) is found by its labels, not by name.
    Without an instance label nothing is removed. Returns the removed ids.
    """
    instance, pid = labels.get(LABEL_INSTANCE), labels.get(LABEL_PID)
    if not instance or not pid:
        return []
    wanted = [f"{LABEL_INSTANCE}={instance}", f"{LABEL_PID}={pid}", f"{LABEL_KEEP}=0"]
    removed: list[str] = []
    filters: dict[str, Any] = {"label": wanted}
    if states:
        filters["status"] = list(states)
    for info in api.containers(all=True, filters=filters):
        container_id = str(info["Id"])
        if any(spare(str(name).lstrip("/")) for name in info.get("Names") or []):
            continue
        try:
            api.remove_container(container_id, force=True)
        except docker.errors.NotFound:
            continue
        except docker.errors.APIError as exc:
            if exc.status_code == HTTP_CONFLICT:
                continue  # its removal is already in progress
            raise
        removed.append(container_id)
    return removed


def _in_scope(labels: dict[str, str], scope: RunnerScope) -> bool:
    if LABEL_QUEUE not in labels:
        return True  # an earlier version's container: no scope to compare
    return (
        labels.get(LABEL_QUEUE) == scope.queue_url and labels.get(LABEL_TABLE) == scope.table_name
    )


def _parse_pid(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None
