"""``opthub-runner demo`` as an operator runs it first: a subprocess, in a fresh folder."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from opthub_runner_admin.demo.run import INDICATOR_IMAGE, PROBLEM_IMAGE
from opthub_runner_admin.platform_side.emulators import DEMO_EXTRA_HINT, DEMO_REQUIREMENT
from tests.support.docker_fixtures import images_left_as_found

ROOT = Path(__file__).resolve().parents[2]
DEMO_IMAGES = (PROBLEM_IMAGE, INDICATOR_IMAGE)

#: Makes ``moto`` unimportable, as after a plain ``pip install .`` without the extra.
BLOCK_MOTO = """
import sys

class _NoMoto:
    def find_spec(self, name, path=None, target=None):
        if name == "moto" or name.startswith("moto."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoMoto())
"""


def demo(
    cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", "demo", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **(env or {})},
    )


def processes_in(folder: Path) -> list[int]:
    """Pids of live processes whose working directory is ``folder`` (a left-over moto server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if Path(os.readlink(entry / "cwd")) == folder:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.fixture
def demo_images(docker_client: docker.DockerClient) -> Iterator[None]:
    """The demo's images are removed after the test, unless they were there before it."""
    with images_left_as_found(docker_client, DEMO_IMAGES):
        yield


def test_demo_runs_both_modes_for_two_participants_and_leaves_nothing(
    tmp_path: Path, docker_client: docker.DockerClient, demo_images: None, moto_of_its_own: None
) -> None:
    result = demo(tmp_path, "--solutions", "4")

    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout.split("What the runner wrote to the table:")[1].strip().splitlines()
    header, rows, final = table[0], table[1:5], table[-1]
    assert [line.split()[:3] for line in rows] == [
        ["alice", "0001", "Success"],
        ["bob", "0001", "Success"],
        ["alice", "0002", "Success"],
        ["bob", "0002", "Failed"],
    ]
    # The numbers are right-aligned under their headers, decimal points in one column.
    for name in ("objective", "score"):
        end = header.index(name) + len(name)  # each number ends under its header's end
        assert all(row[end - 7] == "." and row[end - 1].isdigit() for row in rows[:3]), rows
        assert rows[3][end - 1] == "-"
    assert 'as intended: the solution "not a vector" is malformed' in rows[3]
    # The final line's counts agree with the runner's own stop lines (and the table).
    assert "evaluator stopped: 3 done, 1 failed, 0 dropped" in result.stderr
    assert "scorer stopped: 3 done, 0 failed, 0 dropped" in result.stderr
    assert (
        final == "4 solutions: 3 evaluations Success, 1 Failed (1 as intended), 3 scores written."
    )
    assert "(table opthub-demo, 1 worker)" in result.stderr
    assert not (tmp_path / ".demo").exists()
    assert processes_in(tmp_path) == []


def test_demo_without_moto_says_what_to_install_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCK_MOTO)

    result = demo(tmp_path, env={"PYTHONPATH": str(tmp_path / "site")})

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"Error: the demo needs moto's server, which is not installed: {DEMO_EXTRA_HINT}"
    ]
    # This project from its checkout, never the earlier runner of the same name on PyPI.
    assert DEMO_EXTRA_HINT.startswith("pip install '.[demo]' in the opthub-runner checkout")
    assert "opthub-runner-admin" not in DEMO_EXTRA_HINT
    assert f'demo = ["{DEMO_REQUIREMENT}"]' in (ROOT / "pyproject.toml").read_text()
    assert not (tmp_path / ".demo").exists()
