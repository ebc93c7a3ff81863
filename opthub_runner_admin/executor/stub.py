"""An executor without Docker: each image is a Python function, or the runs are scripted.

The jobs and the worker are tested through it, and a runner can be tried
without a daemon. It keeps the Docker executor's contract (one suite,
``tests/contracts/test_executor_contract.py``, holds both to it): the stdin lines in,
the tail of stdout and stderr out, the exit code, the timeout, the cancel
event, an unknown image refused as the administrator's to fix. Its usage
figures are the wall time and the program thread's own CPU time; it has no
peak memory to give (``NO_MEMORY_OF_ITS_OWN``).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from .base import Cancelled, Execution, ImageNotAvailable, RunSpec
from .usage import TrialUsage

#: Bytes kept per stream, as the Docker executor's default.
DEFAULT_OUTPUT_LIMIT = 4 * 1024 * 1024
#: How often a waiting run looks at its cancel event.
_CANCEL_POLL = 0.05
#: Why a stub run has no peak memory.
NO_MEMORY_OF_ITS_OWN = (
    "peak memory not measured: the stub executor runs images as Python functions inside"
    " the runner's process, which keep no memory of their own"
)


@dataclass(frozen=True)
class ProgramInput:
    """What a container would see: stdin, environment, arguments; ``stopped`` at a kill."""

    stdin_lines: Sequence[str]
    environment: Mapping[str, str] = field(repr=False)
    command: Sequence[str]
    #: Set when the run is killed (timeout or cancel): a long program should return.
    stopped: threading.Event


@dataclass
class ProgramOutput:
    """What the program wrote and how it ended. Write to it as you go: a kill keeps it."""

    stdout: str = ""
    stderr: str = ""
    exit_code: int = 0


#: An image as a function: reads its input, writes into its output.
Program = Callable[[ProgramInput, ProgramOutput], None]


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


class StubExecutor:
    """An ``Executor`` whose images are ``programs`` (by image name), or scripted ``answers``.

    ``answers`` (an ``Execution`` to return or an exception to raise) are
    used first, one per run, for tests that need a run's exact result; then
    each run calls the program of its image. Every spec run is kept in
    ``specs``, in order.
    """

    def __init__(
        self,
        *,
        programs: Mapping[str, Program] | None = None,
        answers: Iterable[Execution | Exception] = (),
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
    ) -> None:
        if output_limit <= 0:
            raise ValueError("output_limit must be positive")
        self._programs = dict(programs or {})
        self._answers: deque[Execution | Exception] = deque(answers)
        self._output_limit = output_limit
        self._lock = threading.Lock()
        self.specs: list[RunSpec] = []

    def run(self, spec: RunSpec, cancel: threading.Event) -> Execution:
        """Run ``spec``'s program in a thread, bounded by its timeout, deadline and ``cancel``."""
        with self._lock:
            self.specs.append(spec)
            answer = self._answers.popleft() if self._answers else None
        if cancel.is_set():
            raise Cancelled(f"run of {spec.image} cancelled before it started")
        if isinstance(answer, Exception):
            raise answer
        if answer is not None:
            return answer
        program = self._programs.get(spec.image)
        if program is None:
            raise ImageNotAvailable(
                f"image {spec.image} is not available: build or pull it, or `docker login`"
                " to its registry"
            )
        return self._call(program, spec, cancel)

    def _call(self, program: Program, spec: RunSpec, cancel: threading.Event) -> Execution:
        output = ProgramOutput()
        stopped = threading.Event()
        given = ProgramInput(
            stdin_lines=list(spec.stdin_lines),
            environment=dict(spec.environment),
            command=list(spec.command or ()),
            stopped=stopped,
        )
        started_at = _utc_now()
        began = time.monotonic()
        limit = began + spec.timeout
        if spec.deadline is not None:
            limit = min(limit, spec.deadline)
        cpu = _CpuClock()
        thread = threading.Thread(
            target=cpu.timed, args=(program, given, output), name=f"stub-{spec.image}", daemon=True
        )
        thread.start()
        while thread.is_alive():
            if cancel.is_set():
                stopped.set()
                raise Cancelled(f"run of {spec.image} cancelled")
            left = limit - time.monotonic()
            if left <= 0:
                stopped.set()
                usage = cpu.usage(time.monotonic() - began)
                return self._execution(output, started_at, usage, timed_out=True)
            thread.join(min(left, _CANCEL_POLL))
        usage = cpu.usage(time.monotonic() - began)
        return self._execution(output, started_at, usage, timed_out=False)

    def _execution(
        self, output: ProgramOutput, started_at: datetime, usage: TrialUsage, *, timed_out: bool
    ) -> Execution:
        stdout, stdout_cut = _tail(output.stdout, self._output_limit)
        stderr, stderr_cut = _tail(output.stderr, self._output_limit)
        return Execution(
            exit_code=None if timed_out else output.exit_code,
            stdout=stdout,
            stderr=stderr,
            timed_out=timed_out,
            started_at=started_at,
            finished_at=_utc_now(),
            stdout_truncated=stdout_cut,
            stderr_truncated=stderr_cut,
            usage=usage,
        )


class _CpuClock:
    """The CPU time of the thread that runs a program (its own clock, read at its end)."""

    def __init__(self) -> None:
        self._seconds: float | None = None

    def timed(self, program: Program, given: ProgramInput, output: ProgramOutput) -> None:
        try:
            program(given, output)
        finally:
            self._seconds = time.thread_time()

    def usage(self, wall: float) -> TrialUsage:
        """The figures so far: a program still running (killed) has no CPU time yet."""
        seconds = self._seconds
        if seconds is None:
            return TrialUsage(
                wall_seconds=wall,
                not_measured="not measured: the stub's program still ran when it was stopped",
            )
        return TrialUsage(wall_seconds=wall, cpu_seconds=seconds, not_measured=NO_MEMORY_OF_ITS_OWN)


def _tail(text: str, limit: int) -> tuple[str, bool]:
    """The last ``limit`` bytes of ``text`` as UTF-8 (a cut character becomes U+FFFD)."""
    raw = text.encode("utf-8", errors="replace")
    if len(raw) <= limit:
        return text, False
    return raw[-limit:].decode("utf-8", errors="replace"), True
