"""The systemd unit in deploy/: credentials from a file, restart on failure, stop = drain."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from opthub_runner_admin.cli import EXIT_CONFIG

ROOT = Path(__file__).resolve().parents[1]


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((ROOT / "deploy" / "opthub-runner@.service").read_text())
    return parser


def test_the_unit_drains_on_stop_for_longer_than_the_grace_period() -> None:
    service = unit()["Service"]
    documented = re.search(
        r"^# grace_period: (\d+)", (ROOT / "config.default.yml").read_text(), re.MULTILINE
    )
    assert documented is not None

    assert service["KillSignal"] == "SIGTERM"
    # Only the runner gets SIGTERM (its containers belong to dockerd anyway).
    assert service["KillMode"] == "mixed"
    assert int(service["TimeoutStopSec"]) > int(documented.group(1))


def test_the_unit_restarts_on_failure_but_not_on_a_config_error() -> None:
    service = unit()["Service"]

    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == str(EXIT_CONFIG)
    assert service["EnvironmentFile"].startswith("/etc/opthub-runner/")
    assert "%i --config" in service["ExecStart"]
