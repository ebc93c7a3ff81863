"""Each start check as a pair over one config: what ``doctor`` says, and what the runner does.

``doctor`` must exit 0 exactly when the runner would start. For every bad
config here the real CLI runs twice as an operator runs it (subprocesses,
against moto and the real Docker daemon): ``doctor --config X`` (its line for
the check, its exit code) and ``evaluator --config X`` (its one ``Error:``
line and exit 78, or, for a warning, a start that gets to "ready" and logs
the same warning).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import docker
import pytest

from opthub_runner_admin.cli.common import EXIT_CONFIG
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.stack import AwsStack
from opthub_runner_admin.runner.doctor import CROSS, TICK, WARN
from tests.e2e.test_api_e2e import env_for
from tests.e2e.test_doctor import doctor, line_of
from tests.emulator.test_permanent_errors import one_error_line
from tests.support.e2e import run_cli

MATCH = "3b7c0b1e-0000-4000-8000-00000000d0c8"


def write(tmp_path: Path, aws: AwsStack, **overrides: Any) -> Path:
    """A config of ``aws`` with a catalogue of one match, mode 0600 (it holds keys)."""
    overrides = {"status_interval": 1, **overrides}
    path = write_config(tmp_path, aws, {MATCH: match_entry("opthub-test/unused")}, **overrides)
    path.chmod(0o600)
    return path


def refused(config: Path, tmp_path: Path, check: str, text: str) -> None:
    """doctor crosses ``check`` with ``text`` and exits 1; the runner exits 78 with it."""
    code, lines = doctor(config, env=env_for(tmp_path))
    line = line_of(lines, check)
    assert code == 1, lines
    assert line.startswith(f"{CROSS} {check}: ") and text in line, line
    # The only cross of its own: those after it that need it are "not tried".
    own = [line for line in lines if line.startswith(CROSS) and ": not tried: " not in line]
    assert own == [line], lines

    result = run_cli("evaluator", config, env_for(tmp_path))
    assert result.returncode == EXIT_CONFIG, result.stderr
    assert text in one_error_line(result)


def started_with_warning(config: Path, tmp_path: Path, check: str, text: str) -> None:
    """doctor warns on ``check`` and exits 0; the runner gets ready and logs the warning."""
    code, lines = doctor(config, env=env_for(tmp_path))
    line = line_of(lines, check)
    assert code == 0, lines
    assert line.startswith(f"{WARN} {check}: ") and text in line, line
    assert not [line for line in lines if line.startswith(CROSS)], lines

    log = ready_log(config, tmp_path)
    assert any("WARNING" in entry and text in entry for entry in log), log


def ready_log(config: Path, tmp_path: Path) -> list[str]:
    """Start the evaluator, read its log until its first status line, stop it (SIGTERM drains).

    The status line comes after the signal handlers are in place (``ready``
    comes just before them).
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "opthub_runner_admin.cli", "evaluator", "--config", str(config)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env_for(tmp_path)},
    )
    assert process.stderr is not None
    lines: list[str] = []
    try:
        for entry in process.stderr:
            lines.append(entry.rstrip("\n"))
            if "evaluator status:" in entry:
                break
        assert any(" ready on " in entry for entry in lines), lines
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        assert process.returncode == 0, lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return lines


def test_cpus_above_the_hosts_is_refused_by_both(
    tmp_path: Path, aws: AwsStack, docker_client: docker.DockerClient
) -> None:
    host = int(docker_client.info()["NCPU"])
    config = write(tmp_path, aws, cpus=host + 2)
    refused(
        config,
        tmp_path,
        "Docker runtime and CPUs",
        f"'cpus' is {host + 2} but Docker's host has {host} CPUs",
    )


def test_an_unknown_runtime_is_refused_by_both(tmp_path: Path, aws: AwsStack) -> None:
    config = write(tmp_path, aws, runtime="bogus")
    refused(
        config,
        tmp_path,
        "Docker runtime and CPUs",
        "runtime 'bogus' is not registered with this Docker daemon",
    )


@pytest.mark.parametrize("change", [{"cpus": 512}, {"runtime": "bogus"}])
def test_doctor_match_with_a_refused_docker_setup_skips_the_images_without_a_traceback(
    tmp_path: Path, aws: AwsStack, sphere_image: str, best_so_far_image: str, change: Any
) -> None:
    config = write_config(
        tmp_path, aws, {MATCH: match_entry(sphere_image, best_so_far_image)}, **change
    )

    code, lines = doctor(config, "--match", MATCH, env=env_for(tmp_path))  # no traceback

    assert code == 1
    assert line_of(lines, f"match {MATCH}").startswith(TICK)
    assert line_of(lines, "images") == (
        f"{CROSS} images: not tried: the Docker checks failed -> fix: fix Docker first"
    )


def test_no_queue_url_is_refused_by_both(tmp_path: Path, aws: AwsStack) -> None:
    config = write(tmp_path, aws, evaluator_queue_url=None, scorer_queue_url=None)
    code, lines = doctor(config, env=env_for(tmp_path))
    assert code == 1
    assert line_of(lines, "queues").startswith(f"{CROSS} queues: no queue configured")

    result = run_cli("evaluator", config, env_for(tmp_path))
    assert result.returncode == EXIT_CONFIG
    assert "'evaluator_queue_url' is required" in one_error_line(result)


def test_a_missing_queue_is_refused_by_both(tmp_path: Path, aws: AwsStack) -> None:
    missing = aws.evaluator_queue_url.rsplit("/", 1)[0] + f"/gone-{uuid.uuid4().hex[:8]}"
    config = write(tmp_path, aws, evaluator_queue_url=missing)
    refused(config, tmp_path, "evaluator queue", f"SQS queue {missing}")


def test_a_table_keyed_otherwise_is_refused_by_both(tmp_path: Path, aws: AwsStack) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}"
    aws.clients.dynamodb.create_table(
        TableName=other,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        config = write(tmp_path, aws, table_name=other)
        refused(config, tmp_path, "table", "is keyed pk (HASH, S); expected ID (HASH, S)")
    finally:
        aws.clients.dynamodb.delete_table(TableName=other)


def test_a_typo_key_is_a_warning_and_the_runner_starts(tmp_path: Path, aws: AwsStack) -> None:
    config = write(tmp_path, aws, worker=4)
    started_with_warning(
        config, tmp_path, "config", "unknown key 'worker' is ignored (did you mean 'workers'?)"
    )


def test_a_clamped_interval_is_a_warning_and_the_runner_starts(
    tmp_path: Path, aws: AwsStack
) -> None:
    config = write(tmp_path, aws, interval=30)
    started_with_warning(config, tmp_path, "config", "'interval' is 30 but an SQS long poll")


def test_a_short_retention_is_a_warning_and_the_runner_starts(
    tmp_path: Path, aws: AwsStack
) -> None:
    url = aws.new_queue("short-retention", retention_seconds=3 * 86400)
    config = write(tmp_path, aws, evaluator_queue_url=url)
    started_with_warning(
        config, tmp_path, "evaluator queue", "SQS deletes a message 3 days after it was sent"
    )
