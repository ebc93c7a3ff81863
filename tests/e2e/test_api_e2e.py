"""Evaluator and scorer through the administrator's login and the OptHub API.

Cognito is moto's (real InitiateAuth, real JWKS verification); the GraphQL API
is a real HTTP server in the test suite, reached through the real gql client.
"""

from __future__ import annotations

import os
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import jwt
import yaml

from opthub_runner_admin.auth.credentials import Credentials
from opthub_runner_admin.cli.common import EXIT_CONFIG
from opthub_runner_admin.model import Evaluation, TrialRef
from opthub_runner_admin.platform_side.contract import put_solution, send_job
from opthub_runner_admin.platform_side.opthub_api import FakeMatch, OpthubApiServer
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from opthub_runner_admin.store.dynamodb import DynamoStore

from ..support.api_fixtures import CognitoPool
from ..support.docker_fixtures import ImageFactory
from ..support.e2e import items, make_worker, result_item, run_cli, run_until_retried
from .test_scorer_e2e import TIMING

ENV_ECHO = (
    'cat >/dev/null\necho "{\\"objective\\": $DIMENSION, \\"info\\": {\\"who\\": \\"$WHO\\"}}"\n'
)


def api_config(
    tmp_path: Path, aws: AwsStack, pool: CognitoPool, api: OpthubApiServer, **overrides: Any
) -> Path:
    settings = aws.config(
        api_url=api.url,
        cognito_region=pool.region,
        cognito_user_pool_id=pool.user_pool_id,
        cognito_client_id=pool.client_id,
        interval=1,
        timeout=20,
        visibility_timeout=10,
        cache_dir="cache",
        **overrides,
    )
    path = tmp_path / "config.yml"
    path.write_text(yaml.safe_dump(settings))
    return path


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment whose token cache lives in the test's folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPTHUB_")}
    return {**env, "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "xdg"), **extra}


def submit(aws: AwsStack, match: str, count: int) -> list[TrialRef]:
    refs = []
    for n in range(1, count + 1):
        ref = TrialRef(match, "p-1", f"{n:04d}")
        put_solution(aws.clients.dynamodb, aws.table_name, ref, [n])
        send_job(aws.clients.sqs, aws.evaluator_queue_url, ref)
        refs.append(ref)
    return refs


def test_evaluator_logs_in_from_the_environment_and_uses_the_api(
    tmp_path: Path,
    aws: AwsStack,
    cognito_pool: CognitoPool,
    opthub_api: OpthubApiServer,
    image_factory: ImageFactory,
) -> None:
    image = image_factory("opthub-test/env-echo:1", ENV_ECHO)
    match = str(uuid.uuid4())
    opthub_api.add_match(
        match,
        FakeMatch(
            problem_image=image,
            problem_public={"DIMENSION": "3", "WHO": "public"},
            problem_private={"WHO": "private-value"},
        ),
    )
    refs = submit(aws, match, 3)
    config = api_config(tmp_path, aws, cognito_pool, opthub_api, num=3)
    env = env_for(
        tmp_path, OPTHUB_USERNAME=cognito_pool.username, OPTHUB_PASSWORD=cognito_pool.password
    )
    result = run_cli("evaluator", config, env)
    assert result.returncode == 0, result.stderr
    for ref in refs:
        item = result_item(aws, "Evaluations", ref)
        assert item["Objective"] == Decimal(3)
        assert item["Info"] == {"who": "private-value"}  # private wins over public
    # One API call for three messages of one match, with a verified bearer token.
    assert opthub_api.calls(match) == 1
    header = opthub_api.requests[0].authorization or ""
    assert header.startswith("Bearer ")
    claims = jwt.decode(header.removeprefix("Bearer "), options={"verify_signature": False})
    assert claims["client_id"] == cognito_pool.client_id
    assert claims["username"] == cognito_pool.username
    for secret in (cognito_pool.password, "private-value", header.removeprefix("Bearer ")):
        assert secret not in result.stderr and secret not in result.stdout
    token_file = tmp_path / "xdg" / "opthub-runner" / "tokens.json"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert cognito_pool.password not in token_file.read_text()


def test_the_login_prompt_reads_stdin_and_hides_the_password(
    tmp_path: Path,
    aws: AwsStack,
    cognito_pool: CognitoPool,
    opthub_api: OpthubApiServer,
    sphere_image: str,
) -> None:
    match = str(uuid.uuid4())
    opthub_api.add_match(match, FakeMatch(problem_image=sphere_image))
    (ref,) = submit(aws, match, 1)
    config = api_config(tmp_path, aws, cognito_pool, opthub_api, num=1)
    stdin = f"{cognito_pool.username}\n{cognito_pool.password}\n"
    result = run_cli("evaluator", config, env_for(tmp_path), stdin=stdin)
    assert result.returncode == 0, result.stderr
    assert "Username:" in result.stdout + result.stderr
    assert cognito_pool.password not in result.stdout + result.stderr
    assert result_item(aws, "Evaluations", ref)["Objective"] == Decimal(1)


def test_a_wrong_password_stops_before_any_job(
    tmp_path: Path, aws: AwsStack, cognito_pool: CognitoPool, opthub_api: OpthubApiServer
) -> None:
    match = str(uuid.uuid4())
    opthub_api.add_match(match, FakeMatch())
    (ref,) = submit(aws, match, 1)
    config = api_config(tmp_path, aws, cognito_pool, opthub_api)
    env = env_for(tmp_path, OPTHUB_USERNAME=cognito_pool.username, OPTHUB_PASSWORD="Wrong-pass1")
    result = run_cli("evaluator", config, env)
    # A wrong password is permanent: the code the systemd unit does not restart on.
    assert result.returncode == EXIT_CONFIG
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: ") and "Traceback" not in result.stderr
    assert "Wrong-pass1" not in result.stderr
    assert items(aws, "Evaluations", ref) == []
    assert queue_counts(aws, aws.evaluator_queue_url) == (1, 0, 0)
    assert opthub_api.requests == []


def test_an_account_that_is_not_the_administrator_fails_no_participant(
    tmp_path: Path,
    aws: AwsStack,
    cognito_pool: CognitoPool,
    opthub_api: OpthubApiServer,
    sphere_image: str,
    case_labels: dict[str, str],
) -> None:
    match = str(uuid.uuid4())
    opthub_api.add_match(
        match, FakeMatch(problem_image=sphere_image, problem_private={"KEY": "hidden"})
    )
    opthub_api.hide_private_values = True
    (ref,) = submit(aws, match, 1)
    config = api_config(tmp_path, aws, cognito_pool, opthub_api)
    credentials = Credentials(cognito_pool.username, cognito_pool.password, True)
    worker = make_worker("evaluator", config, case_labels, credentials=credentials)
    run_until_retried(worker)
    assert worker.stats.retried >= 1 and worker.stats.done == 0
    assert items(aws, "Evaluations", ref) == []
    visible, in_flight, delayed = queue_counts(aws, aws.evaluator_queue_url)
    assert visible + in_flight + delayed == 1


def test_scorer_through_the_api(
    tmp_path: Path,
    aws: AwsStack,
    cognito_pool: CognitoPool,
    opthub_api: OpthubApiServer,
    best_so_far_image: str,
    case_labels: dict[str, str],
) -> None:
    match = str(uuid.uuid4())
    opthub_api.add_match(match, FakeMatch(indicator_image=best_so_far_image))
    store = DynamoStore(aws.clients.dynamodb, aws.table_name)
    refs = [TrialRef(match, "p-1", f"{n:04d}") for n in (1, 2)]
    for ref, objective in zip(refs, (4, 2), strict=True):
        store.put_evaluation(ref, Evaluation(objective=objective), TIMING)
        send_job(aws.clients.sqs, aws.scorer_queue_url, ref)
    config = api_config(tmp_path, aws, cognito_pool, opthub_api, num=2)
    credentials = Credentials(cognito_pool.username, cognito_pool.password, True)
    worker = make_worker("scorer", config, case_labels, credentials=credentials)
    assert worker.run().done == 2
    assert [result_item(aws, "Scores", r)["Value"] for r in refs] == [Decimal(4), Decimal(2)]
    assert opthub_api.calls(match) == 1
