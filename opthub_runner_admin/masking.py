"""One rule for keeping a match's environment values out of what people read.

The environment holds the administrator's private values. Every text the
runner shows or stores that may quote them (a Failed item, a Docker error, the
status page, what ``try`` and ``doctor`` print) is masked with the same rule,
so that no path is laxer than another.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

#: Values shorter than this (a flag, a one-digit dimension) are not masked:
#: blanking every "1" or "on" would garble the text and protect nothing.
MIN_SECRET_LENGTH = 3
#: What a secret is replaced with.
MASK = "[redacted]"


def secret_forms(values: Iterable[str]) -> list[str]:
    """Each long enough value as written and as it appears inside a JSON string, longest first.

    Messages quote container output raw, where a value holding a quote or a
    backslash appears escaped. Longest first, so that a value containing
    another is masked whole.
    """
    forms: set[str] = set()
    for value in values:
        if len(value) >= MIN_SECRET_LENGTH:
            forms.add(value)
            forms.add(json.dumps(value)[1:-1])
            forms.add(json.dumps(value, ensure_ascii=False)[1:-1])
    return sorted(forms, key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each of ``secrets`` (see ``secret_forms``) masked."""
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
