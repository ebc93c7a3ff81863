"""Score one successful evaluation with the match's indicator image and the history."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence

from ..executor import Execution, Executor
from ..history import HistoryBuilder
from ..matches import MatchSource
from ..model import Failure, Score
from ..queue import Message
from ..store import Store
from .messages import JobMessage
from .outcome import JobContext, Outcome, Retry
from .protocol import admin_details, read_result
from .trial_job import TrialJob, timing_of

log = logging.getLogger(__name__)


class ScoreJob(TrialJob[Score]):
    kind = "score"
    ordered = True

    def __init__(
        self,
        *,
        store: Store,
        matches: MatchSource,
        executor: Executor,
        history: HistoryBuilder,
        timeout: int,
        max_deferrals: int,
        defer_seconds: int,
        command: Sequence[str] | None = None,
    ) -> None:
        super().__init__(
            store=store, matches=matches, executor=executor, timeout=timeout, command=command
        )
        self.history = history
        self.max_deferrals = max_deferrals
        self.defer_seconds = defer_seconds

    def handle(self, job: JobMessage, message: Message, ctx: JobContext) -> Outcome:
        ref = job.ref
        if self.store.is_scored(ref):
            log.info("%s is already scored; message deleted", ref)
            return self.already_done()
        evaluation = self.store.get_evaluation(ref)
        if evaluation is None:
            failure = Failure(
                message="The score could not be computed: the evaluation was not found.",
                admin_message=f"no Success evaluation in the table for {ref}",
            )
            return self.write(
                ref, lambda r: self.store.put_score(ref, r, timing_of()), failure, ctx.cancel
            )
        history = self.history.collect(ref)
        if history.missing:
            if job.deferrals < self.max_deferrals:
                log.info(
                    "%s waits for the results of earlier trials %s (deferral %d of %d)",
                    ref,
                    _listing(history.missing),
                    job.deferrals + 1,
                    self.max_deferrals,
                )
                return Retry(self.defer_seconds, "earlier trials pending", body=job.deferred_body())
            log.warning(
                "%s: scored without earlier trials %s, whose results are still missing after "
                "%d deferrals",
                ref,
                _listing(history.missing),
                job.deferrals,
            )
            self.history.give_up(ref, history.missing)
        match = self.match_of(ref)
        lines = [
            json.dumps(evaluation.as_json()),
            json.dumps([entry.as_json() for entry in history.entries]),
        ]
        log.info(
            "scoring %s with %s (%d earlier trials)",
            ref,
            match.indicator.image,
            len(history.entries),
        )
        execution = self.run_container(ref, match.indicator, lines, ctx)
        result = interpret_score(execution)
        outcome = self.write(
            ref, lambda r: self.store.put_score(ref, r, timing_of(execution)), result, ctx.cancel
        )
        if isinstance(result, Failure):
            log.info("%s score Failed: %s", ref, result.message)
        else:
            log.info("%s score Success: %s", ref, result.value)
        return outcome


def _listing(trials: list[str], most: int = 10) -> str:
    shown = ", ".join(trials[:most])
    return shown + (f" and {len(trials) - most} more" if len(trials) > most else "")


def interpret_score(execution: Execution) -> Score | Failure:
    """Turn an indicator image's run into the score the contract prescribes."""
    read = read_result(execution, task="score calculation", program="indicator")
    if isinstance(read, Failure):
        return read
    value = read.result.get("score")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value):
        return Score(value)
    if value is None:
        problem = "the result has no 'score'"
    elif isinstance(value, float):
        problem = "'score' is NaN"
    else:
        problem = "'score' is not a number"
    return Failure(
        message="The score calculation failed: the indicator returned no valid score.",
        admin_message=admin_details(execution, problem, read.line),
    )
