"""The runner's live state for people: jobs in flight, recent results, rates, health.

``StatusBoard`` is a ``JobEvents`` observer. The status line, the status
page and ``/healthz`` read snapshots of it; nothing here talks to AWS or
Docker. Participant and trial come from the message body (the job's own
parser); the image comes from the container the job's thread starts.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..auth.login_state import LoginState
from ..host.disk import DiskSpace
from ..jobs.messages import BadMessage, parse_body
from ..jobs.outcome import RUNNER, Done, Drop, GoesBack, Outcome
from ..masking import redact
from ..queue import Message
from ..queue.base import QueueStats
from .events import NoEvents
from .holds import Hold

#: Recent results kept for the page.
RECENT_RESULTS = 20
#: Window of the rate (jobs per minute), seconds.
RATE_WINDOW = 300.0
#: Longest administrator's message shown (the table keeps it whole).
ADMIN_MESSAGE_LIMIT = 500
#: Seconds of history the charts cover, and the width of one bar of the jobs chart.
HISTORY_SECONDS = 3600.0
BUCKET_SECONDS = 60.0
#: Queue samples kept (one per status interval; a minute apart by default).
DEPTH_SAMPLES = 720
#: Durations kept per match for its median, and matches kept (the most recent).
MATCH_DURATIONS = 500
MATCHES_SHOWN = 50


def outcome_word(outcome: Outcome) -> str:
    """One word for an outcome: success, failed, already_done, dropped or retried."""
    if isinstance(outcome, Done):
        if outcome.summary.endswith(" Failed"):
            return "failed"
        if outcome.summary.endswith(" Success"):
            return "success"
        return "already_done"
    if isinstance(outcome, Drop):
        return "dropped"
    return "retried"


@dataclass
class JobView:
    """One job as people see it."""

    participant: str
    trial: str
    match: str
    started: float
    image: str = ""
    thread: int = 0
    secrets: Sequence[str] = field(default=(), repr=False)

    def running_for(self, now: float) -> float:
        return now - self.started


@dataclass(frozen=True)
class ResultView:
    participant: str
    trial: str
    match: str
    outcome: str
    seconds: float
    finished: float
    admin_message: str = ""


@dataclass(frozen=True)
class DepthSample:
    """The queue at one instant: ``ago`` seconds before the snapshot."""

    ago: float
    visible: int
    in_flight: int


@dataclass(frozen=True)
class MatchRow:
    """One match's results since the runner started."""

    match: str
    done: int
    failed: int
    median_seconds: float | None
    last_failure: str


@dataclass
class _MatchTally:
    done: int = 0
    failed: int = 0
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=MATCH_DURATIONS))
    last_failure: str = ""
    last_seen: float = 0.0


def back_detail(outcome: GoesBack) -> str:
    """Why a message went back and when it is visible again (the delay the queue applied)."""
    return f"{outcome.reason} (back in {outcome.delay} s)"


@dataclass(frozen=True)
class Snapshot:
    """What the views show, taken at one instant."""

    now: float
    in_flight: list[JobView]
    recent: list[ResultView]
    done: int
    failed: int
    retried: int
    dropped: int
    rate_per_minute: float
    queue_depth: int | None
    last_activity: float
    slow: list[JobView]
    #: Jobs finished in each minute of the last hour, oldest first (60 numbers).
    jobs_per_minute: list[int] = field(default_factory=list)
    #: Samples of the queue over the last hour, oldest first.
    depth_history: list[DepthSample] = field(default_factory=list)
    #: One row per match, the most recently active first.
    matches: list[MatchRow] = field(default_factory=list)
    #: The queue as every runner sees it (None until sampled).
    queue: QueueStats | None = None
    #: The fault of the runner's own machine that holds work back now ("" when none).
    runner_fault: str = ""
    #: Why no new job is taken now (paused, login needed), by reason.
    holds: Mapping[str, Hold] = field(default_factory=dict)
    #: The administrator's login (None: no login, a catalogue file).
    login: LoginState | None = None
    #: Unix time of the snapshot, for the holds' and the login's times.
    wall: float = 0.0
    #: The Docker daemon does not answer now (jobs handed back, waiting for it).
    docker_down: bool = False
    #: The last look at each disk (Docker's data root, the state folder), by name.
    disks: tuple[DiskSpace, ...] = ()


class StatusBoard(NoEvents):
    """Thread-safe record of what the worker does; ``clock`` is ``time.monotonic``."""

    def __init__(self, *, slow_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._slow_after = slow_after
        self._clock = clock
        self._lock = threading.Lock()
        self._in_flight: dict[str, JobView] = {}
        self._recent: deque[ResultView] = deque(maxlen=RECENT_RESULTS)
        self._finish_times: deque[float] = deque()
        self._counts = {"success": 0, "failed": 0, "already_done": 0, "dropped": 0, "retried": 0}
        self._depth: int | None = None
        self._queue: QueueStats | None = None
        self._history: deque[float] = deque()
        self._depth_history: deque[tuple[float, int, int]] = deque(maxlen=DEPTH_SAMPLES)
        self._matches: dict[str, _MatchTally] = {}
        self._last_activity = clock()
        self._born = self._last_activity
        self._runner_fault = ""
        self._holds: Mapping[str, Hold] = {}
        self._login: LoginState | None = None
        self._docker_down = False
        self._disks: dict[str, DiskSpace] = {}

    # -- events -----------------------------------------------------------------------

    def polled(self) -> None:
        self._touch()

    def job_started(self, message: Message) -> None:
        try:
            ref = parse_body(message.body).ref
            view = JobView(ref.participant_id, ref.trial_no, ref.match_id, self._clock())
        except BadMessage:
            view = JobView("?", "?", "?", self._clock())
        view.thread = threading.get_ident()
        with self._lock:
            self._in_flight[message.message_id] = view
            self._last_activity = view.started

    def container_started(self, image: str, secrets: Sequence[str]) -> None:
        me = threading.get_ident()
        with self._lock:
            for view in self._in_flight.values():
                if view.thread == me:
                    view.image = image
                    view.secrets = tuple(secrets)
            self._last_activity = self._clock()

    def container_finished(self, image: str, seconds: float) -> None:
        self._touch()

    def job_finished(self, message: Message, outcome: Outcome, seconds: float) -> None:
        now = self._clock()
        word = outcome_word(outcome)
        with self._lock:
            view = self._in_flight.pop(message.message_id, None) or JobView("?", "?", "?", now)
            detail = outcome.admin_message if isinstance(outcome, Done) else ""
            if isinstance(outcome, Drop):
                detail = outcome.reason
            elif isinstance(outcome, GoesBack):
                detail = back_detail(outcome)
            shown = redact(detail, view.secrets)[:ADMIN_MESSAGE_LIMIT]
            self._recent.appendleft(
                ResultView(
                    participant=view.participant,
                    trial=view.trial,
                    match=view.match,
                    outcome=word,
                    seconds=seconds,
                    finished=now,
                    admin_message=shown,
                )
            )
            self._counts[word] += 1
            if isinstance(outcome, GoesBack) and outcome.backoff == RUNNER:
                self._runner_fault = outcome.reason
            elif isinstance(outcome, Done):
                self._runner_fault = ""  # a job went through: the machine works again
            if word in ("success", "failed"):
                self._finish_times.append(now)
                self._history.append(now)
                self._tally(view.match, word, seconds, shown, now)
            self._last_activity = now

    def _tally(self, match: str, word: str, seconds: float, shown: str, now: float) -> None:
        """Count a finished trial for its match (lock held); forget the least recent match."""
        tally = self._matches.setdefault(match, _MatchTally())
        tally.last_seen = now
        tally.durations.append(seconds)
        if word == "failed":
            tally.failed += 1
            tally.last_failure = shown
        else:
            tally.done += 1
        if len(self._matches) > MATCHES_SHOWN:
            oldest = min(self._matches, key=lambda key: self._matches[key].last_seen)
            del self._matches[oldest]

    def docker_state(self, up: bool) -> None:
        with self._lock:
            self._docker_down = not up

    def disk_space(self, space: DiskSpace) -> None:
        with self._lock:
            self._disks[space.name] = space

    def queue_depth(self, messages: int) -> None:
        with self._lock:
            self._depth = messages

    def holds_changed(self, holds: Mapping[str, Hold]) -> None:
        with self._lock:
            self._holds = holds
            self._last_activity = self._clock()  # a hold's time without polls is no stall

    def login_changed(self, state: LoginState) -> None:
        with self._lock:
            self._login = state

    def queue_stats(self, stats: QueueStats) -> None:
        """A sample of the queue as every runner sees it, for the page and its chart."""
        with self._lock:
            self._queue = stats
            self._depth = stats.visible
            self._depth_history.append((self._clock(), stats.visible, stats.in_flight))

    # -- reading ----------------------------------------------------------------------

    def snapshot(self) -> Snapshot:
        now = self._clock()
        with self._lock:
            while self._finish_times and self._finish_times[0] < now - RATE_WINDOW:
                self._finish_times.popleft()
            while self._history and self._history[0] < now - HISTORY_SECONDS:
                self._history.popleft()
            in_flight = sorted(self._in_flight.values(), key=lambda v: v.started)
            window = min(RATE_WINDOW, max(now - self._born, 1.0))
            buckets = int(HISTORY_SECONDS // BUCKET_SECONDS)
            per_minute = [0] * buckets
            for finished in self._history:
                index = buckets - 1 - int((now - finished) // BUCKET_SECONDS)
                per_minute[max(0, index)] += 1
            depth_history = [
                DepthSample(now - at, visible, held)
                for at, visible, held in self._depth_history
                if at >= now - HISTORY_SECONDS
            ]
            matches = [
                MatchRow(
                    match=match,
                    done=tally.done,
                    failed=tally.failed,
                    median_seconds=(
                        statistics.median(tally.durations) if tally.durations else None
                    ),
                    last_failure=tally.last_failure,
                )
                for match, tally in sorted(
                    self._matches.items(), key=lambda item: -item[1].last_seen
                )
            ]
            return Snapshot(
                now=now,
                in_flight=list(in_flight),
                recent=list(self._recent),
                done=self._counts["success"] + self._counts["already_done"],
                failed=self._counts["failed"],
                retried=self._counts["retried"],
                dropped=self._counts["dropped"],
                rate_per_minute=len(self._finish_times) * 60.0 / window,
                queue_depth=self._depth,
                last_activity=self._last_activity,
                slow=[v for v in in_flight if v.running_for(now) > self._slow_after],
                jobs_per_minute=per_minute,
                depth_history=depth_history,
                matches=matches,
                queue=self._queue,
                runner_fault=self._runner_fault,
                holds=self._holds,
                login=self._login,
                wall=time.time(),
                docker_down=self._docker_down,
                disks=tuple(self._disks.values()),
            )

    def _touch(self) -> None:
        with self._lock:
            self._last_activity = self._clock()


def stalled(snapshot: Snapshot, *, stall_after: float, job_limit: float) -> str | None:
    """Why the loop looks stuck, or None when it is healthy.

    Stuck means: no poll and no progress for ``stall_after`` seconds, and no
    job that may still legitimately be running (younger than ``job_limit``,
    the container timeout plus ``stall_after``).
    """
    idle = snapshot.now - snapshot.last_activity
    if idle <= stall_after:
        return None
    if any(job.running_for(snapshot.now) <= job_limit for job in snapshot.in_flight):
        return None
    return f"no poll and no progress for {idle:.0f} s (limit {stall_after:.0f} s)"
