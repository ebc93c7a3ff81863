"""The login ends mid-run: a real runner process goes on without a restart.

Cognito is the suite's stand-in (``cognito_standin``: access tokens of 20 s,
refresh tokens that end on demand), in front of the moto stack for SQS and
DynamoDB; the GraphQL API is the suite's server; containers are real. In a
terminal (a real pty, the runner's controlling terminal) the runner rings the
bell, names the account and asks its password again, taking no new job and
answering ``/healthz`` 503 meanwhile; typed, it goes on. With the
credentials in the environment it logs in again by itself.
"""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import docker
import pytest
import yaml

from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.cognito_standin import REGION, CognitoStandIn
from opthub_runner_admin.platform_side.contract import put_solution, send_job
from opthub_runner_admin.platform_side.opthub_api import FakeMatch, OpthubApiServer
from opthub_runner_admin.platform_side.runners import RunnerPool, wait_for
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts

from ..support.docker_fixtures import ImageFactory
from ..support.e2e import items, result_item
from ..unit.test_observe import get, samples

SLOW = "cat >/dev/null\nsleep 1\necho '{\"objective\": 7}'\n"
#: Lifetime of the stand-in's access tokens: the runner refreshes at half of it.
TOKEN_SECONDS = 20
#: Jobs of a second each, one at a time: those left once the first two are done
#: outlast a refresh period (TOKEN_SECONDS / 2) with room to spare, so that the
#: runner meets the ended login while work is left, however fast it runs.
JOBS = 2 + TOKEN_SECONDS
_ADDRESS = re.compile(r"/healthz on http://(127\.0\.0\.1):(\d+)/")
LABEL = "{mode=evaluator}"
TAKE_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0);"
    " os.execv(sys.argv[1], sys.argv[1:])"
)


@pytest.fixture
def stand_in(aws: AwsStack) -> Iterator[CognitoStandIn]:
    """Cognito of short tokens; SQS and DynamoDB passed on to the test's moto stack."""
    stand_in = CognitoStandIn(upstream=aws.endpoint_url, token_seconds=TOKEN_SECONDS)
    stand_in.start()
    try:
        yield stand_in
    finally:
        stand_in.stop()


def setup(
    tmp_path: Path, aws: AwsStack, stand_in: CognitoStandIn, api: OpthubApiServer, image: str
) -> tuple[Path, list[TrialRef]]:
    match = str(uuid.uuid4())
    api.add_match(match, FakeMatch(problem_image=image))
    refs = [TrialRef(match, "p-1", f"{n:04d}") for n in range(1, JOBS + 1)]
    for n, ref in enumerate(refs, 1):
        put_solution(aws.clients.dynamodb, aws.table_name, ref, [n])
        send_job(aws.clients.sqs, aws.evaluator_queue_url, ref)
    settings = aws.config(
        endpoint_url=stand_in.endpoint_url,
        api_url=api.url,
        cognito_region=REGION,
        cognito_user_pool_id=stand_in.user_pool_id,
        cognito_client_id=stand_in.client_id,
        interval=1,
        timeout=20,
        visibility_timeout=10,
        cache_dir="cache",
        match_cache_seconds=0,  # every job asks the API, with the login's token
        metrics_port=0,
        status_interval=1,
        prestart=True,
    )
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(settings))
    return path, refs


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTHUB_")}
    return {
        **env,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "xdg"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        **extra,
    }


def done(aws: AwsStack, refs: list[TrialRef]) -> int:
    return sum(1 for ref in refs if items(aws, "Evaluations", ref))


class Terminal:
    """A runner whose stdin, stdout and stderr are a pty that is its controlling terminal."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        self._master, slave = pty.openpty()
        # In a session of its own, the pty is made its controlling terminal (where getpass
        # turns the echo off), then the runner is executed in that same process.
        self.process = subprocess.Popen(
            [sys.executable, "-c", TAKE_TERMINAL, *command],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
        )
        os.close(slave)
        self._text: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 4096)
            except OSError:  # EIO once the runner is gone
                return
            if not data:
                return
            with self._lock:
                self._text.append(data.decode(errors="replace"))

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._text)

    def type(self, line: str) -> None:
        os.write(self._master, f"{line}\n".encode())

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(10)
        os.close(self._master)


def test_in_a_terminal_the_runner_asks_the_password_again_and_goes_on(
    tmp_path: Path,
    aws: AwsStack,
    stand_in: CognitoStandIn,
    opthub_api: OpthubApiServer,
    image_factory: ImageFactory,
    docker_client: docker.DockerClient,
) -> None:
    image = image_factory("opthub-test/slow-1s:1", SLOW)
    config, refs = setup(tmp_path, aws, stand_in, opthub_api, image)
    command = [sys.executable, "-m", "opthub_runner_admin.cli", "evaluator", "--config"]
    terminal = Terminal([*command, str(config)], clean_env(tmp_path))
    try:
        wait_for(lambda: "Username:" in terminal.text, 60, "the login prompt")
        terminal.type(stand_in.username)
        wait_for(lambda: "Password:" in terminal.text, 30, "the password prompt")
        terminal.type(stand_in.password)
        found = wait_for(lambda: _ADDRESS.search(terminal.text), 60, "the monitor's address")
        base = f"http://{found.group(1)}:{found.group(2)}"
        wait_for(lambda: done(aws, refs) >= 2, 90, "the first results")

        stand_in.end_refresh_tokens()  # the refresh token's validity is over
        wait_for(lambda: f"Password for {stand_in.username}:" in terminal.text, 60, "the ask")
        assert "\a" in terminal.text  # the bell
        assert f"The OptHub login of {stand_in.username} has ended" in terminal.text
        wait_for(lambda: queue_counts(aws, aws.evaluator_queue_url)[1] == 0, 60, "none in flight")
        at_end = done(aws, refs)
        lines = terminal.text.count("evaluator status:")
        wait_for(lambda: terminal.text.count("evaluator status:") >= lines + 3, 30, "lines")
        assert done(aws, refs) == at_end < JOBS  # nothing taken while the login waits
        health = get(f"{base}/healthz")
        metrics = samples(get(f"{base}/metrics")[1])
        assert health[0] == 503 and health[1].startswith("unhealthy: not ready: the OptHub login")
        assert metrics[f"opthub_runner_login_needed{LABEL}"] == 1
        assert metrics[f"opthub_runner_login_remaining_seconds{LABEL}"] == 0
        assert "LOGIN NEEDED for" in terminal.text  # the status line says it
        said = [line for line in terminal.text.splitlines() if "no new job is taken (" in line]
        assert len(said) == 1, said  # said once, then by every status line
        assert "has ended (Refresh Token has expired)" in said[0]
        assert terminal.process.poll() is None  # the runner did not exit
        status = subprocess.run(
            [sys.executable, "-m", "opthub_runner_admin.cli", "status", "--config", str(config)],
            env=clean_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert f"evaluator (pid {terminal.process.pid}, " in status.stdout, status.stderr
        assert ": LOGIN NEEDED" in status.stdout

        terminal.type(stand_in.password)
        wait_for(lambda: done(aws, refs) == JOBS, 120, "every trial evaluated")
        metrics = samples(get(f"{base}/metrics")[1])
        assert metrics[f"opthub_runner_login_needed{LABEL}"] == 0
        assert get(f"{base}/healthz")[0] == 200
        assert stand_in.counts.logins == 2  # the password at the start, and once again
        terminal.process.send_signal(signal.SIGTERM)
        assert terminal.process.wait(60) == 0
    finally:
        terminal.close()
    assert stand_in.password not in terminal.text  # never echoed
    for ref in refs:  # exactly one result per trial
        assert result_item(aws, "Evaluations", ref)["Objective"] == Decimal(7)
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)


def test_with_the_credentials_in_the_environment_it_logs_in_again_by_itself(
    tmp_path: Path,
    aws: AwsStack,
    stand_in: CognitoStandIn,
    opthub_api: OpthubApiServer,
    image_factory: ImageFactory,
    docker_client: docker.DockerClient,
) -> None:
    image = image_factory("opthub-test/slow-1s:1", SLOW)
    config, refs = setup(tmp_path, aws, stand_in, opthub_api, image)
    env = clean_env(tmp_path, OPTHUB_USERNAME=stand_in.username, OPTHUB_PASSWORD=stand_in.password)
    pool = RunnerPool(tmp_path, docker_client)
    try:
        process = pool.start("evaluator", config, env=env)
        wait_for(lambda: done(aws, refs) >= 2, 90, "the first results")
        stand_in.end_refresh_tokens()
        wait_for(lambda: stand_in.counts.logins == 2, 60, "a new login from the environment")
        wait_for(lambda: done(aws, refs) == JOBS, 120, "every trial evaluated")
        process.signal(signal.SIGTERM)
        assert process.wait(60) == 0
        log = process.log()
    finally:
        pool.cleanup()
    assert stand_in.counts.refused_refreshes >= 1
    assert f"the OptHub login of {stand_in.username} ended; logging in again" in log
    assert "login needed" not in log  # it never waited
    assert stand_in.password not in log
    for ref in refs:
        assert result_item(aws, "Evaluations", ref)["Objective"] == Decimal(7)
