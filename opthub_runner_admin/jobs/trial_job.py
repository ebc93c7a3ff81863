"""What evaluating and scoring share: one message, one container run, one result.

The evaluator and the scorer differ only in what they read, which image they
run with which stdin lines, and how they read the output; the handling of
bad messages, administrator errors, transient trouble and the result write
is the same and lives here once.
"""

from __future__ import annotations

import json
import logging
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import ClassVar, Generic, TypeVar

from ..errors import (
    AdminError,
    AlreadyDone,
    FatalError,
    ResultRejected,
    ResultTooLarge,
    RunnerError,
    TransientError,
)
from ..executor import Cancelled, Execution, Executor, RunSpec
from ..executor.exits import signal_name
from ..matches import ImageSpec, MatchSource, MatchSpec
from ..model import Failure, Timing, TrialRef
from ..queue import Message
from ..store import JobInput, Store
from .admission import UNRESTRICTED, Admission
from .messages import BadMessage, JobMessage, describe, parse_body
from .outcome import RUNNER, Cause, Done, Drop, HandBack, JobContext, Outcome, Resend
from .runner_faults import RunnerFaults

log = logging.getLogger(__name__)

#: What a job reads before it runs (a solution, an evaluation).
InputT = TypeVar("InputT")
#: What a job writes (an evaluation, a score).
R = TypeVar("R")

#: A message whose input is missing from the table is retried this many receives, then dropped.
MISSING_INPUT_RECEIVES = 5
#: Seconds before a message held back by an administrator's mistake is tried again.
ADMIN_RETRY_DELAY = 60
#: Seconds before a message held back by transient trouble is tried again.
TRANSIENT_RETRY_DELAY = 10
#: A message whose job raised an unexpected exception is tried this many receives, then
#: settled with a Failed item naming the error (kept below the usual dead-letter limits).
UNEXPECTED_ERROR_RECEIVES = 3
#: Seconds before a message whose job raised an unexpected exception is tried again.
UNEXPECTED_RETRY_DELAY = 30
#: Seconds before a message sent back for a fault of the runner's machine is visible again:
#: this runner's own backoff paces it; another, healthy runner may take it at once.
RUNNER_FAULT_RETRY_DELAY = 1
#: A message whose container was killed from outside the runner goes back this many
#: receives; at the last one the run counts as the image's own exit (it may kill itself).
OUTSIDE_KILL_RECEIVES = 3
#: Seconds before a message whose container was killed from outside is tried again.
OUTSIDE_KILL_RETRY_DELAY = 10
#: Longest pause between two attempts to write a result.
MAX_WRITE_BACKOFF = 30.0

#: Causes every message would meet: the worker pauses receiving while they back off.
DOCKER = Cause("docker", shared=True)
AWS = Cause("aws", shared=True)
API = Cause("api", shared=True)


def match_cause(match_id: str) -> Cause:
    """Trouble with one match (unknown to the source, its image missing or refused)."""
    return Cause(f"match:{match_id}")


class Blamed(Exception):
    """An administrator's or transient error, with the cause it is blamed on.

    Raised by the steps that talk to the match source and to Docker, so that
    the job can tell one broken match from an outage; anything else a job
    meets comes from the table (AWS).
    """

    def __init__(self, error: AdminError | TransientError, cause: Cause) -> None:
        super().__init__(str(error))
        self.error = error
        self.cause = cause


class KilledFromOutside(RunnerError):
    """The container ended by a signal neither the runner nor the memory limit sent."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, kw_only=True, eq=False, repr=False)
class TrialJob(ABC, Generic[InputT, R]):
    """Template of one job; subclasses say what to read, run and write.

    A dataclass, so that the settings every job takes are declared here once
    and a subclass declares only its own (it is a keyword-only dataclass too).
    """

    #: "evaluation" or "score", for log lines.
    kind: ClassVar[str]
    #: What the trial is once the job's result exists ("evaluated"), for log lines.
    done_as: ClassVar[str]
    #: What the job reads before it runs, for log lines and outcomes ("solution").
    input_name: ClassVar[str]
    #: Whether one participant's trials must run in trial order (the scorer's history).
    ordered: ClassVar[bool] = False

    store: Store
    matches: MatchSource
    executor: Executor
    #: Seconds a container may run.
    timeout: int
    #: The command run in an image whose match names none (None: the image's own).
    command: Sequence[str] | None = None
    faults: RunnerFaults = field(default_factory=RunnerFaults, init=False)

    def admission(self, message: Message) -> Admission:
        """The participant is the group; the scorer orders by trial; the match may back off."""
        try:
            ref = parse_body(message.body).ref
        except BadMessage:
            return UNRESTRICTED
        return Admission(
            group=json.dumps([ref.match_id, ref.participant_id]),
            position=int(ref.trial_no) if self.ordered else None,
            causes=(match_cause(ref.match_id).key,),
        )

    def __call__(self, message: Message, ctx: JobContext) -> Outcome:
        try:
            job = parse_body(message.body)
        except BadMessage as exc:
            log.error(
                "bad message %s deleted: %s: %s", message.message_id, exc, describe(message.body)
            )
            return Drop(str(exc))
        try:
            return self.handle(job, message, ctx)
        except Blamed as blamed:
            return self.resend(job, message, blamed.error, blamed.cause)
        except KilledFromOutside as killed:
            # Made visible, not resent: its receive count rises, so the rule stays bounded.
            return HandBack(OUTSIDE_KILL_RETRY_DELAY, killed.reason)
        except (AdminError, TransientError) as exc:
            # Not from the match source nor Docker: from the table.
            return self.resend(job, message, exc, AWS)
        except (Cancelled, FatalError):
            raise
        except Exception as exc:  # a poison message must never loop forever
            return self.unexpected(job, message, exc, ctx)

    def resend(
        self,
        job: JobMessage,
        message: Message,
        error: AdminError | TransientError,
        cause: Cause,
    ) -> Outcome:
        """Nothing decided: a fresh copy is resent, and the worker backs off from ``cause``."""
        if isinstance(error, AdminError):
            log.error("%s: %s (the message goes back to the queue and is retried)", job.ref, error)
            return Resend(ADMIN_RETRY_DELAY, str(error), body=message.body, backoff=cause)
        log.warning("%s: %s (retrying later)", job.ref, error)
        return Resend(TRANSIENT_RETRY_DELAY, str(error), body=message.body, backoff=cause)

    def match_of(self, ref: TrialRef) -> MatchSpec:
        """The match's images; an unknown match blames the match, an API outage the API."""
        try:
            return self.matches.get(ref.match_id)
        except AdminError as exc:
            raise Blamed(exc, match_cause(ref.match_id)) from exc
        except TransientError as exc:
            raise Blamed(exc, API) from exc

    def handle(self, job: JobMessage, message: Message, ctx: JobContext) -> Outcome:
        """Do the job, unless the trial already has its result or the input is not there.

        Raises AdminError or TransientError when nothing could be decided.
        """
        read = self.read_input(job.ref)
        if read.done:
            log.info("%s is already %s; message deleted", job.ref, self.done_as)
            return self.already_done()
        if read.value is None:
            return self.missing_input(self.input_name, job, message)
        return self.handle_input(job, read.value, message, ctx)

    @abstractmethod
    def read_input(self, ref: TrialRef) -> JobInput[InputT]:
        """Whether the trial already has the job's result, and the job's input (one read)."""

    @abstractmethod
    def handle_input(
        self, job: JobMessage, value: InputT, message: Message, ctx: JobContext
    ) -> Outcome:
        """Do the job on its input; raise AdminError or TransientError when nothing was decided."""

    def unexpected(
        self, job: JobMessage, message: Message, exc: Exception, ctx: JobContext
    ) -> Outcome:
        """Made visible again (receive count rising) a few times, then a Failed item naming it.

        Without the bound, a message whose job always raises (a value no code
        path expected) would come back forever and never be settled.
        """
        error = f"{type(exc).__name__}: {exc}"
        if self.faults.of_the_runner(exc, job.ref):
            # Not the participant's doing: a fresh copy goes back (its receives unspent,
            # so it never becomes a Failed result) and the whole runner backs off.
            log.error(
                "%s: the runner's own machine fails (%s); the message goes back unspent and new"
                " work pauses: free space on, or repair, the runner's disk and files",
                job.ref,
                error,
                exc_info=True,
            )
            return Resend(
                RUNNER_FAULT_RETRY_DELAY,
                f"runner fault: {error}",
                body=message.body,
                backoff=RUNNER,
            )
        if message.receive_count < UNEXPECTED_ERROR_RECEIVES:
            log.error(
                "%s: unexpected error (%s), receive %d of %d; the message goes back to the queue",
                job.ref,
                error,
                message.receive_count,
                UNEXPECTED_ERROR_RECEIVES,
                exc_info=True,
            )
            return HandBack(UNEXPECTED_RETRY_DELAY, f"unexpected error: {error}")
        log.error(
            "%s: unexpected error (%s) on receive %d; the trial is settled as Failed",
            job.ref,
            error,
            message.receive_count,
            exc_info=True,
        )
        failure = Failure(
            message=f"The {self.kind} could not be completed because of an error in the runner.",
            admin_message=(
                f"unexpected error in the runner after {message.receive_count} receives: {error}"
            ),
        )
        try:
            return self.write_failure(job.ref, failure, ctx.cancel)
        except (Cancelled, FatalError, AdminError, TransientError):
            raise
        except Exception as again:  # the Failed item cannot be written either: stop here
            log.error(
                "%s: the Failed %s cannot be written either (%s: %s); message deleted",
                job.ref,
                self.kind,
                type(again).__name__,
                again,
            )
            return Drop(f"unexpected error: {error}")

    @abstractmethod
    def write_failure(self, ref: TrialRef, failure: Failure, cancel: threading.Event) -> Outcome:
        """Settle the trial with ``failure`` (an evaluation or a score, by job)."""

    def already_done(self) -> Outcome:
        return Done(f"{self.kind} already done")

    def missing_input(self, what: str, job: JobMessage, message: Message) -> Outcome:
        """The table lacks the input: give it a few receives (it may be on its way), then drop."""
        if message.receive_count >= MISSING_INPUT_RECEIVES:
            log.error(
                "%s: no %s in the table after %d receives; message deleted",
                job.ref,
                what,
                message.receive_count,
            )
            return Drop(f"no {what}")
        log.warning("%s: no %s in the table yet; retrying later", job.ref, what)
        return HandBack(TRANSIENT_RETRY_DELAY, f"no {what}")

    def run_container(
        self,
        ref: TrialRef,
        image: ImageSpec,
        stdin_lines: Sequence[str],
        ctx: JobContext,
        message: Message,
    ) -> Execution:
        """Run at most ``timeout`` seconds, and stop by the job's deadline whatever that leaves.

        The deadline is absolute, so a slow pull or container creation cannot
        push the run past SQS's 12-hour cap on the message. An image that is
        missing or refused blames the trial's match (whose image it is); a
        Docker daemon away blames Docker; a container killed from outside the
        runner puts the message back (``outside_kill``).
        """
        spec = RunSpec(
            image=image.image,
            stdin_lines=stdin_lines,
            timeout=float(self.timeout),
            environment=image.environment,
            command=image.command if image.command is not None else self.command,
            deadline=ctx.deadline,
        )
        try:
            execution = self.executor.run(spec, ctx.cancel)
        except AdminError as exc:
            raise Blamed(exc, match_cause(ref.match_id)) from exc
        except TransientError as exc:
            raise Blamed(exc, DOCKER) from exc
        self.outside_kill(ref, image.image, execution, message)
        return execution

    def outside_kill(
        self, ref: TrialRef, image: str, execution: Execution, message: Message
    ) -> None:
        """Raise ``KilledFromOutside`` when someone else killed the container, a few receives.

        ``docker kill``, a daemon restart or the host's own kill say nothing
        about the solution: the trial is not decided, the message goes back.
        The same signal at every receive is more likely the image killing its
        own process: the last receive takes the run as it is.
        """
        if execution.outside_signal is None:
            return
        name = signal_name(execution.outside_signal)
        if message.receive_count < OUTSIDE_KILL_RECEIVES:
            log.error(
                "%s: the container of %s was killed by %s from outside the runner (docker kill,"
                " a Docker restart or the host), receive %d of %d; the message goes back to"
                " the queue",
                ref,
                image,
                name,
                message.receive_count,
                OUTSIDE_KILL_RECEIVES,
            )
            raise KilledFromOutside(f"container killed by {name} from outside the runner")
        log.warning(
            "%s: the container of %s ended by %s at each of %d receives; taken as the image's"
            " own exit (exit code %s)",
            ref,
            image,
            name,
            message.receive_count,
            execution.exit_code,
        )

    def write(
        self,
        ref: TrialRef,
        put: Callable[[R | Failure], list[str]],
        result: R | Failure,
        cancel: threading.Event,
    ) -> Outcome:
        """Write until it is written: a result is never dropped for a transient error.

        The heartbeat keeps the message hidden meanwhile; only the operator's
        forced stop gives up, and then the message is made visible again, not deleted.
        """
        backoff = 1.0
        replaced = False
        while True:
            try:
                notes = put(result)
            except AlreadyDone:
                log.info("%s already has a %s; nothing written", ref, self.kind)
                return self.already_done()
            except ResultRejected as exc:
                if replaced:
                    # Not even the short Failed item was accepted: retrying cannot help.
                    log.error(
                        "%s: the Failed %s cannot be stored either (%s); message deleted",
                        ref,
                        self.kind,
                        exc,
                    )
                    return Drop(f"{self.kind} not storable")
                log.error("%s: the %s cannot be stored (%s)", ref, self.kind, exc)
                result = _unstorable(self.kind, exc)
                replaced = True
                continue
            except TransientError as exc:
                log.warning(
                    "%s: writing the %s failed (%s); retrying in %.0fs",
                    ref,
                    self.kind,
                    exc,
                    backoff,
                )
                if cancel.wait(backoff):
                    raise Cancelled(f"stopped while writing the {self.kind} of {ref}") from exc
                backoff = min(backoff * 2, MAX_WRITE_BACKOFF)
                continue
            for note in notes:
                log.warning("%s: %s", ref, note)
            if isinstance(result, Failure):
                return Done(f"{self.kind} Failed", admin_message=result.admin_message)
            return Done(f"{self.kind} Success")


def _unstorable(kind: str, exc: ResultRejected) -> Failure:
    """The Failed result written in place of one DynamoDB refused."""
    if isinstance(exc, ResultTooLarge):
        message = f"The {kind} result is too large to be stored."
    else:
        message = f"The {kind} result could not be stored."
    return Failure(message=message, admin_message=f"result not storable in DynamoDB: {exc}")


def timing_of(execution: Execution | None = None) -> Timing:
    """Start and end of the run, or now for a result decided without a container."""
    if execution is not None:
        return Timing(execution.started_at, execution.finished_at)
    now = datetime.now(timezone.utc)
    return Timing(now, now)
