"""Evaluate one solution with the match's problem image."""

from __future__ import annotations

import json
import logging
import threading

from ..executor import Execution
from ..model import Evaluation, Failure, TrialRef
from ..queue import Message
from .messages import JobMessage
from .outcome import JobContext, Outcome
from .protocol import admin_details, read_result
from .trial_job import TrialJob, timing_of

log = logging.getLogger(__name__)


class EvaluateJob(TrialJob[Evaluation]):
    kind = "evaluation"

    def handle(self, job: JobMessage, message: Message, ctx: JobContext) -> Outcome:
        ref = job.ref
        if self.store.is_evaluated(ref):
            log.info("%s is already evaluated; message deleted", ref)
            return self.already_done()
        solution = self.store.get_solution(ref)
        if solution is None:
            return self.missing_input("solution", job, message)
        match = self.match_of(ref)
        log.info("evaluating %s with %s", ref, match.problem.image)
        execution = self.run_container(ref, match.problem, [json.dumps(solution.variable)], ctx)
        result = interpret_evaluation(execution, time_limit=self.timeout)
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
