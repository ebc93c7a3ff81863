"""Runs an image with lines on stdin and returns what it printed."""

from .base import Cancelled, DockerUnavailable, Execution, Executor, ImageNotAvailable, RunSpec

__all__ = [
    "Cancelled",
    "DockerUnavailable",
    "Execution",
    "Executor",
    "ImageNotAvailable",
    "RunSpec",
]
