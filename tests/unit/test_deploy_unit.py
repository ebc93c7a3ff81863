"""The systemd unit in deploy/: credentials from a file, restart on failure, stop = drain.

systemd itself does not run in the test environment: the unit is read as the
INI file it is, and what it promises is checked against the runner's own
code (its exit codes, the paths it writes to under the unit's environment).
``systemd-analyze security --offline=true deploy/opthub-runner@.service``
scores it where systemd's analyzer is installed.
"""

from __future__ import annotations

import configparser
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from opthub_runner_admin.auth.token_file import default_cache_path
from opthub_runner_admin.cli.common import EXIT_CONFIG, EXIT_USAGE
from opthub_runner_admin.host import pidfiles
from opthub_runner_admin.runner.modes import default_cache_dir

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy" / "opthub-runner@.service"
#: Highest exposure score (0 best, 10 worst) the hardened unit may have; it scores 1.3.
MAX_EXPOSURE = 2.0


def unit() -> configparser.ConfigParser:
    # Repeated keys (Environment=, SystemCallFilter=) are systemd's lists: keep the last.
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


def environment() -> dict[str, str]:
    """Every ``Environment=`` line of the unit, as the runner sees them."""
    pairs = [
        line.removeprefix("Environment=").split("=", 1)
        for line in UNIT.read_text().splitlines()
        if line.startswith("Environment=")
    ]
    return {key: value for key, value in pairs}


def exec_start() -> list[str]:
    return shlex.split(unit()["Service"]["ExecStart"])


def test_the_unit_drains_on_stop_for_longer_than_the_grace_period() -> None:
    service = unit()["Service"]
    command = exec_start()
    # The unit sets the grace period itself: the config's default leaves it unset.
    grace_period = int(command[command.index("--grace-period") + 1])

    assert service["KillSignal"] == "SIGTERM"
    # Only the runner gets SIGTERM (its containers belong to dockerd anyway).
    assert service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) > grace_period > 0


def test_the_unit_restarts_on_failure_but_not_on_a_permanent_error() -> None:
    service = unit()["Service"]

    assert service["Restart"] == "on-failure"
    assert set(service["RestartPreventExitStatus"].split()) == {str(EXIT_CONFIG), str(EXIT_USAGE)}
    assert EXIT_CONFIG == 78  # sysexits.h EX_CONFIG
    assert service["EnvironmentFile"].startswith("/etc/opthub-runner/")
    assert "%i" in exec_start() and "--config" in exec_start()


def test_the_runner_writes_only_where_the_hardened_unit_lets_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service = unit()["Service"]
    assert service["ProtectSystem"] == "strict"  # everything else is read-only
    writable = [
        Path("/var/lib") / service["StateDirectory"],
        Path("/var/cache") / service["CacheDirectory"],
        Path("/run") / service["RuntimeDirectory"],
    ]
    for key, value in environment().items():
        monkeypatch.setenv(key, value)

    # The saved login, the scorer's history cache and the pid files `stop` reads.
    for path in (default_cache_path(), default_cache_dir(), pidfiles.state_dir()):
        assert any(path.is_relative_to(folder) for folder in writable), path
    assert Path(environment()["HOME"]) in writable  # ~/.docker for registry logins
    # Two instances share the runtime folder: the first to stop must not remove it.
    assert service["RuntimeDirectoryPreserve"] == "yes"


def test_the_unit_is_hardened() -> None:
    service = unit()["Service"]
    for key, value in {
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "ProtectHome": "yes",
        "CapabilityBoundingSet": "",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    }.items():
        assert service[key] == value, key


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
def test_systemd_analyze_scores_the_unit_ok() -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=true", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "--offline" in result.stderr and "unrecognized" in result.stderr:
        pytest.skip("this systemd-analyze has no --offline")
    (overall,) = [line for line in result.stdout.splitlines() if "Overall exposure" in line]
    score = float(overall.split(":")[1].split()[0])
    assert score <= MAX_EXPOSURE, overall


def test_the_credentials_example_tries_no_placeholder_password() -> None:
    example = (ROOT / "deploy" / "credentials.env.example").read_text()
    values = dict(
        line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#")
    )
    assert values == {"OPTHUB_USERNAME": "", "OPTHUB_PASSWORD": ""}
