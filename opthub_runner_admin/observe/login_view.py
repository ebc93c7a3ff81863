"""The holds (paused, login needed) and the login's age as the status page shows them."""

from __future__ import annotations

import html

from ..fleet.queue_counts import age_text
from .board import Snapshot


def holds_html(snapshot: Snapshot) -> str:
    """One banner per hold: why no new job is taken, and since when."""
    return "".join(
        f'<p class="hold" id="hold-{_e(hold.reason.replace(" ", "-"))}">'
        f"{_e(hold.line(snapshot.wall))}</p>"
        for hold in snapshot.holds.values()
    )


def login_html(snapshot: Snapshot) -> str:
    """Who is logged in, since when (the password), and about how long the login has left."""
    login = snapshot.login
    if login is None:
        return ""
    age = login.age(snapshot.wall)
    remaining = login.remaining(snapshot.wall)
    parts = [f"logged in as {login.username}"]
    parts.append(
        "password given: unknown" if age is None else f"password given {age_text(age)} ago"
    )
    if login.needed:
        parts.append("ENDED: waiting for the password")
    elif remaining is not None:
        parts.append(f"ends in about {age_text(remaining)}")
    warn = " alert" if login.needed else ""
    return f'<p id="login" class="login{warn}">{_e(" · ".join(parts))}</p>'


def _e(text: str) -> str:
    return html.escape(text, quote=True)
