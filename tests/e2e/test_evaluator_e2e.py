"""The evaluator end to end: real moto server, real Docker, the real wiring and CLI."""

from __future__ import annotations

import os
import threading
import time
import uuid
from decimal import Decimal
from pathlib import Path

import docker

from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import put_solution, send_job
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from opthub_runner_admin.values import DYNAMO_MAX

from ..support.aws_fixtures import on_each_emulator
from ..support.docker_fixtures import ImageFactory, containers_labelled
from ..support.e2e import items, make_worker, result_item, run_cli, run_until_retried, run_worker

NO_RESULT = "echo 'starting'\necho 'Traceback: private details' >&2\nexit 3\n"
ERROR = 'cat >/dev/null\necho \'{"error": "dimension must be 2"}\'\n'
NO_OBJECTIVE = "cat >/dev/null\necho '{\"value\": 1}'\n"
SLEEPER = "sleep 60\n"
ODD_VALUES = (
    "cat >/dev/null\n"
    'echo \'{"objective": NaN, "constraint": [Infinity, -Infinity, 1e999, 1e-300], '
    '"info": {"ok": true, "nested": {"flag": false}}, "feasible": false}\'\n'
)
NONZERO_WITH_RESULT = "cat >/dev/null\necho '{\"objective\": 7}'\nexit 1\n"
ENV_ECHO = (
    'cat >/dev/null\necho "{\\"objective\\": $DIMENSION, \\"info\\": {\\"who\\": \\"$WHO\\"}}"\n'
)

ARGS_ECHO = 'cat >/dev/null\necho "{\\"objective\\": $#, \\"info\\": {\\"args\\": \\"$*\\"}}"\n'


def new_match() -> str:
    return str(uuid.uuid4())


def submit(
    aws: AwsStack, match: str, variables: list[object], participant: str = "p-1"
) -> list[TrialRef]:
    refs = []
    for n, variable in enumerate(variables, start=1):
        ref = TrialRef(match, participant, f"{n:04d}")
        put_solution(aws.clients.dynamodb, aws.table_name, ref, variable)
        send_job(aws.clients.sqs, aws.evaluator_queue_url, ref)
        refs.append(ref)
    return refs


@on_each_emulator
def test_solutions_are_evaluated_with_every_attribute(
    tmp_path: Path,
    aws: AwsStack,
    sphere_image: str,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    match = new_match()
    config = write_config(tmp_path, aws, {match: match_entry(sphere_image)})
    refs = submit(aws, match, [[1, 2], [0.5, -1.5], [3]])
    stats = run_worker("evaluator", config, case_labels, num=3)
    assert stats.done == 3
    objectives = [result_item(aws, "Evaluations", ref)["Objective"] for ref in refs]
    assert objectives == [Decimal(5), Decimal("2.5"), Decimal(9)]
    item = result_item(aws, "Evaluations", refs[0])
    assert item["ID"] == f"Evaluations#Match#{match}#p-1"
    assert item["Trial"] == "Success#0001" and item["TrialNo"] == "0001"
    assert item["MatchID"] == f"Match#{match}" and item["ParticipantID"] == "p-1"
    assert item["ResourceType"] == "Evaluation" and item["Status"] == "Success"
    assert item["Constraint"] is None and item["Info"] == {} and item["Feasible"] is None
    assert item["IgnoreStream"] is False
    for key in ("CreatedAt", "StartedAt", "FinishedAt"):
        assert len(item[key]) == 24 and item[key].endswith("Z")
    assert item["StartedAt"] <= item["FinishedAt"] <= item["CreatedAt"]
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    assert containers_labelled(docker_client, case_labels) == []


def test_failures_become_failed_items(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    images = {
        "noresult": image_factory("opthub-test/no-result:1", NO_RESULT),
        "error": image_factory("opthub-test/error:1", ERROR),
        "noobjective": image_factory("opthub-test/no-objective:1", NO_OBJECTIVE),
        "sleeper": image_factory("opthub-test/sleeper:1", SLEEPER),
    }
    matches = {name: new_match() for name in images}
    config = write_config(
        tmp_path, aws, {matches[n]: match_entry(image) for n, image in images.items()}, timeout=2
    )
    refs = {name: submit(aws, matches[name], [[1, 2]])[0] for name in images}
    stats = run_worker("evaluator", config, case_labels, num=4)
    assert stats.done == 4

    noresult = result_item(aws, "Evaluations", refs["noresult"])
    assert noresult["Status"] == "Failed" and noresult["Trial"] == "Failed#0001"
    assert "printed no result" in noresult["ErrorMessage"]
    assert "private details" not in noresult["ErrorMessage"]
    assert "exit code 3" in noresult["AdminErrorMessage"]
    assert "private details" in noresult["AdminErrorMessage"]
    assert "Objective" not in noresult

    error = result_item(aws, "Evaluations", refs["error"])
    assert error["ErrorMessage"] == "dimension must be 2"

    noobjective = result_item(aws, "Evaluations", refs["noobjective"])
    assert "no objective" in noobjective["ErrorMessage"]

    sleeper = result_item(aws, "Evaluations", refs["sleeper"])
    assert sleeper["ErrorMessage"] == "The evaluation timed out after 2 seconds.", sleeper
    assert containers_labelled(docker_client, case_labels) == []


def test_odd_values_and_environment_reach_the_table(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
) -> None:
    odd = new_match()
    env = new_match()
    nonzero = new_match()
    config = write_config(
        tmp_path,
        aws,
        {
            odd: match_entry(image_factory("opthub-test/odd-values:1", ODD_VALUES)),
            env: match_entry(
                image_factory("opthub-test/env-echo:1", ENV_ECHO),
                env={"DIMENSION": "2", "WHO": "admin"},
            ),
            nonzero: match_entry(image_factory("opthub-test/nonzero:1", NONZERO_WITH_RESULT)),
        },
    )
    refs = [submit(aws, m, [[1]])[0] for m in (odd, env, nonzero)]
    assert run_worker("evaluator", config, case_labels, num=3).done == 3
    item = result_item(aws, "Evaluations", refs[0])
    assert item["Status"] == "Success"
    assert item["Objective"] is None
    assert item["Constraint"] == [DYNAMO_MAX, DYNAMO_MAX.copy_negate(), DYNAMO_MAX, Decimal(0)]
    assert item["Info"] == {"ok": True, "nested": {"flag": False}}
    assert item["Feasible"] is False
    echoed = result_item(aws, "Evaluations", refs[1])
    assert echoed["Objective"] == Decimal(2) and echoed["Info"] == {"who": "admin"}
    assert result_item(aws, "Evaluations", refs[2])["Objective"] == Decimal(7)


def test_a_redelivered_message_writes_nothing_new(
    tmp_path: Path,
    aws: AwsStack,
    sphere_image: str,
    case_labels: dict[str, str],
) -> None:
    match = new_match()
    config = write_config(tmp_path, aws, {match: match_entry(sphere_image)})
    (ref,) = submit(aws, match, [[1, 1]])
    run_worker("evaluator", config, case_labels, num=1)
    first = items(aws, "Evaluations", ref)
    send_job(aws.clients.sqs, aws.evaluator_queue_url, ref)
    stats = run_worker("evaluator", config, case_labels, num=1)
    assert stats.done == 1
    assert items(aws, "Evaluations", ref) == first
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)


def test_a_missing_image_is_the_administrators_problem(
    tmp_path: Path,
    aws: AwsStack,
    case_labels: dict[str, str],
) -> None:
    match = new_match()
    config = write_config(tmp_path, aws, {match: match_entry("opthub-test/absent:none")})
    (ref,) = submit(aws, match, [[1]])
    worker = make_worker("evaluator", config, case_labels)
    run_until_retried(worker)
    assert worker.stats.retried >= 1
    assert items(aws, "Evaluations", ref) == []
    visible, in_flight, delayed = queue_counts(aws, aws.evaluator_queue_url)
    assert visible + in_flight + delayed == 1


def test_cli_processes_num_messages_and_exits_0(
    tmp_path: Path,
    aws: AwsStack,
    sphere_image: str,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    match = new_match()
    secret = "sEcReT-" + uuid.uuid4().hex
    config = write_config(
        tmp_path,
        aws,
        {match: match_entry(sphere_image)},
        num=2,
        log_level="DEBUG",
        secret_access_key=secret,
    )
    refs = submit(aws, match, [[2], [3]])
    result = run_cli("evaluator", config, {**os.environ, "HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "Exception ignored" not in result.stderr
    assert [result_item(aws, "Evaluations", r)["Objective"] for r in refs] == [
        Decimal(4),
        Decimal(9),
    ]
    assert "evaluation Success" in result.stderr
    assert secret not in result.stderr and secret not in result.stdout


def test_heartbeat_keeps_a_long_job_from_a_second_runner(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    """A 5 s job under a 2 s visibility window: the other runner must never get it."""
    slow = image_factory(
        "opthub-test/slow-5s:1", "cat >/dev/null\nsleep 5\necho '{\"objective\": 1}'\n"
    )
    match = new_match()
    config = write_config(tmp_path, aws, {match: match_entry(slow)}, visibility_timeout=2, rm=False)
    (ref,) = submit(aws, match, [[1]])
    first = make_worker("evaluator", config, case_labels, num=1)
    second = make_worker("evaluator", config, case_labels, num=1)
    threads = [threading.Thread(target=w.run, daemon=True) for w in (first, second)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while not (first.stats.done or second.stats.done) and time.monotonic() < deadline:
        time.sleep(0.1)
    first.stop()
    second.stop()
    for thread in threads:
        thread.join(30)
    assert first.stats.done + second.stats.done == 1
    assert first.stats.received + second.stats.received == 1
    assert len(containers_labelled(docker_client, case_labels)) == 1  # one run, not two
    assert result_item(aws, "Evaluations", ref)["Objective"] == Decimal(1)


def test_the_configured_command_reaches_the_container_and_a_match_may_override_it(
    tmp_path: Path, aws: AwsStack, image_factory: ImageFactory, case_labels: dict[str, str]
) -> None:
    image = image_factory("opthub-test/args-echo:1", ARGS_ECHO)
    plain, own = new_match(), new_match()
    own_entry = match_entry(image)
    own_entry["problem"]["command"] = ["--own", "x y"]
    config = write_config(
        tmp_path,
        aws,
        {plain: match_entry(image), own: own_entry},
        command="--dim 3 --name 'two words'",
    )
    (first,) = submit(aws, plain, [[1]])
    (second,) = submit(aws, own, [[1]])
    assert run_worker("evaluator", config, case_labels, num=2).done == 2
    configured = result_item(aws, "Evaluations", first)
    assert configured["Objective"] == Decimal(4)
    assert configured["Info"] == {"args": "--dim 3 --name two words"}
    overridden = result_item(aws, "Evaluations", second)
    assert overridden["Objective"] == Decimal(2)
    assert overridden["Info"] == {"args": "--own x y"}
