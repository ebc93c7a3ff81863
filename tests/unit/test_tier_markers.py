"""The tier markers come from the fixtures a test uses (tests/conftest.py, tests/support/tiers.py).

``scripts/test.sh --quick`` leaves out ``docker`` and ``emulator``: a test the
hook failed to mark would run there without its daemon or emulator, and a
test it marked wrongly would not run there at all. The suite's own tests are
collected in a subprocess and their markers read back; a small project of its
own shows the guard that fails a test reaching a tier's fixture unmarked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

#: (file, test, the markers it must carry): one case per way a need reaches a test.
CASES = [
    # A fixture of a fixture of docker_client (make_executor -> case_labels -> docker_client).
    ("docker/test_executor_docker.py", "test_stdin_lines_reach_the_container_then_eof", ["docker"]),
    # The same file, no daemon: a dead socket on purpose.
    ("docker/test_executor_docker.py", "test_connect_docker_names_the_problem_on_one_line", []),
    # aws, which asks for its server by name.
    (
        "emulator/test_sqs_errors.py",
        "test_a_missing_queue_is_fatal_and_names_the_url_and_the_key",
        ["emulator"],
    ),
    # cognito_pool -> cognito_endpoint -> moto_server.
    ("emulator/test_auth_cognito.py", "test_login_returns_a_verified_access_token", ["emulator"]),
    ("emulator/test_auth_cognito.py", "test_tokens_repr_hides_tokens", []),
    (
        "e2e/test_evaluator_e2e.py",
        "test_cli_processes_num_messages_and_exits_0",
        ["docker", "emulator"],
    ),
    # The demo starts its own moto server: moto_of_its_own stands for it.
    (
        "e2e/test_demo_cli.py",
        "test_demo_runs_both_modes_for_two_participants_and_leaves_nothing",
        ["docker", "emulator"],
    ),
    ("e2e/test_demo_cli.py", "test_demo_without_moto_says_what_to_install_in_one_line", []),
    # Parameters that ask for their fixture by name, named with tiers.using.
    (
        "contracts/test_queue_contract.py",
        "test_receive_returns_the_message_with_count_one[memory]",
        [],
    ),
    (
        "contracts/test_queue_contract.py",
        "test_receive_returns_the_message_with_count_one[moto]",
        ["emulator"],
    ),
    (
        "contracts/test_queue_contract.py",
        "test_receive_returns_the_message_with_count_one[ministack]",
        ["emulator"],
    ),
    ("contracts/test_executor_contract.py", "test_stdin_lines_in_stdout_out[docker]", ["docker"]),
    ("contracts/test_executor_contract.py", "test_stdin_lines_in_stdout_out[stub]", []),
    (
        "faults/test_soak.py",
        "test_a_brief_soak_leaves_one_correct_result_per_trial_and_nothing_else",
        ["docker", "emulator", "slow"],
    ),
]
EXPECTED = {f"tests/{file}::{test}": markers for file, test, markers in CASES}

#: Writes each collected test's markers (of those above) to the file REPORT names.
REPORTER = """
import json, os

def pytest_collection_finish(session):
    names = ("docker", "emulator", "slow")
    found = {
        item.nodeid: [n for n in names if item.get_closest_marker(n)] for item in session.items
    }
    with open(os.environ["REPORT"], "w") as out:
        json.dump(found, out)
"""


def _pytest(
    args: list[str], cwd: Path, plugin_dir: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join([str(plugin_dir), str(ROOT)])
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_suites_tests_carry_the_markers_of_the_fixtures_they_use(tmp_path: Path) -> None:
    (tmp_path / "tier_report.py").write_text(REPORTER)
    report = tmp_path / "report.json"
    result = _pytest(
        ["--collect-only", "-p", "tier_report", *EXPECTED],
        ROOT,
        tmp_path,
        REPORT=str(report),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(report.read_text()) == EXPECTED


CONFTEST = """
import pytest

from tests.conftest import pytest_collection_modifyitems, pytest_fixture_setup
from tests.support.tiers import using


@pytest.fixture(scope="session")
def docker_client():
    return "a daemon"


@pytest.fixture
def executor(docker_client):
    return docker_client


@pytest.fixture(params=["memory", using("named", "executor")])
def named(request):
    return request.getfixturevalue("executor") if request.param == "named" else None


@pytest.fixture(params=["memory", "unnamed"])
def unnamed(request):
    return request.getfixturevalue("docker_client") if request.param == "unnamed" else None
"""

TESTS = """
def test_named(named):
    pass


def test_unnamed(unnamed):
    pass
"""

INI = """
[pytest]
addopts = --strict-markers
markers =
    docker: d
    emulator: e
    uses_fixtures(*names): u
"""


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "pytest.ini").write_text(INI)
    (project / "conftest.py").write_text(CONFTEST)
    (project / "test_tiers.py").write_text(TESTS)
    return project


def test_a_parameter_naming_its_fixture_is_marked_and_one_that_does_not_fails(
    tmp_path: Path,
) -> None:
    project = _project(tmp_path)

    quick = _pytest(["-m", "not docker", "-rA"], project, project)
    # The named parameter is left out; the unnamed one runs, reaches the fixture, and fails.
    assert "2 passed, 1 deselected, 1 error" in quick.stdout, quick.stdout + quick.stderr
    assert (
        "test_tiers.py::test_unnamed[unnamed] sets up docker_client but is not marked docker"
        in quick.stdout
    ), quick.stdout

    marked = _pytest(["-m", "docker", "-rA"], project, project)
    assert "1 passed, 3 deselected" in marked.stdout, marked.stdout + marked.stderr
    assert "PASSED test_tiers.py::test_named[named]" in marked.stdout


def test_the_whole_suite_s_parts_hold_every_tier_once() -> None:
    # scripts/test.sh runs the suite as pytest sessions side by side, each given
    # its folders: a tier folder named in none would never run in CI, one named
    # twice would run twice.
    script = (ROOT / "scripts" / "test.sh").read_text(encoding="utf-8")
    named = [folder for folder in re.findall(r"\btests/(\w+)(?=\s)", script) if folder != "support"]
    tiers = sorted(
        path.name
        for path in (ROOT / "tests").iterdir()
        if path.is_dir() and any(path.glob("test_*.py"))
    )
    assert sorted(named) == tiers
