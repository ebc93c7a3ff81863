"""Conversions at the edge of DynamoDB and JSON, as the contract prescribes.

Container output may hold NaN, +/-Infinity, doubles beyond DynamoDB's number
range and booleans anywhere. The earlier implementation lost trials on them;
here every value is mapped to something DynamoDB accepts and every change is
reported so that the caller can log it.
"""

from __future__ import annotations

import decimal
import math
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from .model import JSON

#: Largest magnitude DynamoDB stores; +/-Infinity and anything larger become this.
DYNAMO_MAX = Decimal("9.9999999999999999999999999999999999999E+125")
#: Smallest non-zero magnitude DynamoDB stores; anything smaller becomes 0.
DYNAMO_MIN = Decimal("1E-130")
#: DynamoDB keeps at most 38 significant digits.
_CONTEXT = decimal.Context(prec=38, rounding=decimal.ROUND_HALF_EVEN)

#: A UTF-16 surrogate code point: JSON may decode to a lone one ("\ud83d" as images in
#: JavaScript or Java print when they cut a string mid-emoji), which no UTF-8 encoder
#: (and so no DynamoDB write) accepts. Paired escapes decode to one code point and never match.
_SURROGATE = re.compile("[\ud800-\udfff]")

#: Error texts are cut to this many characters (contract: "Error texts").
ERROR_TEXT_LIMIT = 16384


def to_dynamo(value: Any, path: str = "$") -> tuple[Any, list[str]]:
    """Return ``value`` with every number as a storable Decimal, and what was changed.

    The notes name the JSON path of each changed value, for the warning the
    administrator sees.
    """
    notes: list[str] = []
    return _to_dynamo(value, path, notes), notes


def replace_lone_surrogates(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD, so that it encodes as UTF-8."""
    return _SURROGATE.sub("\ufffd", text)


def _text(value: str, path: str, notes: list[str]) -> str:
    if _SURROGATE.search(value) is None:
        return value
    notes.append(f"{path}: a lone UTF-16 surrogate stored as U+FFFD")
    return replace_lone_surrogates(value)


def _to_dynamo(value: Any, path: str, notes: list[str]) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return _text(value, path, notes)
    if isinstance(value, (int, float, Decimal)):
        return _number(value, path, notes)
    if isinstance(value, Mapping):
        stored: dict[str, Any] = {}
        for k, v in value.items():
            key = _text(str(k), path, notes)
            stored[key] = _to_dynamo(v, f"{path}.{key}", notes)
        return stored
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_to_dynamo(v, f"{path}[{i}]", notes) for i, v in enumerate(value)]
    notes.append(f"{path}: {type(value).__name__} is not JSON, stored as text")
    return str(value)


def _number(value: int | float | Decimal, path: str, notes: list[str]) -> Decimal | None:
    if isinstance(value, float):
        if math.isnan(value):
            notes.append(f"{path}: NaN stored as null")
            return None
        if math.isinf(value):
            notes.append(f"{path}: {value} stored as {'-' if value < 0 else ''}{DYNAMO_MAX}")
            return DYNAMO_MAX.copy_negate() if value < 0 else DYNAMO_MAX
        number = Decimal(repr(value))
    elif isinstance(value, Decimal):
        if value.is_nan():
            notes.append(f"{path}: NaN stored as null")
            return None
        number = value
    else:
        number = Decimal(value)
    if number.is_infinite() or abs(number) > DYNAMO_MAX:
        notes.append(f"{path}: {value} is beyond DynamoDB's range, stored as the largest number")
        return DYNAMO_MAX.copy_negate() if number < 0 else DYNAMO_MAX
    if number != 0 and abs(number) < DYNAMO_MIN:
        notes.append(f"{path}: {value} is below DynamoDB's smallest number, stored as 0")
        return Decimal(0)
    rounded = _CONTEXT.create_decimal(number)
    if rounded != number:
        notes.append(f"{path}: {value} rounded to 38 significant digits")
    normalized = rounded.normalize(_CONTEXT)
    # normalize() may round again when the exponent overflows the context; keep the magnitude.
    return normalized if abs(normalized) <= DYNAMO_MAX else rounded


def from_dynamo(value: Any) -> JSON:
    """Turn what boto3 read back into plain JSON values (integral Decimals become ints)."""
    if isinstance(value, Decimal):
        if value == value.to_integral_value():
            return int(value)
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): from_dynamo(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [from_dynamo(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return [from_dynamo(v) for v in sorted(value, key=str)]
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    return str(value)


def timestamp(moment: datetime | None = None) -> str:
    """UTC ISO-8601 with milliseconds and ``Z``: ``2026-11-25T10:01:17.123Z``."""
    moment = (moment or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def truncate_middle(text: str, limit: int = ERROR_TEXT_LIMIT) -> str:
    """Cut ``text`` to at most ``limit`` characters, keeping its start and its end.

    The start usually says what went wrong and the end where it ended up, so
    both are worth more than the middle of a long traceback.
    """
    if len(text) <= limit:
        return text
    marker = f"\n...[{len(text) - limit} characters cut]...\n"
    # The marker's own length changes the count only in rare cases; recompute once.
    keep = limit - len(marker)
    marker = f"\n...[{len(text) - keep} characters cut]...\n"
    keep = max(0, limit - len(marker))
    head = keep - keep // 2
    tail = keep // 2
    return text[:head] + marker + (text[-tail:] if tail else "")
