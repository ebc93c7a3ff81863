"""This EC2 instance's metadata (IMDSv2): its id, and the Spot interruption notice.

IMDSv2 asks for a session token first (``PUT /latest/api/token``), then
every read carries it. ``/latest/meta-data/spot/instance-action`` answers
404 until EC2 decides to stop or terminate a Spot instance; then it holds
``{"action": "terminate", "time": "2026-12-07T01:02:03Z"}``, about two
minutes ahead. The base URL is configurable so that the tests serve it.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timezone

from ..errors import TransientError

DEFAULT_URL = "http://169.254.169.254"
#: Seconds one request may take: the service answers at once on an instance.
TIMEOUT = 2.0
TOKEN_TTL_SECONDS = 21600
HTTP_NOT_FOUND = 404


@dataclass(frozen=True)
class SpotNotice:
    """EC2's word that this Spot instance goes at ``time``."""

    action: str
    time: datetime


class InstanceMetadata:
    """Reads of the instance metadata service, each with a fresh IMDSv2 token."""

    def __init__(self, *, base_url: str = DEFAULT_URL, timeout: float = TIMEOUT) -> None:
        self._base = base_url.rstrip("/")
        self._timeout = timeout

    def _token(self) -> str:
        request = urllib.request.Request(
            f"{self._base}/latest/api/token",
            method="PUT",
            headers={"X-aws-ec2-metadata-token-ttl-seconds": str(TOKEN_TTL_SECONDS)},
        )
        return self._open(request)

    def _get(self, path: str) -> str:
        request = urllib.request.Request(
            f"{self._base}/latest/meta-data/{path}",
            headers={"X-aws-ec2-metadata-token": self._token()},
        )
        return self._open(request)

    def _open(self, request: urllib.request.Request) -> str:
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as answer:
                text: str = answer.read().decode()
                return text
        except urllib.error.HTTPError:
            raise
        except (OSError, ValueError) as exc:
            raise TransientError(
                f"the instance metadata service at {self._base} did not answer ({exc});"
                " is this an EC2 instance with IMDS enabled?"
            ) from exc

    def instance_id(self) -> str:
        try:
            return self._get("instance-id").strip()
        except urllib.error.HTTPError as exc:
            raise TransientError(f"the instance metadata service answered {exc.code}") from exc

    def spot_notice(self) -> SpotNotice | None:
        """The interruption notice, or None while there is none (404)."""
        try:
            text = self._get("spot/instance-action")
        except urllib.error.HTTPError as exc:
            if exc.code == HTTP_NOT_FOUND:
                return None
            raise TransientError(f"the instance metadata service answered {exc.code}") from exc
        try:
            notice = json.loads(text)
            when = datetime.fromisoformat(str(notice["time"]).replace("Z", "+00:00"))
            return SpotNotice(action=str(notice["action"]), time=when.astimezone(timezone.utc))
        except (ValueError, KeyError, TypeError) as exc:
            raise TransientError(f"unreadable Spot instance-action: {text[:200]!r}") from exc
