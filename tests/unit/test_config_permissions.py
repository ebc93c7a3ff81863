"""A config file holding secrets and readable by others: one warning with the chmod that fixes it.

Run as the operator runs it: the real CLI in a subprocess. The config lacks
the queue URL on purpose, so that the runner stops right after reading it
(exit 78) without needing AWS.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from opthub_runner_admin.cli.common import EXIT_CONFIG

SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
WITH_SECRETS = (
    f"region_name: r\ntable_name: t\naccess_key_id: AKIAEXAMPLE\nsecret_access_key: {SECRET}\n"
)
WITHOUT_SECRETS = "region_name: r\ntable_name: t\n"


def _start(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", "evaluator", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def _warnings(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if "chmod" in line]


@pytest.mark.parametrize(("mode", "readers"), [(0o644, "group and others"), (0o640, "group")])
def test_a_readable_config_with_secrets_warns_once_with_the_fix(
    tmp_path: Path, mode: int, readers: str
) -> None:
    config = tmp_path / "my config.yml"
    config.write_text(WITH_SECRETS)
    config.chmod(mode)
    result = _start(config)
    assert result.returncode == EXIT_CONFIG, result.stderr  # stopped at the missing queue URL
    (warning,) = _warnings(result)
    assert "WARNING" in warning
    assert f"readable by {readers}" in warning
    assert "secret_access_key" in warning
    assert f"chmod 600 {shlex.quote(str(config.resolve()))}" in warning
    assert SECRET not in result.stderr + result.stdout
    # The command it names is the fix: run it, and the warning is gone.
    subprocess.run(["chmod", "600", str(config.resolve())], check=True)
    assert _warnings(_start(config)) == []


def test_no_warning_without_secrets_or_when_private(tmp_path: Path) -> None:
    public = tmp_path / "public.yml"
    public.write_text(WITHOUT_SECRETS)
    public.chmod(0o644)
    assert _warnings(_start(public)) == []
    private = tmp_path / "private.yml"
    private.write_text(WITH_SECRETS)
    private.chmod(0o600)
    assert _warnings(_start(private)) == []
