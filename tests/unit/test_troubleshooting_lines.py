"""docs/troubleshooting.md quotes the lines this runner really prints."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from opthub_runner_admin.errors import FatalError
from opthub_runner_admin.executor.docker import connect_docker

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    return result.stderr.strip()


def troubleshooting() -> str:
    return (ROOT / "docs" / "troubleshooting.md").read_text(encoding="utf-8")


def test_the_missing_config_line_is_quoted(tmp_path: Path) -> None:
    line = cli("evaluator", "--config", "config.yml", cwd=tmp_path)

    assert line.startswith("Error: config.yml: configuration file not found")
    assert line in troubleshooting()


def test_the_docker_down_line_is_quoted(tmp_path: Path) -> None:
    # What the evaluator prints, from the function it calls at start.
    try:
        connect_docker(f"unix://{tmp_path}/docker.sock")
    except FatalError as exc:
        message = str(exc)

    assert message.startswith("Unable to communicate with Docker.")
    assert f"Error: {message}" in troubleshooting()


def test_the_not_utf8_line_is_quoted(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_bytes(
        "region_name: ap-northeast-1\n# 評価用\n".encode("shift_jis")  # 評 is 0x95 0x5d
    )
    line = cli("evaluator", "--config", "config.yml", cwd=tmp_path)

    assert line.startswith("Error: config.yml line 2: the configuration file is not UTF-8 text")
    assert line in troubleshooting()
