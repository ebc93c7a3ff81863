"""Log lines for people and for log shippers: one line per job, JSON on request."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from ..jobs.messages import BadMessage, parse_body
from ..jobs.outcome import Outcome
from ..queue import Message
from .board import outcome_word
from .events import NoEvents
from .usage import ContainerUsage, PerThread, usage_fields, usage_words

log = logging.getLogger(__name__)

#: ``extra`` keys a JSON line carries as fields of its own.
STRUCTURED_FIELDS = (
    "mode",
    "event",
    "match",
    "participant",
    "trial",
    "outcome",
    "duration_s",
    "done",
    "failed",
    "in_flight",
    "rate_per_minute",
    "queue_depth",
    "slow_jobs",
    # What the job's container used (observe/usage.py), when it ran one.
    "peak_memory_bytes",
    "cpu_s",
    "wall_s",
    "usage_from_start",
    "usage_note",
)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and the structured fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in STRUCTURED_FIELDS:
            if key in record.__dict__:
                entry[key] = record.__dict__[key]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class JobLog(NoEvents):
    """Writes one line per finished job: participant, trial, outcome, duration, usage."""

    def __init__(self, *, mode: str) -> None:
        self._mode = mode
        self._used = PerThread()

    def job_started(self, message: Message) -> None:
        self._used.take()  # nothing of an earlier job of this thread is left over

    def container_used(self, image: str, used: ContainerUsage) -> None:
        self._used.put(used)

    def job_finished(self, message: Message, outcome: Outcome, seconds: float) -> None:
        try:
            ref = parse_body(message.body).ref
            match, participant, trial = ref.match_id, ref.participant_id, ref.trial_no
        except BadMessage:
            match = participant = trial = "?"
        word = outcome_word(outcome)
        used = self._used.take()
        log.info(
            "%s: participant %s trial %s: %s in %.1f s (match %s)%s",
            self._mode,
            participant,
            trial,
            word,
            seconds,
            match,
            f"; used {usage_words(used.usage)}" if used is not None else "",
            extra={
                "mode": self._mode,
                "event": "job",
                "match": match,
                "participant": participant,
                "trial": trial,
                "outcome": word,
                "duration_s": round(seconds, 3),
                **(usage_fields(used.usage) if used is not None else {}),
            },
        )
