"""The queue body of the contract: ``{"MatchID", "ParticipantID", "TrialNo"}``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..model import TrialRef, bare_match_id

#: Our own keys in a body we resend on purpose; the platform ignores unknown keys.
#: Deferrals: copies sent after a wait for earlier trials (bounded by ``max_deferrals``).
DEFERRALS_KEY = "OpthubRunnerDeferrals"
#: How many earlier trials were missing when the scorer last sent the copy back: a
#: copy may go to the back of its FIFO group at once only while that number shrinks.
MISSING_KEY = "OpthubRunnerMissing"
#: The body's keys, each with the ``TrialRef`` field it carries: the platform's side
#: builds bodies from this, so that both ends spell the contract once.
BODY_FIELDS = {"MatchID": "match_id", "ParticipantID": "participant_id", "TrialNo": "trial_no"}
#: Longest value of each key, in UTF-8 bytes. The ids end up in the table's keys, which
#: DynamoDB caps at 2048 bytes (partition: ``Evaluations#Match#<match>#<participant>``)
#: and 1024 bytes (sort: ``Success#<trial>``); a body beyond these bounds can never be
#: read or written, so it is a bad message rather than something to retry forever.
_MAX_BYTES = {"MatchID": 256, "ParticipantID": 1024, "TrialNo": 256}


class BadMessage(ValueError):
    """The body does not describe a trial; retrying cannot help."""


@dataclass(frozen=True)
class JobMessage:
    ref: TrialRef
    deferrals: int
    raw: dict[str, Any]
    #: Earlier trials missing when the copy was last sent back (None: never for them).
    missing: int | None = None

    def deferred_body(self, *, missing: int | None = None) -> str:
        """The body of the copy resent when the job waits for something: one deferral more."""
        return self._body(self.deferrals + 1, missing)

    def resent_body(self, *, missing: int) -> str:
        """The body of the copy sent to the back of its FIFO group at once: no deferral spent."""
        return self._body(self.deferrals, missing)

    def _body(self, deferrals: int, missing: int | None) -> str:
        raw = {**self.raw, DEFERRALS_KEY: deferrals}
        if missing is not None:
            raw[MISSING_KEY] = missing
        return json.dumps(raw)


def parse_body(body: str) -> JobMessage:
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadMessage(f"body is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise BadMessage("body is not a JSON object")
    values: dict[str, str] = {}
    for key in BODY_FIELDS:
        value = raw.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value:
            raise BadMessage(f"body has no {key}")
        if len(value.encode("utf-8", errors="replace")) > _MAX_BYTES[key]:
            raise BadMessage(f"body's {key} is longer than {_MAX_BYTES[key]} bytes")
        values[key] = value
    trial_no = values["TrialNo"]
    if not (trial_no.isascii() and trial_no.isdigit()):
        raise BadMessage("TrialNo is not a zero-filled number")
    values["MatchID"] = bare_match_id(values["MatchID"])
    ref = TrialRef(**{field: values[key] for key, field in BODY_FIELDS.items()})
    return JobMessage(
        ref=ref,
        deferrals=_count(raw, DEFERRALS_KEY),
        raw=raw,
        missing=_count(raw, MISSING_KEY) if MISSING_KEY in raw else None,
    )


def _count(raw: dict[str, Any], key: str) -> int:
    """One of our own counters in the body; anything but a natural number counts as 0."""
    value = raw.get(key, 0)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        return 0
    return value


def describe(body: str, limit: int = 200) -> str:
    """A short, printable excerpt of a body for a log line."""
    text = body if len(body) <= limit else body[:limit] + f"... ({len(body)} characters)"
    return text.encode("unicode_escape", errors="replace").decode("ascii", errors="replace")
