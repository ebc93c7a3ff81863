"""Runs an image with lines on stdin and returns what it printed."""

from .base import (
    Cancelled,
    ContainerRejected,
    DockerUnavailable,
    Execution,
    Executor,
    ImageNotAvailable,
    RunSpec,
)
from .usage import TrialUsage

__all__ = [
    "Cancelled",
    "ContainerRejected",
    "DockerUnavailable",
    "Execution",
    "Executor",
    "ImageNotAvailable",
    "RunSpec",
    "TrialUsage",
]
