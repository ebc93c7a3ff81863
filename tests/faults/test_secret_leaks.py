"""No secret reaches a log line, an item or a file not meant for it, whatever fails.

Recognisable secrets are planted where an administrator keeps them: the AWS
secret key in the config, the password in ``OPTHUB_PASSWORD`` (the real
login against moto's Cognito, then the GraphQL test server), the private
environment of the problem and the indicator. The tokens the login obtains
are secrets too. Real ``opthub-runner`` processes at DEBUG level then run
jobs that fail in every way: an image that prints its environment to stdout
and stderr and exits non-zero, one that puts a secret in its ``error``, a
timeout, a memory kill, broken output, a missing image, and a Docker error
(the scorer asks for a GPU this host does not have). ``try`` and ``doctor``
then run the same image on the same secrets. Every log line, every printed
line, every table item and every file is searched for every secret.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import docker
import yaml

from opthub_runner_admin.model import Evaluation, TrialRef
from opthub_runner_admin.platform_side.contract import put_solution, send_job
from opthub_runner_admin.platform_side.opthub_api import FakeMatch, OpthubApiServer
from opthub_runner_admin.platform_side.runners import RunnerPool, runner_containers, wait_for
from opthub_runner_admin.platform_side.stack import AwsStack
from opthub_runner_admin.store.dynamodb import DynamoStore
from tests.e2e.test_api_e2e import env_for
from tests.e2e.test_scorer_e2e import TIMING
from tests.support.api_fixtures import CognitoPool
from tests.support.docker_fixtures import ImageFactory
from tests.support.e2e import result_item
from tests.support.leaks import Outputs, find_leaks, secret_values

#: Each branch fails in its own way, and all but the last show the environment.
LEAKY = r"""
IFS= read -r solution
case "$solution" in
*env-exit*) env; env >&2; exit 3 ;;
*env-error*) echo "{\"error\": \"cannot connect with $API_TOKEN\"}" ;;
*timeout*) env >&2; sleep 600 ;;
*broken*) env >&2; echo "{\"objective\": \"$API_TOKEN\", " ; exit 2 ;;
*memory*) env >&2; dd if=/dev/zero of=/dev/null bs=256M count=1 || exit 1 ;;
*) env >&2; echo '{"objective": 1}' ;;
esac
"""
CASES = ("env-exit", "env-error", "timeout", "broken", "memory", "ok")


def _config(tmp_path: Path, name: str, settings: dict[str, object]) -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(settings))
    path.chmod(0o600)
    return path


def test_no_secret_leaks_from_any_failure(
    tmp_path: Path,
    aws: AwsStack,
    cognito_pool: CognitoPool,
    opthub_api: OpthubApiServer,
    image_factory: ImageFactory,
    runners: RunnerPool,
    docker_client: docker.DockerClient,
) -> None:
    mark = uuid.uuid4().hex[:10]
    secrets = {
        "AWS secret key": f"LEAKTEST-aws-secret-{mark}",
        "password": cognito_pool.password,
        "problem private value": f"LEAKTEST-problem-private-{mark}",
        "indicator private value": f"LEAKTEST-indicator-private-{mark}",
    }
    image = image_factory("opthub-test/leaky:1", LEAKY)
    evaluated, refs = _plant_jobs(aws, opthub_api, image, secrets, mark)

    common = aws.config(
        secret_access_key=secrets["AWS secret key"],
        api_url=opthub_api.url,
        cognito_region=cognito_pool.region,
        cognito_user_pool_id=cognito_pool.user_pool_id,
        cognito_client_id=cognito_pool.client_id,
        interval=1,
        timeout=3,
        visibility_timeout=10,
        log_level="DEBUG",
        cache_dir=str(tmp_path / "cache"),
        memory="32m",
    )
    evaluator_config = _config(tmp_path, "evaluator.yml", common)
    scorer_config = _config(tmp_path, "scorer.yml", {**common, "gpus": "all"})
    env = env_for(
        tmp_path, OPTHUB_USERNAME=cognito_pool.username, OPTHUB_PASSWORD=cognito_pool.password
    )
    evaluator = runners.start("evaluator", evaluator_config, env)
    scorer = runners.start("scorer", scorer_config, env)

    def evaluations_written() -> bool:
        return all(
            len([i for i in _items(aws, ref) if "Status" in i]) == 1 for ref in refs.values()
        )

    wait_for(evaluations_written, 120, "the six evaluations")
    wait_for(lambda: "is not available" in evaluator.log(), 60, "the missing image's error")
    wait_for(lambda: "'gpus' setting" in scorer.log(), 60, "the scorer's GPU error")
    for runner in (evaluator, scorer):
        runner.signal(signal.SIGTERM)
        assert runner.wait(60) == 0, runner.log()[-3000:]
        assert runner_containers(docker_client, runner.pid) == []

    # The jobs failed as intended (else this test would prove little).
    statuses = {case: result_item(aws, "Evaluations", ref)["Status"] for case, ref in refs.items()}
    assert statuses == {**dict.fromkeys(CASES, "Failed"), "ok": "Success"}
    memory_message = result_item(aws, "Evaluations", refs["memory"])["ErrorMessage"]
    assert "memory limit" in memory_message
    assert "[redacted]" in result_item(aws, "Evaluations", refs["env-error"])["ErrorMessage"]
    assert (
        "API_TOKEN=[redacted]"
        in result_item(aws, "Evaluations", refs["env-exit"])["AdminErrorMessage"]
    )
    # The tokens the login obtained are secrets as well.
    bearer = {r.authorization for r in opthub_api.requests if r.authorization}
    for n, header in enumerate(sorted(bearer)):
        secrets[f"access token {n}"] = header.removeprefix("Bearer ")
    token_file = tmp_path / "xdg" / "opthub-runner" / "tokens.json"
    for n, token in enumerate(secret_values(json.loads(token_file.read_text()))):
        secrets[f"saved token {n}"] = token
    assert any(name.startswith("access token") for name in secrets)

    outputs = Outputs()
    outputs.add("evaluator output", evaluator.log())
    outputs.add("scorer output", scorer.log())
    _admin_commands(
        outputs, image, secrets["problem private value"], evaluator_config, evaluated, env
    )
    outputs.add_table(aws)
    outputs.add_files(tmp_path, except_=[evaluator_config, scorer_config, token_file])
    assert len(outputs.texts) > 10
    leaks = find_leaks(outputs, secrets)
    assert leaks == [], "\n".join(leaks)


def _plant_jobs(
    aws: AwsStack, api: OpthubApiServer, image: str, secrets: dict[str, str], mark: str
) -> tuple[str, dict[str, TrialRef]]:
    """Matches with private values, a trial per failure, a missing image, a trial to score."""
    evaluated, missing, scored = (str(uuid.uuid4()) for _ in range(3))
    private = {"API_TOKEN": secrets["problem private value"]}
    api.add_match(evaluated, FakeMatch(problem_image=image, problem_private=private))
    api.add_match(
        missing, FakeMatch(problem_image=f"opthub-test/absent-{mark}:1", problem_private=private)
    )
    api.add_match(
        scored,
        FakeMatch(
            indicator_image=image,
            indicator_private={"API_TOKEN": secrets["indicator private value"]},
        ),
    )
    refs = {}
    for n, case in enumerate(CASES, start=1):
        refs[case] = TrialRef(evaluated, "p-1", f"{n:04d}")
        put_solution(aws.clients.dynamodb, aws.table_name, refs[case], [case])
        send_job(aws.clients.sqs, aws.evaluator_queue_url, refs[case])
    missing_ref = TrialRef(missing, "p-1", "0001")
    put_solution(aws.clients.dynamodb, aws.table_name, missing_ref, ["ok"])
    send_job(aws.clients.sqs, aws.evaluator_queue_url, missing_ref)
    score_ref = TrialRef(scored, "p-2", "0001")
    DynamoStore(aws.clients.dynamodb, aws.table_name).put_evaluation(
        score_ref, Evaluation(objective=1), TIMING
    )
    send_job(aws.clients.sqs, aws.scorer_queue_url, score_ref)
    return evaluated, refs


def _admin_commands(
    outputs: Outputs, image: str, secret: str, config: Path, match: str, env: dict[str, str]
) -> None:
    """``try`` and ``doctor`` show a run to the administrator: the same secrets stay out."""
    for case in ("env-exit", "env-error", "broken", "memory"):
        args = ["try", "problem", image, "-e", f"API_TOKEN={secret}"]
        printed = _cli([*args, "--solution", json.dumps([case])])
        assert printed.returncode == 1, printed.stderr  # a Failed trial
        outputs.add(f"try {case}", printed.stdout + printed.stderr)
    for case in ("env-exit", "env-error"):
        args = ["doctor", "--config", str(config), "--match", match]
        printed = _cli([*args, "--solution", json.dumps([case])], env)
        assert "problem image on" in printed.stdout, printed.stdout + printed.stderr
        outputs.add(f"doctor {case}", printed.stdout + printed.stderr)


def _cli(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        stdin=subprocess.DEVNULL,
    )


def _items(aws: AwsStack, ref: TrialRef) -> list[dict[str, object]]:
    from tests.support.e2e import items

    return items(aws, "Evaluations", ref)
