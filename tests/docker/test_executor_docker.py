"""DockerExecutor against the real daemon, with busybox images built locally.

Each test labels its containers with its own id (``case_labels``) so that it
can check that none is left behind without being confused by other tests or
other runners on the machine.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import docker
import pytest

from opthub_runner_admin.demo.images import BusyboxMissing, build_busybox_image
from opthub_runner_admin.errors import FatalError
from opthub_runner_admin.executor import (
    Cancelled,
    ContainerRejected,
    DockerUnavailable,
    Execution,
    ImageNotAvailable,
    RunSpec,
)
from opthub_runner_admin.executor.docker import (
    LABEL_HOST,
    LABEL_PID,
    LABEL_PID_NAMESPACE,
    connect_docker,
    remove_orphans,
    runner_labels,
    scope_labels,
)
from opthub_runner_admin.executor.docker.streams import Attachment
from opthub_runner_admin.model import Evaluation, HistoryEntry, RunnerScope
from tests.support.docker_fixtures import (
    TEST_IMAGE_PREFIX,
    ExecutorFactory,
    ImageFactory,
    containers_labelled,
)

#: Generous upper bound for a run that should end on its own (a hang fails, not waits).
NORMAL_TIMEOUT = 20.0
#: Timeout of the runs that must be killed.
SHORT_TIMEOUT = 1.0
#: Seconds the test containers would sleep if nothing stopped them: a run that ends
#: before this was stopped (no bound on a measured duration finer than that: CI is busy).
CONTAINER_SLEEP = 30.0


def _image(image_factory: ImageFactory, name: str, script: str) -> str:
    return image_factory(f"{TEST_IMAGE_PREFIX}exec-{name}:latest", script)


def _run(
    make_executor: ExecutorFactory,
    image: str,
    lines: Sequence[str] = (),
    *,
    timeout: float = NORMAL_TIMEOUT,
    cancel: threading.Event | None = None,
    **executor_kwargs: Any,
) -> Execution:
    spec = RunSpec(image=image, stdin_lines=lines, timeout=timeout)
    return make_executor(**executor_kwargs).run(spec, cancel or threading.Event())


def _timed_run(
    make_executor: ExecutorFactory, image: str, timeout: float
) -> tuple[Execution, float]:
    began = time.monotonic()
    execution = _run(make_executor, image, timeout=timeout)
    return execution, time.monotonic() - began


# -- the ordinary path -------------------------------------------------------


def test_stdin_lines_reach_the_container_then_eof(
    image_factory: ImageFactory, make_executor: ExecutorFactory
) -> None:
    # `cat` only ends at EOF: a run that returns in time proves stdin was closed.
    image = _image(image_factory, "cat", "cat\necho END\n")
    execution = _run(make_executor, image, ["first", "second line", "ünïcode {}"])
    assert execution.timed_out is False
    assert execution.exit_code == 0
    assert execution.stdout == "first\nsecond line\nünïcode {}\nEND\n"
    assert execution.stdout_truncated is False
    assert execution.started_at.tzinfo is not None
    assert execution.started_at <= execution.finished_at


def test_large_stdin_is_delivered(
    image_factory: ImageFactory, make_executor: ExecutorFactory
) -> None:
    image = _image(image_factory, "wc", "wc -c\n")
    execution = _run(make_executor, image, ["x" * (2 * 1024 * 1024)])
    assert execution.stdout.strip() == str(2 * 1024 * 1024 + 1)


def test_container_that_ignores_stdin_does_not_block_the_run(
    image_factory: ImageFactory, make_executor: ExecutorFactory
) -> None:
    # 2 MiB fill the pipe and the socket buffers: writing must not block the run.
    image = _image(image_factory, "ignore-stdin", "echo ignored\n")
    execution = _run(make_executor, image, ["y" * (2 * 1024 * 1024)], timeout=10.0)
    assert execution.timed_out is False
    assert execution.stdout == "ignored\n"


def test_environment_and_command_are_passed(
    image_factory: ImageFactory, make_executor: ExecutorFactory
) -> None:
    image = _image(image_factory, "env", 'echo "$GREETING"\necho "$#:$1:$2"\n')
    spec = RunSpec(
        image=image,
        stdin_lines=[],
        timeout=NORMAL_TIMEOUT,
        environment={"GREETING": "hello world"},
        command=["a", "b c"],
    )
    execution = make_executor().run(spec, threading.Event())
    assert execution.stdout == "hello world\n2:a:b c\n"


def test_nonzero_exit_and_stderr_are_reported(
    image_factory: ImageFactory, make_executor: ExecutorFactory
) -> None:
    image = _image(image_factory, "fail", 'echo "it broke" >&2\necho partial\nexit 3\n')
    execution = _run(make_executor, image)
    assert execution.exit_code == 3
    assert execution.timed_out is False
    assert execution.stderr == "it broke\n"
    assert execution.stdout == "partial\n"


def test_concurrent_runs_keep_their_own_streams(
    image_factory: ImageFactory, make_executor: ExecutorFactory
) -> None:
    image = _image(image_factory, "cat", "cat\necho END\n")
    executor = make_executor()

    def run(n: int) -> str:
        spec = RunSpec(image=image, stdin_lines=[f"job {n}"], timeout=NORMAL_TIMEOUT)
        return executor.run(spec, threading.Event()).stdout

    with ThreadPoolExecutor(max_workers=4) as pool:
        outputs = list(pool.map(run, range(8)))
    assert outputs == [f"job {n}\nEND\n" for n in range(8)]


def test_closing_an_attachment_closes_the_http_response_it_came_from(
    image_factory: ImageFactory, docker_client: docker.DockerClient, case_labels: dict[str, str]
) -> None:
    # Python 3.13 prints "Exception ignored ... I/O operation on closed file" when the
    # garbage collector closes an HTTP response whose socket we closed first (one per
    # container). On every version, nothing may be left for the collector: after
    # close(), the response above the socket is closed too.
    image = _image(image_factory, "attach-close", "cat\n")
    container = docker_client.api.create_container(
        image, stdin_open=True, labels={**runner_labels("test"), **case_labels}
    )
    try:
        attachment = Attachment.open(docker_client.api, container["Id"], output_limit=1024)
        response = attachment._response_socket._response
        assert not response.raw.closed
        attachment.close()
        assert response.raw.closed
        assert attachment.sock.fileno() == -1
    finally:
        docker_client.api.remove_container(container["Id"], force=True)


def test_no_container_remains_after_a_run(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    make_executor: ExecutorFactory,
    case_labels: dict[str, str],
) -> None:
    image = _image(image_factory, "cat", "cat\necho END\n")
    _run(make_executor, image, ["x"])
    assert containers_labelled(docker_client, case_labels) == []


def test_rm_false_keeps_the_container_with_its_logs(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    make_executor: ExecutorFactory,
    case_labels: dict[str, str],
) -> None:
    image = _image(image_factory, "kept", "echo kept\n")
    execution = _run(make_executor, image, rm=False)
    assert execution.stdout == "kept\n"
    kept = containers_labelled(docker_client, case_labels)
    try:
        assert len(kept) == 1
        assert kept[0]["State"] == "exited"
        assert docker_client.api.logs(kept[0]["Id"]) == b"kept\n"  # json-file logging
    finally:
        for info in kept:
            docker_client.api.remove_container(info["Id"], force=True)


# -- output that is large, odd or unfinished ---------------------------------


def test_output_over_the_limit_keeps_the_tail(
    image_factory: ImageFactory, make_executor: ExecutorFactory
) -> None:
    script = (
        "dd if=/dev/zero bs=1048576 count=20 2>/dev/null | tr '\\000' x\n"
        "echo\n"
        "echo LAST-LINE\n"
        "dd if=/dev/zero bs=1048576 count=1 2>/dev/null | tr '\\000' y >&2\n"
        "echo ERR-END >&2\n"
    )
    image = _image(image_factory, "flood", script)
    limit = 64 * 1024
    tracemalloc.start()  # memory must stay bounded by the limit, not by the 20 MiB written
    try:
        execution = _run(make_executor, image, output_limit=limit)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024
    assert execution.exit_code == 0
    assert execution.stdout.endswith("x\nLAST-LINE\n")
    assert len(execution.stdout.encode()) == limit
    assert execution.stdout_truncated is True
    assert execution.stderr.endswith("yERR-END\n")
    assert len(execution.stderr.encode()) == limit
    assert execution.stderr_truncated is True


def test_binary_garbage_is_decoded_with_replacement(
    image_factory: ImageFactory, make_executor: ExecutorFactory
) -> None:
    image = _image(
        image_factory, "binary", "printf '\\377\\376\\000\\001bin\\n'\necho '{\"ok\": 1}'\n"
    )
    execution = _run(make_executor, image)
    assert "\ufffd" in execution.stdout
    assert execution.stdout.splitlines()[-1] == '{"ok": 1}'


def test_last_line_without_newline_is_kept(
    image_factory: ImageFactory, make_executor: ExecutorFactory
) -> None:
    image = _image(image_factory, "no-newline", "printf '{\"objective\": 1}'\n")
    execution = _run(make_executor, image)
    assert execution.stdout == '{"objective": 1}'


# -- timeouts and cancel -----------------------------------------------------


def test_timeout_kills_and_leaves_no_container(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    make_executor: ExecutorFactory,
    case_labels: dict[str, str],
) -> None:
    image = _image(image_factory, "sleep", "echo started\nsleep 30\n")
    execution, elapsed = _timed_run(make_executor, image, SHORT_TIMEOUT)
    assert execution.timed_out is True
    assert execution.exit_code is None
    assert execution.stdout == "started\n"  # output before the kill is kept
    assert SHORT_TIMEOUT <= elapsed < CONTAINER_SLEEP
    assert containers_labelled(docker_client, case_labels) == []


def test_container_ignoring_sigterm_still_dies_at_the_timeout(
    image_factory: ImageFactory, make_executor: ExecutorFactory
) -> None:
    script = "trap '' TERM\necho ready\nwhile :; do sleep 1; done\n"
    image = _image(image_factory, "no-term", script)
    execution, elapsed = _timed_run(make_executor, image, SHORT_TIMEOUT)
    assert execution.timed_out is True
    assert execution.stdout == "ready\n"
    assert elapsed < CONTAINER_SLEEP


def test_closing_stdout_and_running_on_still_ends_at_the_timeout(
    image_factory: ImageFactory, make_executor: ExecutorFactory
) -> None:
    image = _image(image_factory, "close-stdout", "echo bye\nexec >&- 2>&-\nsleep 30\n")
    execution, elapsed = _timed_run(make_executor, image, SHORT_TIMEOUT)
    assert execution.timed_out is True
    assert execution.stdout == "bye\n"
    assert SHORT_TIMEOUT <= elapsed < CONTAINER_SLEEP


def test_cancel_raises_and_leaves_no_container(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    make_executor: ExecutorFactory,
    case_labels: dict[str, str],
) -> None:
    image = _image(image_factory, "sleep", "echo started\nsleep 30\n")
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    began = time.monotonic()
    try:
        with pytest.raises(Cancelled):
            _run(make_executor, image, timeout=NORMAL_TIMEOUT, cancel=cancel)
    finally:
        timer.cancel()
    assert time.monotonic() - began < CONTAINER_SLEEP
    assert containers_labelled(docker_client, case_labels) == []


def test_cancel_set_before_the_run_starts_nothing(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    make_executor: ExecutorFactory,
    case_labels: dict[str, str],
) -> None:
    image = _image(image_factory, "sleep", "echo started\nsleep 30\n")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        _run(make_executor, image, cancel=cancel, rm=False)
    assert containers_labelled(docker_client, case_labels) == []


# -- images and the daemon ---------------------------------------------------


def test_missing_image_is_not_available_quickly(
    docker_client: docker.DockerClient,
    make_executor: ExecutorFactory,
    case_labels: dict[str, str],
) -> None:
    image = f"{TEST_IMAGE_PREFIX}does-not-exist:never"
    began = time.monotonic()
    with pytest.raises(ImageNotAvailable) as caught:
        _run(make_executor, image)
    assert time.monotonic() - began < 15.0
    assert image in str(caught.value)
    assert "docker login" in str(caught.value)
    assert containers_labelled(docker_client, case_labels) == []


class _CountingApi:
    """Passes every call to the real low-level client, counting image look-ups."""

    def __init__(self, api: Any) -> None:
        self._api = api
        self.image_calls = 0

    def __getattr__(self, name: str) -> Any:
        if name in ("inspect_image", "pull"):
            self.image_calls += 1
        return getattr(self._api, name)


def test_present_image_is_looked_up_once_per_executor(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
) -> None:
    from opthub_runner_admin.executor.docker import DockerExecutor

    image = _image(image_factory, "kept", "echo kept\n")
    api = _CountingApi(docker_client.api)
    executor = DockerExecutor(client=SimpleNamespace(api=api), labels=case_labels)
    spec = RunSpec(image=image, stdin_lines=[], timeout=NORMAL_TIMEOUT)
    for _ in range(3):
        assert executor.run(spec, threading.Event()).stdout == "kept\n"
    assert api.image_calls == 1


def test_unreachable_daemon_is_transient(make_executor: ExecutorFactory) -> None:
    from opthub_runner_admin.executor.docker import DockerExecutor

    # A fixed API version: the client then contacts nobody until the first call.
    client = docker.DockerClient(base_url="unix:///nonexistent/docker.sock", version="1.41")
    spec = RunSpec(image="anything:1", stdin_lines=[], timeout=NORMAL_TIMEOUT)
    with pytest.raises(DockerUnavailable) as caught:
        DockerExecutor(client=client).run(spec, threading.Event())
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 400


def test_connect_docker_names_the_problem_on_one_line() -> None:
    with pytest.raises(FatalError) as caught:
        connect_docker("unix:///nonexistent/docker.sock")
    message = str(caught.value)
    assert message.startswith(
        "Unable to communicate with Docker. Please ensure Docker is running and accessible. ("
    )
    assert "No such file or directory" in message
    assert "\n" not in message


def test_docker_errors_never_show_the_environment(
    image_factory: ImageFactory,
    make_executor: ExecutorFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Docker rejects a variable with an empty name and quotes it in the error.
    secret = "s3cr3t-value-never-shown"
    image = _image(image_factory, "kept", "echo kept\n")
    spec = RunSpec(image=image, stdin_lines=[], timeout=NORMAL_TIMEOUT, environment={"": secret})
    with caplog.at_level(logging.DEBUG), pytest.raises(ContainerRejected) as caught:
        make_executor().run(spec, threading.Event())
    assert "invalid environment variable" in str(caught.value)
    assert secret not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True
    assert secret not in caplog.text


def test_busybox_image_needs_a_static_busybox(docker_client: docker.DockerClient) -> None:
    with pytest.raises(BusyboxMissing, match="busybox-static"):
        build_busybox_image(docker_client, f"{TEST_IMAGE_PREFIX}never", "true", "/nonexistent")
    with pytest.raises(BusyboxMissing, match="dynamically linked"):
        build_busybox_image(docker_client, f"{TEST_IMAGE_PREFIX}never", "true", sys.executable)


# -- orphans -----------------------------------------------------------------


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def _orphan_candidate(
    docker_client: docker.DockerClient, image: str, labels: dict[str, str], *, start: bool
) -> str:
    created = docker_client.api.create_container(image, labels=labels)
    if start:
        docker_client.api.start(created["Id"])
    return str(created["Id"])


def _own_scope(case_labels: dict[str, str]) -> dict[str, str]:
    """A queue and table of this test alone.

    Every runner that starts on this host reaps the dead runners' orphans of its
    own queue and table, and those without a queue label (an earlier version's):
    the runners the other test sessions start beside this one (scripts/test.sh)
    would take an unscoped test orphan before the test's own call looks for it.
    """
    case = "-".join(case_labels.values())
    return scope_labels(RunnerScope(f"https://sqs.example/1/{case}", f"table-{case}"))


def test_remove_orphans_removes_only_dead_runners_containers_of_this_host(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
) -> None:
    image = _image(image_factory, "sleep", "echo started\nsleep 30\n")
    base = {**runner_labels("orphan-test"), **case_labels, **_own_scope(case_labels)}
    with subprocess.Popen(["sleep", "30"]) as live_runner:
        try:
            dead_running = _orphan_candidate(
                docker_client, image, {**base, LABEL_PID: str(_dead_pid())}, start=True
            )
            dead_created = _orphan_candidate(
                docker_client, image, {**base, LABEL_PID: str(_dead_pid())}, start=False
            )
            alive = _orphan_candidate(
                docker_client, image, {**base, LABEL_PID: str(live_runner.pid)}, start=False
            )
            other_host = _orphan_candidate(
                docker_client,
                image,
                {**base, LABEL_PID: str(_dead_pid()), LABEL_HOST: "some-other-host"},
                start=False,
            )
            # A runner in a container of its own: the pid, dead here, is of its namespace.
            other_namespace = _orphan_candidate(
                docker_client,
                image,
                {**base, LABEL_PID: str(_dead_pid()), LABEL_PID_NAMESPACE: "pid:[1]"},
                start=False,
            )
            earlier_version = _orphan_candidate(
                docker_client,
                image,
                {
                    **{k: v for k, v in base.items() if k != LABEL_PID_NAMESPACE},
                    LABEL_PID: str(_dead_pid()),
                },
                start=False,
            )
            removed = remove_orphans(docker_client)
        finally:
            live_runner.kill()
    assert {dead_running, dead_created, earlier_version} <= set(removed)
    assert alive not in removed
    assert other_host not in removed
    assert other_namespace not in removed
    left = {info["Id"] for info in containers_labelled(docker_client, case_labels)}
    assert left == {alive, other_host, other_namespace}


def test_remove_orphans_of_one_queue_leaves_the_other_competitions_alone(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
) -> None:
    image = _image(image_factory, "sleep", "echo started\nsleep 30\n")
    ours = RunnerScope(queue_url="https://sqs.example/1/compa", table_name="table-a")
    base = {**runner_labels("orphan-scope"), **case_labels, LABEL_PID: str(_dead_pid())}

    def orphan(labels: dict[str, str]) -> str:
        return _orphan_candidate(docker_client, image, {**base, **labels}, start=False)

    same = orphan(scope_labels(ours))
    other_queue = orphan(scope_labels(RunnerScope("https://sqs.example/1/compb", "table-a")))
    other_table = orphan(scope_labels(RunnerScope(ours.queue_url, "table-b")))
    earlier_version = orphan({})  # no queue label: reaped as before

    removed = remove_orphans(docker_client, scope=ours)

    # Any runner starting beside this test reaps the earlier version's orphan too
    # (see _own_scope): that it is gone is checked below, not who removed it.
    assert same in removed
    left = {info["Id"] for info in containers_labelled(docker_client, case_labels)}
    assert earlier_version not in left
    assert left == {other_queue, other_table}


def test_runners_starting_together_reap_the_same_orphans_without_failing(
    docker_client: docker.DockerClient,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
) -> None:
    # Two runners starting on one host at once both try to remove a dead
    # runner's containers; Docker answers the slower one 409 "removal already
    # in progress", which once ended a runner's start-up. The race is real
    # (several threads on the real daemon), so it is not met on every run.
    image = _image(image_factory, "sleep", "echo started\nsleep 30\n")
    labels = {
        **runner_labels("orphan-race"),
        **case_labels,
        **_own_scope(case_labels),
        LABEL_PID: str(_dead_pid()),
    }
    orphans = {_orphan_candidate(docker_client, image, labels, start=True) for _ in range(6)}

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: remove_orphans(docker_client), range(4)))

    assert orphans <= {cid for removed in results for cid in removed}
    assert not list(containers_labelled(docker_client, case_labels))


def test_runner_labels_identify_this_process() -> None:
    labels = runner_labels("instance-7")
    assert labels["opthub-runner"] == "1"
    assert labels["opthub-runner.pid"] == str(os.getpid())
    assert labels["opthub-runner.instance"] == "instance-7"
    assert labels["opthub-runner.host"]
    assert labels["opthub-runner.pidns"] == os.readlink("/proc/self/ns/pid")
    assert labels["opthub-runner.pidns"].startswith("pid:[")


# -- the demo scripts --------------------------------------------------------


@pytest.mark.parametrize(
    ("solution", "objective"),
    [("[1.5, -2]", 6.25), ("[0.5,1e1, -3]", 109.25), ("[]", 0), ("[7]", 49)],
)
def test_sphere_script_sums_squares(
    sphere_image: str, make_executor: ExecutorFactory, solution: str, objective: float
) -> None:
    execution = _run(make_executor, sphere_image, [solution])
    result = json.loads(execution.stdout.splitlines()[-1])
    assert result == {"objective": pytest.approx(objective)}


def test_sphere_script_reports_bad_input(sphere_image: str, make_executor: ExecutorFactory) -> None:
    execution = _run(make_executor, sphere_image, ['{"x": 1}'])
    assert "error" in json.loads(execution.stdout.splitlines()[-1])


def _history(*objectives: float) -> str:
    entries = [
        HistoryEntry(trial_no=f"{n:04d}", evaluation=Evaluation(objective=value), score=value)
        for n, value in enumerate(objectives, start=1)
    ]
    return json.dumps([entry.as_json() for entry in entries])


@pytest.mark.parametrize(
    ("current", "earlier", "score"),
    [(3.5, (2.0, 4), 2.0), (3.5, (), 3.5), (-1.5e-3, (0.25,), -1.5e-3), (1, (5, -7, 2), -7)],
)
def test_best_so_far_script_scores_the_smallest_objective(
    best_so_far_image: str,
    make_executor: ExecutorFactory,
    current: float,
    earlier: tuple[float, ...],
    score: float,
) -> None:
    lines = [json.dumps(Evaluation(objective=current).as_json()), _history(*earlier)]
    execution = _run(make_executor, best_so_far_image, lines)
    assert json.loads(execution.stdout.splitlines()[-1]) == {"score": pytest.approx(score)}
    assert execution.stderr == "".join(line + "\n" for line in lines)
