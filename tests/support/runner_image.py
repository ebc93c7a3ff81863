"""The repository's ``Dockerfile`` built for the suite, from a local Python base and no index.

No registry is reachable here, so the base is the suite's own: a Debian
bookworm tree made by ``mmdebstrap`` (essential packages, ``python3``,
``python3-venv``, ``passwd``) and imported as an image. The package's
dependencies come as wheels downloaded on this machine for the base's Python
into the build context's ``wheelhouse/``, and the build installs from there
alone (``--no-index``). The context holds what the repository's
``.dockerignore`` lets through, so a file it forgets shows up here.

Both images are tagged under ``opthub-test/`` with the session's mark and
removed at the session's end, like the suite's other images. Locally the
fixture skips without ``mmdebstrap`` (``scripts/setup.sh`` installs it); in
CI it fails.
"""

from __future__ import annotations

import importlib.metadata
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import docker
import docker.utils.build
import pytest

from tests.support.docker_fixtures import TEST_IMAGE_PREFIX, remove_tags, session_tag

REPO = Path(__file__).resolve().parents[2]
#: The Debian suite of the base and its Python (``python3`` of bookworm is 3.11).
SUITE = "bookworm"
PYTHON_VERSION = "3.11"
#: glibc of bookworm is 2.36: every manylinux wheel up to it runs there.
MANYLINUX = [f"manylinux_2_{minor}_x86_64" for minor in (17, 24, 27, 28, 31, 34, 35, 36)]
#: What the package's own build needs (pyproject.toml's build-system).
BUILD_REQUIREMENTS = ["setuptools>=77"]


@dataclass(frozen=True)
class RunnerImage:
    tag: str
    #: Seconds each step took, for the CI time budget (printed with -s).
    timings: dict[str, float]


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"the runner image is required in CI: {reason}")
    pytest.skip(f"the runner image cannot be built here: {reason}")


def runtime_requirements() -> list[str]:
    """The package's dependencies as installed here, without the extras."""
    declared = importlib.metadata.requires("opthub-runner-admin") or []
    return [req for req in declared if "extra ==" not in req]


def build_base(client: docker.DockerClient, tag: str, workdir: Path) -> None:
    """A bookworm tree with Python, imported as ``tag``."""
    if shutil.which("mmdebstrap") is None:
        _unavailable("mmdebstrap is not installed (scripts/setup.sh installs it)")
    tree = workdir / "base.tar"
    excluded = [f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "locale")]
    command = [
        "mmdebstrap",
        "--quiet",
        "--variant=essential",
        "--include=python3,python3-venv,passwd",
        *excluded,
        SUITE,
        str(tree),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        _unavailable(f"mmdebstrap failed: {done.stderr.strip()[-500:]}")
    repository, _, version = tag.rpartition(":")
    with tree.open("rb") as data:
        client.api.import_image_from_data(data.read(), repository=repository, tag=version)


def download_wheels(directory: Path) -> None:
    """The dependencies' wheels for the base's Python and glibc, into ``directory``."""
    platforms = [arg for name in MANYLINUX for arg in ("--platform", name)]
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--quiet",
        "--only-binary=:all:",
        f"--python-version={PYTHON_VERSION}",
        "--implementation=cp",
        *platforms,
        "--platform=manylinux2014_x86_64",
        "--dest",
        str(directory),
        *runtime_requirements(),
        *BUILD_REQUIREMENTS,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:
        _unavailable(f"pip download failed: {done.stderr.strip()[-500:]}")


def build_context(wheelhouse: Path) -> bytes:
    """The repository as ``.dockerignore`` lets it into a build, plus ``wheelhouse/``."""
    patterns = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    included = sorted(docker.utils.build.exclude_paths(str(REPO), patterns))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name in included:
            path = REPO / name
            if path.is_file() and not name.startswith("wheelhouse"):
                tar.add(path, arcname=name, recursive=False)
        for wheel in sorted(wheelhouse.iterdir()):
            tar.add(wheel, arcname=f"wheelhouse/{wheel.name}")
    return buffer.getvalue()


def build_runner(client: docker.DockerClient, tag: str, base: str, context: bytes) -> None:
    options = "--no-index --find-links /tmp/src/wheelhouse"
    try:
        client.images.build(
            fileobj=io.BytesIO(context),
            custom_context=True,
            tag=tag,
            buildargs={"BASE": base, "PIP_INSTALL_OPTIONS": options},
            rm=True,
            forcerm=True,
        )
    except docker.errors.BuildError as exc:
        lines = [str(part.get("stream", "")) for part in exc.build_log]
        raise AssertionError("the Dockerfile did not build:\n" + "".join(lines)[-3000:]) from exc


def _seconds(start: float) -> float:
    return round(time.monotonic() - start, 1)


@pytest.fixture(scope="session")
def runner_image(docker_client: docker.DockerClient) -> Iterator[RunnerImage]:
    """The runner's image, built once per session from the repository's Dockerfile."""
    base = session_tag(f"{TEST_IMAGE_PREFIX}python-base:{SUITE}")
    runner = session_tag(f"{TEST_IMAGE_PREFIX}runner:latest")
    timings: dict[str, float] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="opthub-runner-image-") as scratch:
            workdir = Path(scratch)
            start = time.monotonic()
            build_base(docker_client, base, workdir)
            timings["base"] = _seconds(start)
            start = time.monotonic()
            (workdir / "wheelhouse").mkdir()
            download_wheels(workdir / "wheelhouse")
            timings["wheels"] = _seconds(start)
            start = time.monotonic()
            build_runner(docker_client, runner, base, build_context(workdir / "wheelhouse"))
            timings["build"] = _seconds(start)
        yield RunnerImage(tag=runner, timings=timings)
    finally:
        remove_tags(docker_client, [runner, base])
