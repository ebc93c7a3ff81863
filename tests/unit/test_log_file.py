"""``log_file``: the log in a file as well, rotated by size, the start's error included."""

from __future__ import annotations

import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from opthub_runner_admin.cli.common import EXIT_CONFIG, setup_logging
from opthub_runner_admin.observe.log_file import LogFile


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in root.handlers:
        if handler not in handlers:
            handler.close()
    root.handlers[:] = handlers
    root.setLevel(level)


def test_the_file_is_rotated_at_its_size_and_keeps_count_files(
    tmp_path: Path, restore_logging: None
) -> None:
    path = tmp_path / "runner.log"
    setup_logging("INFO", "text", LogFile(path, size=2048, count=2))
    log = logging.getLogger("opthub_runner_admin.test")
    for n in range(400):
        log.info("line %03d of a long run", n)

    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["runner.log", "runner.log.1", "runner.log.2"]  # count=2: no .3
    for name in files:
        assert (tmp_path / name).stat().st_size <= 2048
    assert "line 399 of a long run" in path.read_text(encoding="utf-8")
    assert "INFO    opthub_runner_admin.test: line" in path.read_text(encoding="utf-8")


def test_the_cli_writes_its_warnings_and_its_error_to_the_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "region_name": "ap-northeast-1",
                "table_name": "opthub",
                "log_file": "logs/runner.log",
                "worker": 2,
            }
        )
    )
    (tmp_path / "logs").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", "evaluator", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == EXIT_CONFIG, result.stderr
    text = (tmp_path / "logs" / "runner.log").read_text(encoding="utf-8")
    assert "unknown key 'worker' is ignored (did you mean 'workers'?)" in text
    assert "ERROR   opthub_runner_admin: 'evaluator_queue_url' is required" in text


def test_a_log_file_that_cannot_be_written_is_one_line_and_exit_78(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump({"region_name": "r", "table_name": "t", "log_file": "missing/dir/x.log"})
    )
    result = subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", "evaluator", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == EXIT_CONFIG
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(f"Error: {config}: cannot write 'log_file' {tmp_path}/missing")
