"""Score one successful evaluation with the match's indicator image and the history."""

from __future__ import annotations

import json
import logging
import math
import threading
from dataclasses import dataclass

from ..executor import Cancelled, Execution
from ..history import History, HistoryBuilder
from ..model import Evaluation, Failure, Score, TrialRef
from ..queue import Message
from ..store import JobInput
from .messages import JobMessage
from .outcome import JobContext, Outcome, Resend
from .protocol import admin_details, read_result
from .redaction import redact_failure
from .trial_job import TrialJob, timing_of

log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class ScoreJob(TrialJob[Evaluation, Score]):
    kind = "score"
    ordered = True
    done_as = "scored"
    #: With no Success evaluation the trial does not exist (yet) for the scorer. A Failed
    #: Score would invent a result for it: the job waits a few receives, then drops the message.
    input_name = "successful evaluation"

    history: HistoryBuilder
    #: How many times a trial waits for earlier trials' results before it is scored without.
    max_deferrals: int
    #: Seconds one such wait lasts.
    defer_seconds: int
    #: Whether the queue is FIFO, whose copies cannot be delayed (see ``defer``).
    fifo_queue: bool = False

    def read_input(self, ref: TrialRef) -> JobInput[Evaluation]:
        return self.store.score_input(ref)

    def handle_input(
        self, job: JobMessage, evaluation: Evaluation, message: Message, ctx: JobContext
    ) -> Outcome:
        ref = job.ref
        history = self.history.collect(ref)
        if history.missing:
            if self.goes_to_the_back_at_once(job, history):
                log.info(
                    "%s goes to the back of its group: earlier trials %s are evaluated and their"
                    " score messages wait behind it",
                    ref,
                    _listing(history.missing),
                )
                return Resend(
                    0, "earlier trials pending", body=job.resent_body(missing=len(history.missing))
                )
            if job.deferrals < self.max_deferrals:
                log.info(
                    "%s waits for the results of earlier trials %s (deferral %d of %d)",
                    ref,
                    _listing(history.missing),
                    job.deferrals + 1,
                    self.max_deferrals,
                )
                return self.defer(job, ctx, missing=len(history.missing))
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
        execution = self.run_container(ref, match.indicator, lines, ctx, message)
        result = redact_failure(
            interpret_score(execution, time_limit=self.timeout), match.indicator.environment
        )
        if execution.exit_code not in (0, None) and isinstance(result, Score):
            log.warning(
                "%s: the indicator exited with code %s but printed a score; counted as a success",
                ref,
                execution.exit_code,
            )
        outcome = self.write(
            ref, lambda r: self.store.put_score(ref, r, timing_of(execution)), result, ctx.cancel
        )
        if isinstance(result, Failure):
            log.info("%s score Failed: %s", ref, result.message)
        else:
            log.info("%s score Success: %s", ref, result.value)
        return outcome

    def goes_to_the_back_at_once(self, job: JobMessage, history: History) -> bool:
        """On a FIFO queue, whether the message goes to the back of its group without a wait.

        Every missing earlier trial has its evaluation in the table, so its
        score message was sent to this group and waits behind this one (a
        group delivers nothing while one of its messages is held): a wait here
        would only hold it back. That holds once per step of progress: when
        the copy comes round again with as many trials missing as when it was
        sent (a score message not enqueued yet after its evaluation was
        written, or lost), the job waits ``defer_seconds`` and spends a
        deferral as on any missing trial, so that no message spins through its
        group and the bound on deferrals still ends a trial that can never be
        scored. The number missing only shrinks, so one message goes to the
        back at once at most as many times as it has earlier trials.
        """
        return (
            self.fifo_queue
            and not history.unevaluated
            and (job.missing is None or len(history.missing) < job.missing)
        )

    def defer(self, job: JobMessage, ctx: JobContext, *, missing: int | None = None) -> Outcome:
        """Put the message back to wait for earlier trials, counting the deferral in its body.

        A standard queue delays the copy by ``defer_seconds``. A FIFO queue
        refuses delays, and its copy joins the end of the message's group at
        once: so the job waits ``defer_seconds`` here first, holding the
        message (and its group), and only then sends the copy. The copy lands
        behind any message of the group sent meanwhile, such as the score
        message of the very trial it waits for; holding the message with a
        visibility change instead would keep that one behind it for good.
        The wait is only for an earlier trial with no evaluation yet, or for a
        copy that came round without progress (``goes_to_the_back_at_once``).
        """
        body = job.deferred_body(missing=missing)
        if not self.fifo_queue:
            return Resend(self.defer_seconds, "earlier trials pending", body=body)
        if ctx.cancel.wait(min(float(self.defer_seconds), max(0.0, ctx.remaining()))):
            raise Cancelled(f"stopped while {job.ref} waited for earlier trials")
        return Resend(0, "earlier trials pending", body=body)

    def write_failure(self, ref: TrialRef, failure: Failure, cancel: threading.Event) -> Outcome:
        return self.write(ref, lambda r: self.store.put_score(ref, r, timing_of()), failure, cancel)


def _listing(trials: list[str], most: int = 10) -> str:
    shown = ", ".join(trials[:most])
    return shown + (f" and {len(trials) - most} more" if len(trials) > most else "")


def interpret_score(execution: Execution, *, time_limit: float) -> Score | Failure:
    """Turn an indicator image's run into the score the contract prescribes."""
    read = read_result(
        execution, time_limit=time_limit, task="score calculation", program="indicator"
    )
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
