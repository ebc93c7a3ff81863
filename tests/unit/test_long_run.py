"""What docs/operating.md's "The long run" says of reboots and upgrades, checked.

A reboot: the systemd unit starts at boot after Docker and the network; a
tmux session does not come back. An upgrade replaces only the virtualenv: the
saved login and the scorer's cache live in the XDG folders, outside it.
"""

from __future__ import annotations

import configparser
import sys
from pathlib import Path

import pytest

from opthub_runner_admin.auth.token_file import default_cache_path
from opthub_runner_admin.runner.modes import default_cache_dir

ROOT = Path(__file__).resolve().parents[2]


def unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(ROOT / "deploy" / "opthub-runner@.service", encoding="utf-8")
    return parser


def test_the_unit_starts_at_boot_after_docker_and_the_network() -> None:
    parsed = unit()
    assert parsed["Install"]["WantedBy"] == "multi-user.target"  # `enable` = at every boot
    after = parsed["Unit"]["After"].split()
    assert "docker.service" in after and "network-online.target" in after


def test_what_an_upgrade_keeps_lies_outside_the_virtualenv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_path() == tmp_path / ".config" / "opthub-runner" / "tokens.json"
    assert default_cache_dir() == tmp_path / ".cache" / "opthub-runner"
    for kept in (default_cache_path(), default_cache_dir()):
        assert not kept.is_relative_to(sys.prefix)

    # The unit's own environment: the state and cache directories systemd keeps.
    text = (ROOT / "deploy" / "opthub-runner@.service").read_text(encoding="utf-8")
    environment = dict(
        line.removeprefix("Environment=").split("=", 1)
        for line in text.splitlines()
        if line.startswith("Environment=")
    )
    monkeypatch.setenv("XDG_CONFIG_HOME", environment.get("XDG_CONFIG_HOME", ""))
    monkeypatch.setenv("XDG_CACHE_HOME", environment.get("XDG_CACHE_HOME", ""))
    assert default_cache_path() == Path("/var/lib/opthub-runner/config/opthub-runner/tokens.json")
    assert default_cache_dir() == Path("/var/cache/opthub-runner")
