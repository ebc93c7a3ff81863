"""One contract for every executor: the Docker one and the in-package stub.

Each case names a behaviour by an image: for Docker a busybox image running a
sh script, for the stub a Python program doing the same. A job tested on the
stub thus meets what it would meet on Docker (stdin, tail of the output, exit
code, timeout, cancel, unknown image).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from opthub_runner_admin.executor import Cancelled, Execution, Executor, ImageNotAvailable, RunSpec
from opthub_runner_admin.executor.stub import ProgramInput, ProgramOutput, StubExecutor
from tests.support.docker_fixtures import TEST_IMAGE_PREFIX, ExecutorFactory, ImageFactory
from tests.support.tiers import using

#: A run that should end on its own well before this.
NORMAL_TIMEOUT = 20.0
#: Timeout of the runs that must be killed.
SHORT_TIMEOUT = 1.0


def _cat(given: ProgramInput, out: ProgramOutput) -> None:
    out.stdout = "".join(f"{line}\n" for line in given.stdin_lines) + "END\n"


def _env(given: ProgramInput, out: ProgramOutput) -> None:
    args = list(given.command)
    out.stdout = f"{given.environment.get('GREETING', '')}\n{len(args)}:{args[0]}:{args[1]}\n"


def _fail(given: ProgramInput, out: ProgramOutput) -> None:
    out.stderr = "it broke\n"
    out.stdout = "partial\n"
    out.exit_code = 3


def _flood(given: ProgramInput, out: ProgramOutput) -> None:
    out.stdout = "x" * 200_000 + "\nLAST-LINE\n"
    out.stderr = "y" * 100_000 + "ERR-END\n"


def _sleep(given: ProgramInput, out: ProgramOutput) -> None:
    out.stdout = "started\n"
    given.stopped.wait(30)


#: Behaviour name -> (busybox sh script, the same as a stub program).
BEHAVIOURS: dict[str, tuple[str, Callable[[ProgramInput, ProgramOutput], None]]] = {
    "cat": ("cat\necho END\n", _cat),
    "env": ('echo "$GREETING"\necho "$#:$1:$2"\n', _env),
    "fail": ('echo "it broke" >&2\necho partial\nexit 3\n', _fail),
    "flood": (
        "dd if=/dev/zero bs=1000 count=200 2>/dev/null | tr '\\000' x\necho\necho LAST-LINE\n"
        "dd if=/dev/zero bs=1000 count=100 2>/dev/null | tr '\\000' y >&2\necho ERR-END >&2\n",
        _flood,
    ),
    "sleep": ("echo started\nsleep 30\n", _sleep),
}


@dataclass
class Harness:
    image: Callable[[str], str]
    executor: Callable[..., Executor]


@pytest.fixture(params=[using("docker", "image_factory", "make_executor"), "stub"])
def harness(request: pytest.FixtureRequest) -> Harness:
    if request.param == "stub":
        programs = {
            f"{TEST_IMAGE_PREFIX}contract-{n}:latest": p for n, (_, p) in BEHAVIOURS.items()
        }
        return Harness(
            image=lambda name: f"{TEST_IMAGE_PREFIX}contract-{name}:latest",
            executor=lambda **kwargs: StubExecutor(programs=programs, **kwargs),
        )
    image_factory: ImageFactory = request.getfixturevalue("image_factory")
    make_executor: ExecutorFactory = request.getfixturevalue("make_executor")
    return Harness(
        image=lambda name: image_factory(
            f"{TEST_IMAGE_PREFIX}contract-{name}:latest", BEHAVIOURS[name][0]
        ),
        executor=make_executor,
    )


def _run(
    harness: Harness,
    name: str,
    lines: list[str] | None = None,
    *,
    timeout: float = NORMAL_TIMEOUT,
    cancel: threading.Event | None = None,
    **kwargs: object,
) -> Execution:
    spec = RunSpec(image=harness.image(name), stdin_lines=lines or [], timeout=timeout)
    return harness.executor(**kwargs).run(spec, cancel or threading.Event())


def test_stdin_lines_in_stdout_out(harness: Harness) -> None:
    execution = _run(harness, "cat", ["first", "second line", "ünïcode {}"])
    assert execution.timed_out is False
    assert execution.exit_code == 0
    assert execution.stdout == "first\nsecond line\nünïcode {}\nEND\n"
    assert execution.stdout_truncated is False
    assert execution.started_at.tzinfo is not None
    assert execution.started_at <= execution.finished_at


def test_environment_and_command_are_passed(harness: Harness) -> None:
    spec = RunSpec(
        image=harness.image("env"),
        stdin_lines=[],
        timeout=NORMAL_TIMEOUT,
        environment={"GREETING": "hello world"},
        command=["a", "b c"],
    )
    execution = harness.executor().run(spec, threading.Event())
    assert execution.stdout == "hello world\n2:a:b c\n"


def test_nonzero_exit_and_stderr(harness: Harness) -> None:
    execution = _run(harness, "fail")
    assert execution.exit_code == 3
    assert execution.timed_out is False
    assert execution.stderr == "it broke\n"
    assert execution.stdout == "partial\n"


def test_output_over_the_limit_keeps_the_tail(harness: Harness) -> None:
    limit = 64 * 1024
    execution = _run(harness, "flood", output_limit=limit)
    assert execution.stdout.endswith("x\nLAST-LINE\n")
    assert len(execution.stdout.encode()) == limit
    assert execution.stdout_truncated is True
    assert execution.stderr.endswith("yERR-END\n")
    assert execution.stderr_truncated is True


def test_timeout_kills_and_keeps_the_output_so_far(harness: Harness) -> None:
    execution = _run(harness, "sleep", timeout=SHORT_TIMEOUT)
    assert execution.timed_out is True
    assert execution.exit_code is None
    assert execution.stdout == "started\n"


def _check_usage_shape(execution: Execution) -> None:
    """Figures or a reason: peak memory and CPU time are known, or ``not_measured`` says why."""
    usage = execution.usage
    assert usage.wall_seconds >= 0
    assert usage.peak_memory is None or usage.peak_memory > 0
    assert usage.cpu_seconds is None or usage.cpu_seconds >= 0
    if not usage.measured:
        assert usage.not_measured.startswith(("not measured", "peak memory not measured"))
    # What the figures count from: the input, unless the container was started ahead.
    assert usage.from_start is False


def test_a_run_reports_what_it_used(harness: Harness) -> None:
    _check_usage_shape(_run(harness, "cat", ["x"]))
    _check_usage_shape(_run(harness, "fail"))


def test_a_timed_out_run_reports_its_wall_time_up_to_the_kill(harness: Harness) -> None:
    execution = _run(harness, "sleep", timeout=SHORT_TIMEOUT)
    assert execution.timed_out
    _check_usage_shape(execution)
    # The kill comes at the configured limit, never before it.
    assert execution.usage.wall_seconds >= SHORT_TIMEOUT


def test_cancel_raises(harness: Harness) -> None:
    cancel = threading.Event()
    timer = threading.Timer(0.5, cancel.set)
    timer.start()
    try:
        with pytest.raises(Cancelled):
            _run(harness, "sleep", cancel=cancel)
    finally:
        timer.cancel()
    assert cancel.is_set()


def test_cancel_set_before_the_run_starts_nothing(harness: Harness) -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        _run(harness, "sleep", cancel=cancel)


def test_unknown_image_is_not_available(harness: Harness) -> None:
    image = f"{TEST_IMAGE_PREFIX}does-not-exist:never"
    spec = RunSpec(image=image, stdin_lines=[], timeout=NORMAL_TIMEOUT)
    with pytest.raises(ImageNotAvailable) as caught:
        harness.executor().run(spec, threading.Event())
    assert image in str(caught.value)
    assert "docker login" in str(caught.value)


# -- the stub's own scripted answers -------------------------------------------------


def test_stub_answers_come_first_and_every_spec_is_kept() -> None:
    scripted = Execution(
        exit_code=0,
        stdout="scripted\n",
        stderr="",
        timed_out=False,
        started_at=_now(),
        finished_at=_now(),
    )
    stub = StubExecutor(answers=[scripted, ImageNotAvailable("gone")])
    first = RunSpec(image="any:1", stdin_lines=["a"], timeout=1)
    assert stub.run(first, threading.Event()) is scripted
    with pytest.raises(ImageNotAvailable, match="gone"):
        stub.run(RunSpec(image="any:2", stdin_lines=[], timeout=1), threading.Event())
    assert [spec.image for spec in stub.specs] == ["any:1", "any:2"]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def test_a_deadline_before_the_timeout_ends_the_run() -> None:
    stub = StubExecutor(programs={"sleep:1": _sleep})
    spec = RunSpec(
        image="sleep:1", stdin_lines=[], timeout=NORMAL_TIMEOUT, deadline=time.monotonic() + 0.2
    )
    execution = stub.run(spec, threading.Event())
    assert execution.timed_out is True
