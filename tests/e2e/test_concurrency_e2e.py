"""Several jobs at once, for real: moto over HTTP, real containers, the runner as the CLI builds it.

Overlap is read from the containers' own clocks (``/proc/uptime``, shared by
every container on the host, in the evaluation's ``info``) or from Docker's
record of each container's start and end, never from the test's timing.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import docker
import pytest

from opthub_runner_admin.errors import FatalError
from opthub_runner_admin.executor import RunSpec
from opthub_runner_admin.jobs.outcome import Done, JobContext, Outcome
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import send_job
from opthub_runner_admin.platform_side.runners import wait_for
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from opthub_runner_admin.queue import Message
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.worker import Worker, WorkerSettings

from ..faults.helpers import new_match, submit
from ..support.docker_fixtures import ExecutorFactory, ImageFactory, containers_labelled
from ..support.e2e import items, make_worker, result_item
from .test_scorer_e2e import evaluated

#: Problem image: sleeps as many seconds as the solution says; ``info`` holds its start and
#: end on the host's uptime clock (busybox's ``date`` has no sub-second format).
STAMPED = r"""IFS= read -r seconds
read start rest < /proc/uptime
sleep "$seconds"
read end rest < /proc/uptime
echo "{\"objective\": $seconds, \"info\": {\"start\": $start, \"end\": $end}}"
"""

#: Indicator image whose score depends on the whole history: the current objective plus
#: every earlier score. It echoes its stdin to stderr and takes a second, so that
#: participants scored in parallel overlap.
CUMULATIVE = r"""IFS= read -r current
IFS= read -r history
printf '%s\n%s\n' "$current" "$history" >&2
sleep 1
printf '%s\n%s\n' "$current" "$history" | awk '
NR == 1 && match($0, /"objective"[ \t]*:[ \t]*-?[0-9.]+/) {
    value = substr($0, RSTART, RLENGTH)
    sub(/^"objective"[ \t]*:[ \t]*/, "", value)
    total = value + 0
}
NR == 2 {
    rest = $0
    while (match(rest, /"score"[ \t]*:[ \t]*-?[0-9.]+/)) {
        value = substr(rest, RSTART, RLENGTH)
        sub(/^"score"[ \t]*:[ \t]*/, "", value)
        total += value
        rest = substr(rest, RSTART + RLENGTH)
    }
}
END { printf "{\"score\": %.17g}\n", total }'
"""


@pytest.fixture(scope="session")
def stamped_image(image_factory: ImageFactory) -> str:
    return image_factory("opthub-test/i9a-stamped:1", STAMPED)


@pytest.fixture(scope="session")
def cumulative_image(image_factory: ImageFactory) -> str:
    return image_factory("opthub-test/i9a-cumulative:1", CUMULATIVE)


Span = tuple[float, float]


def span_of(aws: AwsStack, ref: TrialRef) -> Span:
    item = result_item(aws, "Evaluations", ref)
    assert item["Status"] == "Success", item
    return float(item["Info"]["start"]), float(item["Info"]["end"])


def most_at_once(spans: Iterable[Span]) -> int:
    """The largest number of spans running at one instant."""
    events = sorted(
        [(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans],
        key=lambda e: (e[0], e[1]),  # an end before a start at the same instant
    )
    running = peak = 0
    for _, step in events:
        running += step
        peak = max(peak, running)
    return peak


def test_n_workers_run_n_containers_at_once_and_never_more(
    tmp_path: Path, aws: AwsStack, stamped_image: str, case_labels: dict[str, str]
) -> None:
    match = new_match()
    config = write_config(tmp_path, aws, {match: match_entry(stamped_image)})
    refs = [
        submit(aws, match, [5], participant=f"p-{n}")[0]  # one trial each: no cap applies
        for n in range(6)
    ]
    stats = make_worker("evaluator", config, case_labels, num=6, workers=3).run()
    assert stats.done == 6
    spans = [span_of(aws, ref) for ref in refs]
    assert most_at_once(spans) == 3
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)


def test_the_per_participant_cap_holds_under_parallelism(
    tmp_path: Path, aws: AwsStack, stamped_image: str, case_labels: dict[str, str]
) -> None:
    match = new_match()
    config = write_config(tmp_path, aws, {match: match_entry(stamped_image)})
    burst = submit(aws, match, [4, 4, 4, 4, 4], participant="burst")
    calm = submit(aws, match, [4, 4], participant="calm")
    worker = make_worker(
        "evaluator", config, case_labels, num=7, workers=4, max_jobs_per_participant=2
    )
    assert worker.run().done == 7
    burst_spans = [span_of(aws, ref) for ref in burst]
    assert most_at_once(burst_spans) <= 2
    # The slots the cap left free ran the other participant beside the burst.
    assert most_at_once(burst_spans + [span_of(aws, ref) for ref in calm]) >= 3


def test_exact_num_with_several_workers(
    tmp_path: Path, aws: AwsStack, sphere_image: str, case_labels: dict[str, str]
) -> None:
    match = new_match()
    config = write_config(tmp_path, aws, {match: match_entry(sphere_image)})
    refs = [submit(aws, match, [[n]], participant=f"p-{n}")[0] for n in range(8)]
    stats = make_worker("evaluator", config, case_labels, num=4, workers=3).run()
    assert stats.done == 4 and stats.received == 4
    written = [ref for ref in refs if items(aws, "Evaluations", ref)]
    assert len(written) == 4
    assert queue_counts(aws, aws.evaluator_queue_url) == (4, 0, 0)


def container_spans(
    client: docker.DockerClient, labels: dict[str, str]
) -> list[tuple[str, str, datetime, datetime]]:
    """(current line, history line, started, finished) of every kept container."""
    found = []
    for info in containers_labelled(client, labels):
        state = client.api.inspect_container(info["Id"])["State"]
        logs = client.api.logs(info["Id"], stdout=False, stderr=True).decode()
        current, history = logs.splitlines()[:2]
        found.append(
            (current, history, _docker_time(state["StartedAt"]), _docker_time(state["FinishedAt"]))
        )
    return found


def _docker_time(text: str) -> datetime:
    # Docker writes nanoseconds; Python reads microseconds.
    head, _, rest = text.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(rest + '000000')[:6]}+00:00")


def test_the_scorer_keeps_each_participant_in_order_while_scoring_several_at_once(
    tmp_path: Path,
    aws: AwsStack,
    cumulative_image: str,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    match = str(uuid.uuid4())
    config = write_config(
        tmp_path,
        aws,
        {match: match_entry("opthub-test/unused:1", cumulative_image)},
        rm=False,
        defer_seconds=1,
    )
    participants = {"p-1": 1, "p-2": 2, "p-3": 3}
    refs = {
        (participant, n): evaluated(aws, match, n, objective, participant=participant)
        for participant, objective in participants.items()
        for n in range(1, 5)
    }
    for n in range(1, 5):
        for participant in participants:
            send_job(aws.clients.sqs, aws.scorer_queue_url, refs[participant, n])
    stats = make_worker("scorer", config, case_labels, num=12, workers=4).run()
    assert stats.done == 12
    for (participant, n), ref in refs.items():
        # objective + every earlier score: c, 2c, 4c, 8c only with each full history.
        expected = participants[participant] * 2 ** (n - 1)
        assert result_item(aws, "Scores", ref)["Value"] == Decimal(expected), (participant, n)
    runs = container_spans(docker_client, case_labels)
    assert len(runs) == 12
    by_participant: dict[int, list[tuple[int, datetime, datetime]]] = {}
    for current, history, started, finished in runs:
        objective = int(json.loads(current)["objective"])
        earlier = json.loads(history)
        # The history the image saw was complete: every earlier trial, in order.
        assert [e["trial_no"] for e in earlier] == [f"{k:04d}" for k in range(1, len(earlier) + 1)]
        by_participant.setdefault(objective, []).append((len(earlier), started, finished))
    for runs_of_one in by_participant.values():
        ordered = sorted(runs_of_one)
        assert all(a[2] <= b[1] for a, b in itertools.pairwise(ordered))
    assert stats.peak_running >= 2
    every = [(s, f) for runs_of_one in by_participant.values() for _, s, f in runs_of_one]
    assert any(a[0] < b[1] and b[0] < a[1] for a in every for b in every if a is not b)


def test_a_broken_match_does_not_slow_a_healthy_one(
    tmp_path: Path, aws: AwsStack, sphere_image: str, case_labels: dict[str, str]
) -> None:
    healthy, broken = new_match(), new_match()
    missing = f"opthub-test/i9a-absent-{uuid.uuid4().hex[:8]}:none"
    config = write_config(
        tmp_path,
        aws,
        {healthy: match_entry(sphere_image), broken: match_entry(missing)},
    )
    broken_refs = submit(aws, broken, [[1], [2], [3]])
    healthy_refs = [submit(aws, healthy, [[n]], participant=f"p-{n}")[0] for n in range(5)]
    stats = make_worker("evaluator", config, case_labels, num=5, workers=2).run()
    assert stats.done == 5
    assert all(result_item(aws, "Evaluations", ref)["Status"] == "Success" for ref in healthy_refs)
    # The broken match was tried at most once per slot, then backed off on its own: its
    # other messages went back without running, and none of them became a Failed trial.
    assert 1 <= stats.retried <= 2
    assert stats.held_back >= 1
    assert all(items(aws, "Evaluations", ref) == [] for ref in broken_refs)
    assert sum(queue_counts(aws, aws.evaluator_queue_url)) == 3


def test_a_fatal_error_in_one_slot_removes_the_other_slots_containers(
    image_factory: ImageFactory,
    stamped_image: str,
    make_executor: ExecutorFactory,
    docker_client: docker.DockerClient,
    case_labels: dict[str, str],
) -> None:
    executor = make_executor()
    queue = MemoryQueue()
    for body in ("sleep", "sleep", "fatal"):
        queue.send(body)

    def running() -> bool:
        found = containers_labelled(docker_client, case_labels)
        return len([c for c in found if c["State"] == "running"]) == 2

    def handler(message: Message, ctx: JobContext) -> Outcome:
        if message.body == "fatal":
            wait_for(running, 30, "both containers running")
            raise FatalError("the administrator's login can no longer be renewed")
        executor.run(RunSpec(image=stamped_image, stdin_lines=["60"], timeout=120), ctx.cancel)
        return Done("ok")

    settings = WorkerSettings(poll_seconds=1, visibility_window=60, workers=3)
    worker = Worker(queue=queue, handler=handler, settings=settings, name="test")
    outcome: list[BaseException] = []
    thread = threading.Thread(target=lambda: _run_catching(worker, outcome), daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], FatalError)
    assert worker.stats.cancelled == 2
    assert containers_labelled(docker_client, case_labels) == []
    assert queue.visible_count() == 3


def _run_catching(worker: Worker, caught: list[BaseException]) -> Any:
    try:
        return worker.run()
    except BaseException as exc:
        caught.append(exc)
        return None
