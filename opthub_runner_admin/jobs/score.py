"""Score one successful evaluation with the match's indicator image and the history."""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Sequence

from ..executor import Cancelled, Execution, Executor
from ..history import HistoryBuilder
from ..matches import MatchSource
from ..model import Failure, Score, TrialRef
from ..queue import Message
from ..store import Store
from .messages import JobMessage
from .outcome import JobContext, Outcome, Retry
from .protocol import admin_details, read_result
from .redaction import redact_failure
from .trial_job import TrialJob, timing_of

log = logging.getLogger(__name__)

#: On a FIFO queue, how many times one message may go to the back of its group at once
#: because its earlier trials are evaluated but not yet scored. Their score messages
#: sit behind it in the same group (nothing of a group is delivered while one of its
#: messages is held), so waiting would only hold them back. The bound covers the
#: moments before the platform has enqueued a fresh evaluation's score message: the
#: copy then comes straight back, and after this many resends the message waits
#: ``defer_seconds`` per deferral as on any missing trial, so that such a race never
#: spends the deferrals that keep a history from being scored incomplete.
MAX_RESENDS_AT_ONCE = 20


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
        fifo_queue: bool = False,
    ) -> None:
        super().__init__(
            store=store, matches=matches, executor=executor, timeout=timeout, command=command
        )
        self.history = history
        self.max_deferrals = max_deferrals
        self.defer_seconds = defer_seconds
        self.fifo_queue = fifo_queue

    def handle(self, job: JobMessage, message: Message, ctx: JobContext) -> Outcome:
        ref = job.ref
        if self.store.is_scored(ref):
            log.info("%s is already scored; message deleted", ref)
            return self.already_done()
        evaluation = self.store.get_evaluation(ref)
        if evaluation is None:
            # No Success evaluation: the trial does not exist (yet) for the scorer. A Failed
            # Score would invent a result for it; wait a few receives, then drop the message.
            return self.missing_input("successful evaluation", job, message)
        history = self.history.collect(ref)
        if history.missing:
            if self.fifo_queue and not history.unevaluated and job.resends < MAX_RESENDS_AT_ONCE:
                log.info(
                    "%s goes to the back of its group: earlier trials %s are evaluated and their"
                    " score messages wait behind it (resend %d of %d)",
                    ref,
                    _listing(history.missing),
                    job.resends + 1,
                    MAX_RESENDS_AT_ONCE,
                )
                return Retry(0, "earlier trials pending", body=job.resent_body())
            if job.deferrals < self.max_deferrals:
                log.info(
                    "%s waits for the results of earlier trials %s (deferral %d of %d)",
                    ref,
                    _listing(history.missing),
                    job.deferrals + 1,
                    self.max_deferrals,
                )
                return self.defer(job, ctx)
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

    def defer(self, job: JobMessage, ctx: JobContext) -> Outcome:
        """Put the message back to wait for earlier trials, counting the deferral in its body.

        A standard queue delays the copy by ``defer_seconds``. A FIFO queue
        refuses delays, and its copy joins the end of the message's group at
        once: so the job waits ``defer_seconds`` here first, holding the
        message (and its group), and only then sends the copy. The copy lands
        behind any message of the group sent meanwhile, such as the score
        message of the very trial it waits for; holding the message with a
        visibility change instead would keep that one behind it for good.
        The wait is only for an earlier trial with no evaluation yet (or past
        ``MAX_RESENDS_AT_ONCE``): one that is evaluated already has its score
        message in the group, and the message went to the back at once.
        """
        body = job.deferred_body()
        if not self.fifo_queue:
            return Retry(self.defer_seconds, "earlier trials pending", body=body)
        if ctx.cancel.wait(min(float(self.defer_seconds), max(0.0, ctx.remaining()))):
            raise Cancelled(f"stopped while {job.ref} waited for earlier trials")
        return Retry(0, "earlier trials pending", body=body)

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
