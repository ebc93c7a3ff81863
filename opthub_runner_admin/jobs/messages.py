"""The queue body of the contract: ``{"MatchID", "ParticipantID", "TrialNo"}``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..model import TrialRef

#: Our own key in a body we resend on purpose; the platform ignores unknown keys.
DEFERRALS_KEY = "OpthubRunnerDeferrals"
_KEYS = ("MatchID", "ParticipantID", "TrialNo")
#: Longest value of each key, in UTF-8 bytes. The ids end up in the table's keys, which
#: DynamoDB caps at 2048 bytes (partition: ``Evaluations#Match#<match>#<participant>``)
#: and 1024 bytes (sort: ``Success#<trial>``); a body beyond these bounds can never be
#: read or written, so it is a bad message rather than something to retry forever.
_MAX_BYTES = {"MatchID": 256, "ParticipantID": 1024, "TrialNo": 256}
_MATCH_PREFIX = "Match#"


class BadMessage(ValueError):
    """The body does not describe a trial; retrying cannot help."""


@dataclass(frozen=True)
class JobMessage:
    ref: TrialRef
    deferrals: int
    raw: dict[str, Any]

    def deferred_body(self) -> str:
        """The body of the copy resent when the job waits for something."""
        return json.dumps({**self.raw, DEFERRALS_KEY: self.deferrals + 1})


def parse_body(body: str) -> JobMessage:
    try:
        raw = json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise BadMessage(f"body is not JSON ({exc.__class__.__name__})") from None
    if not isinstance(raw, dict):
        raise BadMessage("body is not a JSON object")
    values: dict[str, str] = {}
    for key in _KEYS:
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
    match_id = values["MatchID"].removeprefix(_MATCH_PREFIX)
    deferrals = raw.get(DEFERRALS_KEY, 0)
    if not isinstance(deferrals, int) or isinstance(deferrals, bool) or deferrals < 0:
        deferrals = 0
    ref = TrialRef(match_id, values["ParticipantID"], trial_no)
    return JobMessage(ref=ref, deferrals=deferrals, raw=raw)


def describe(body: str, limit: int = 200) -> str:
    """A short, printable excerpt of a body for a log line."""
    text = body if len(body) <= limit else body[:limit] + f"... ({len(body)} characters)"
    return text.encode("unicode_escape", errors="replace").decode("ascii", errors="replace")
