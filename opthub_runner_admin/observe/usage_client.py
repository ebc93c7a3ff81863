"""``opthub-runner status``'s view of a running runner's figures, read from its ``/usage.json``."""

from __future__ import annotations

import urllib.error
import urllib.request

from .match_usage import UsageDocument, read_usage_document
from .server import USAGE_PATH
from .usage_view import usage_lines

#: Seconds ``status`` waits for the runner's answer.
FETCH_TIMEOUT = 3.0
#: A runner listening on every address is asked on loopback.
_ANY = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}


def usage_url(host: str, port: int) -> str:
    host = _ANY.get(host, host)
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{USAGE_PATH}"


def fetch_usage(host: str, port: int, *, timeout: float = FETCH_TIMEOUT) -> UsageDocument | str:
    """The runner's document, or one line saying why there is none."""
    url = usage_url(host, port)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            body = answer.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return (
            f"what the trials used: no runner answers on {url} ({reason}); start the runner"
            " with this config's metrics_port, then run status again"
        )
    try:
        return read_usage_document(body)
    except (ValueError, KeyError, TypeError) as exc:
        return (
            f"what the trials used: {url} answered something else than a runner's figures ({exc})"
        )


def runner_usage_lines(host: str, port: int | None) -> list[str]:
    """What ``status`` prints of the runner serving on ``host:port``."""
    if port is None:
        return [
            "what the trials used: set metrics_port in the config; a running runner then serves"
            " each match's figures and status shows them"
        ]
    if port == 0:
        return [
            "what the trials used: metrics_port is 0 (the runner picks a free port at start);"
            " set a fixed port for status to find the runner"
        ]
    document = fetch_usage(host, port)
    if isinstance(document, str):
        return [document]
    heading = f"what the trials used (the {document.mode} at {usage_url(host, port)}):"
    return [heading, *(f"  {line}" for line in usage_lines(document.matches, document.host))]
