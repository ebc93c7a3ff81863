"""Helpers for end-to-end runs: a config on disk, the real wiring, items read back."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from opthub_runner_admin.auth.credentials import Credentials
from opthub_runner_admin.config.loading import load_config
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.stack import AwsStack
from opthub_runner_admin.runner.assembly import build_worker
from opthub_runner_admin.runner.modes import mode_named
from opthub_runner_admin.runner.parts import Options
from opthub_runner_admin.store.dynamodb import from_dynamodb
from opthub_runner_admin.worker import Worker, WorkerStats


def make_worker(
    mode: str,
    config_path: Path,
    labels: dict[str, str],
    credentials: Credentials | None = None,
    **changes: Any,
) -> Worker:
    """The runner as the CLI builds it, in this process (no prompt: credentials are given)."""
    config = replace(load_config(config_path).config, **changes)
    options = Options(
        extra_labels=labels,
        credentials=(lambda: credentials) if credentials else None,
    )
    return build_worker(mode_named(mode), config, options)


def run_worker(mode: str, config_path: Path, labels: dict[str, str], num: int) -> WorkerStats:
    return make_worker(mode, config_path, labels, num=num).run()


def items(aws: AwsStack, kind: str, ref: TrialRef) -> list[dict[str, Any]]:
    """Every item (results and flags) under the trial's partition, for this trial."""
    response = aws.clients.dynamodb.query(
        TableName=aws.table_name,
        KeyConditionExpression="ID = :id",
        ExpressionAttributeValues={
            ":id": {"S": f"{kind}#Match#{ref.match_id}#{ref.participant_id}"}
        },
        ConsistentRead=True,
    )
    found = [from_dynamodb(item) for item in response["Items"]]
    return [item for item in found if str(item["Trial"]).endswith(ref.trial_no)]


def result_item(aws: AwsStack, kind: str, ref: TrialRef) -> dict[str, Any]:
    """The one result item of the trial (the flag item is checked to be there too)."""
    found = items(aws, kind, ref)
    results = [i for i in found if "Status" in i]
    flags = [i for i in found if i["Trial"] == ref.trial_no]
    assert len(results) == 1, found
    assert len(flags) == 1 and flags[0]["IgnoreStream"] is True, found
    return results[0]


def run_until_retried(worker: Worker, times: int = 1, timeout: float = 30) -> None:
    """Run ``worker`` in a thread until ``times`` jobs ended in a retry, then stop it."""
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while worker.stats.retried < times and time.monotonic() < deadline:
        time.sleep(0.05)
    worker.stop()
    thread.join(30)
    assert not thread.is_alive(), "the worker did not stop"


def run_cli(
    mode: str, config: Path, env: dict[str, str], stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """``opthub-runner <mode> --config <config>`` as an operator starts it."""
    return subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", mode, "--config", str(config)],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
