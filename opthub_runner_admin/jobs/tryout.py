"""Try an image as the runner would: same executor, limits, parsing and messages; no AWS.

An administrator who built a problem or indicator image wants to know,
before the competition opens, what the runner will make of it: the parsed
result, what the participant will read, and the details only the
administrator gets. ``ImageTrial`` runs the image through the same
``Executor`` the daemon builds (``runner.assembly.build_executor``), with the same stdin
lines the jobs write, and reads the output with the jobs' own
``interpret_evaluation`` / ``interpret_score``, so that nothing here can
drift from what the daemon does. The CLI's ``try`` and ``doctor`` call it.
The environment's values are blanked out of everything it reports, as the
jobs blank them out of Failed items.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..executor import Execution, Executor, RunSpec
from ..matches import ImageSpec, MatchSource
from ..matches.file import FileMatchSource
from ..model import JSON, Evaluation, Failure, Score, bare_match_id
from .evaluate import interpret_evaluation
from .protocol import STDERR_TAIL
from .redaction import redact_failure, redact_streams
from .score import interpret_score

log = logging.getLogger(__name__)

_MIB = 1024 * 1024


class TryInputError(ValueError):
    """The input given to ``try`` cannot be what the runner would send; one line says why."""


@dataclass(frozen=True)
class TryResult:
    """One run of an image and what the runner made of it."""

    role: str
    image: str
    timeout: float
    outcome: Evaluation | Score | Failure
    execution: Execution
    #: Highest memory use of the container (bytes), if it could be measured.
    peak_memory: int | None = None
    #: Where ``peak_memory`` comes from, or why there is none.
    peak_memory_note: str = "not measured"

    @property
    def succeeded(self) -> bool:
        return not isinstance(self.outcome, Failure)

    @property
    def duration(self) -> float:
        return (self.execution.finished_at - self.execution.started_at).total_seconds()


class MemorySampler(Protocol):
    """Watches the runs of one trial: the highest memory use seen (bytes), and where it is from."""

    @property
    def peak(self) -> int | None: ...

    @property
    def note(self) -> str: ...

    def __enter__(self) -> object: ...

    def __exit__(self, *exc_info: object) -> None: ...


class ImageTrial:
    """Runs problem and indicator images as the evaluator and the scorer do."""

    def __init__(
        self,
        *,
        executor: Executor,
        timeout: float,
        command: Sequence[str] | None = None,
        memory: MemorySampler | None = None,
    ) -> None:
        self._executor = executor
        self._timeout = timeout
        self._command = command
        self._memory = memory

    def problem(self, image: ImageSpec, solution: JSON) -> TryResult:
        """Evaluate ``solution`` (the variable a participant submits)."""
        execution, peak, note = self._run(image, [json.dumps(solution)])
        outcome = redact_failure(
            interpret_evaluation(execution, time_limit=self._timeout), image.environment
        )
        shown = redact_streams(execution, image.environment)
        return TryResult("problem", image.image, self._timeout, outcome, shown, peak, note)

    def indicator(
        self, image: ImageSpec, current: Evaluation, history: Sequence[Mapping[str, Any]]
    ) -> TryResult:
        """Score ``current`` after ``history`` (earlier trials as the scorer sends them)."""
        lines = [json.dumps(current.as_json()), json.dumps(list(history))]
        execution, peak, note = self._run(image, lines)
        outcome = redact_failure(
            interpret_score(execution, time_limit=self._timeout), image.environment
        )
        shown = redact_streams(execution, image.environment)
        return TryResult("indicator", image.image, self._timeout, outcome, shown, peak, note)

    def _run(self, image: ImageSpec, lines: list[str]) -> tuple[Execution, int | None, str]:
        spec = RunSpec(
            image=image.image,
            stdin_lines=lines,
            timeout=self._timeout,
            environment=image.environment,
            command=self._command if self._command is not None else image.command,
        )
        if self._memory is None:
            return self._executor.run(spec, threading.Event()), None, "not measured"
        with self._memory:
            execution = self._executor.run(spec, threading.Event())
        return execution, self._memory.peak, self._memory.note


# --- inputs --------------------------------------------------------------------------


def parse_json(text: str, what: str) -> JSON:
    """JSON text from the command line or a file; ``TryInputError`` in one line otherwise."""
    if not text.strip():
        raise TryInputError(f"no {what.removeprefix('the ')} given: the input is empty")
    try:
        value: JSON = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise TryInputError(f"{what} is not JSON ({exc})") from None
    return value


def parse_current(text: str) -> Evaluation:
    """The evaluation to score, as the scorer reads it from the table."""
    value = parse_json(text, "--current")
    if not isinstance(value, dict) or "objective" not in value:
        raise TryInputError(
            '--current must be an evaluation object with at least "objective",'
            ' e.g. {"objective": 1.5, "constraint": null}'
        )
    info = value.get("info")
    feasible = value.get("feasible")
    return Evaluation(
        objective=value["objective"],
        constraint=value.get("constraint"),
        info=info if isinstance(info, dict) else {},
        feasible=feasible if isinstance(feasible, bool) else None,
    )


def parse_history(text: str) -> list[dict[str, Any]]:
    """Earlier trials: a JSON list of objects as the scorer's second stdin line."""
    value = parse_json(text, "--history")
    if not isinstance(value, list) or not all(isinstance(entry, dict) for entry in value):
        raise TryInputError(
            '--history must be a JSON list of earlier trials, e.g. [{"trial_no": "1",'
            ' "objective": 2.0, "constraint": null, "info": {}, "feasible": null, "score": 2.0}]'
        )
    return value


def environment_for(
    role: str,
    *,
    pairs: Sequence[str] = (),
    matches_file: Path | None = None,
    match_id: str | None = None,
    matches: Callable[[], MatchSource] | None = None,
) -> dict[str, str]:
    """The container's environment: the match's, then ``-e K=V``.

    The match comes from ``matches_file`` when set, else from ``matches`` (the
    OptHub API behind the administrator's login, as the runner asks it).
    """
    environment: dict[str, str] = {}
    if match_id is not None:
        if matches_file is not None:
            source: MatchSource = FileMatchSource(matches_file)
        elif matches is not None:
            source = matches()
        else:
            raise TryInputError(
                "--match needs a config with 'matches_file' or the OptHub API (pass --config,"
                " or use -e K=V)"
            )
        match = source.get(bare_match_id(match_id))
        spec = match.problem if role == "problem" else match.indicator
        environment.update(spec.environment)
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise TryInputError(f"-e expects KEY=VALUE, got {key!r}")
        environment[key] = value
    return environment


# --- what the administrator reads ----------------------------------------------------


def report_lines(result: TryResult) -> list[str]:
    """The parsed result, what the participant sees, and the administrator's details."""
    outcome = result.outcome
    execution = result.execution
    lines = [f"{result.role} image {result.image} (timeout {result.timeout:.0f} s)"]
    if isinstance(outcome, Evaluation):
        lines.append(f"result: {json.dumps(outcome.as_json())}")
        lines.append("participant sees: Success")
    elif isinstance(outcome, Score):
        lines.append(f"result: {json.dumps({'score': outcome.value})}")
        lines.append("participant sees: Success")
    else:
        lines.append("result: none (the trial is Failed)")
        lines.append(f"participant sees: Failed: {outcome.message}")
    lines.append("administrator:")
    if execution.timed_out:
        lines.append("  exit code: none (killed at the timeout)")
    else:
        lines.append(f"  exit code: {execution.exit_code}")
        if execution.exit_code not in (0, None) and result.succeeded:
            lines.append("  warning: non-zero exit but a valid result; the runner counts a success")
    lines.append(f"  duration: {result.duration:.2f} s")
    peak = result.peak_memory
    lines.append(
        f"  peak memory: {peak / _MIB:.1f} MiB ({result.peak_memory_note})"
        if peak is not None
        else f"  peak memory: {result.peak_memory_note}"
    )
    stderr = execution.stderr.strip()
    lines.append(f"  stderr (end): {stderr[-STDERR_TAIL:] if stderr else '(empty)'}")
    if isinstance(outcome, Failure):
        lines.append(f"  stored admin message: {outcome.admin_message}")
    return lines
