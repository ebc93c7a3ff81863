"""Fixtures of the fault suite: CLI runners in subprocesses, cleaned up after each test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from opthub_runner_admin.platform_side.runners import RunnerPool


@pytest.fixture
def runners(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[RunnerPool]:
    """Start real ``opthub-runner`` processes; survivors are killed and their containers removed."""
    pool = RunnerPool(tmp_path, docker_client)
    try:
        yield pool
    finally:
        pool.cleanup()
