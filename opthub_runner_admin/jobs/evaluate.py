"""Evaluate one solution with the match's problem image."""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass

from ..executor import Execution
from ..model import Evaluation, Failure, TrialRef
from ..queue import Message
from ..settings.sizes import format_size
from ..store.base import JobInput, Solution
from .messages import JobMessage
from .outcome import JobContext, Outcome
from .protocol import admin_details, read_result
from .redaction import redact_failure
from .trial_job import TrialJob, timing_of

log = logging.getLogger(__name__)

#: Largest solution (its JSON line, in bytes) given to a problem image by default.
DEFAULT_MAX_SOLUTION_BYTES = 1024 * 1024


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class EvaluateJob(TrialJob[Solution, Evaluation]):
    """``max_solution_bytes`` bounds the solution's JSON line: a larger one fails unrun."""

    kind = "evaluation"
    done_as = "evaluated"
    input_name = "solution"

    max_solution_bytes: int = DEFAULT_MAX_SOLUTION_BYTES

    def read_input(self, ref: TrialRef) -> JobInput[Solution]:
        return self.store.evaluation_input(ref)

    def handle_input(
        self, job: JobMessage, solution: Solution, message: Message, ctx: JobContext
    ) -> Outcome:
        ref = job.ref
        line = json.dumps(solution.variable)
        too_large = self.oversized(line)
        if too_large is not None:
            log.info("%s evaluation Failed: %s", ref, too_large.message)
            return self.write_failure(ref, too_large, ctx.cancel)
        match = self.match_of(ref)
        log.info("evaluating %s with %s", ref, match.problem.image)
        execution = self.run_container(ref, match.problem, [line], ctx, message)
        result = redact_failure(
            interpret_evaluation(execution, time_limit=self.timeout), match.problem.environment
        )
        if execution.exit_code not in (0, None) and isinstance(result, Evaluation):
            log.warning(
                "%s: the problem image exited with code %s but printed a result; "
                "counted as a success",
                ref,
                execution.exit_code,
            )
        outcome = self.write(
            ref,
            lambda r: self.store.put_evaluation(ref, r, timing_of(execution)),
            result,
            ctx.cancel,
        )
        _log_result(ref, result)
        return outcome

    def write_failure(self, ref: TrialRef, failure: Failure, cancel: threading.Event) -> Outcome:
        return self.write(
            ref, lambda r: self.store.put_evaluation(ref, r, timing_of()), failure, cancel
        )

    def oversized(self, line: str) -> Failure | None:
        """A Failed evaluation for a solution over ``max_solution_bytes``, before any container.

        A huge solution costs memory in the runner and in the problem image
        for nothing a fair competition needs; the participant learns the bound.
        """
        size = len(line.encode("utf-8"))
        if size <= self.max_solution_bytes:
            return None
        return Failure(
            message=(
                f"The solution is too large: {format_size(size)} where at most"
                f" {format_size(self.max_solution_bytes)} is accepted."
            ),
            admin_message=(
                f"solution of {size} bytes (as JSON) exceeds max_solution_bytes"
                f" ({self.max_solution_bytes}); no container was started"
            ),
        )


def _log_result(ref: object, result: Evaluation | Failure) -> None:
    if isinstance(result, Failure):
        log.info("%s evaluation Failed: %s", ref, result.message)
    else:
        log.info("%s evaluation Success: objective=%s", ref, json.dumps(result.objective)[:200])


def interpret_evaluation(execution: Execution, *, time_limit: float) -> Evaluation | Failure:
    """Turn a problem image's run into the evaluation the contract prescribes."""
    read = read_result(
        execution,
        time_limit=time_limit,
        task="evaluation",
        program="problem program",
        hint=" Check that the solution has the format the problem expects.",
    )
    if isinstance(read, Failure):
        return read
    result = read.result
    if "objective" not in result:
        return Failure(
            message="The evaluation failed: the problem program returned no objective.",
            admin_message=admin_details(execution, "the result has no 'objective'", read.line),
        )
    info = result.get("info")
    if info is None:
        info = {}
    elif not isinstance(info, dict):
        log.warning("'info' is not an object; stored as {\"info\": <value>}")
        info = {"info": info}
    feasible = result.get("feasible")
    if feasible is not None and not isinstance(feasible, bool):
        log.warning("'feasible' is neither a boolean nor null; stored as null")
        feasible = None
    return Evaluation(
        objective=result["objective"],
        constraint=result.get("constraint"),
        info=info,
        feasible=feasible,
    )
