"""The Docker executor, one concern a module.

``executor`` runs one job's container, ``supervision`` from its start to its
exit; ``own_containers`` removes what this runner made; ``images`` makes
sure the image is there; ``streams`` serves the attach stream; ``errors``
turns Docker's errors into the seam's, without secrets; ``reaping`` removes
what a crashed runner left behind; ``connection`` connects at start-up.
"""

from .connection import check_runtime, connect_docker
from .executor import DockerExecutor
from .images import ImagePolicy
from .reaping import (
    LABEL_HOST,
    LABEL_INSTANCE,
    LABEL_KEEP,
    LABEL_PID,
    LABEL_PID_NAMESPACE,
    LABEL_QUEUE,
    LABEL_RUNNER,
    LABEL_TABLE,
    remove_orphans,
    runner_labels,
    scope_labels,
)

__all__ = [
    "LABEL_HOST",
    "LABEL_INSTANCE",
    "LABEL_KEEP",
    "LABEL_PID",
    "LABEL_PID_NAMESPACE",
    "LABEL_QUEUE",
    "LABEL_RUNNER",
    "LABEL_TABLE",
    "DockerExecutor",
    "ImagePolicy",
    "check_runtime",
    "connect_docker",
    "remove_orphans",
    "runner_labels",
    "scope_labels",
]
