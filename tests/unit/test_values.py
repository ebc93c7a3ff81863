"""Values DynamoDB cannot carry are stored as the contract says, and reported."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from opthub_runner_admin.values import (
    DYNAMO_MAX,
    from_dynamo,
    timestamp,
    to_dynamo,
    truncate_middle,
)


@pytest.mark.parametrize(
    ("value", "stored", "changed"),
    [
        (1.5, Decimal("1.5"), False),
        (4.665, Decimal("4.665"), False),
        (0.1, Decimal("0.1"), False),
        (3, Decimal(3), False),
        (float("nan"), None, True),
        (float("inf"), DYNAMO_MAX, True),
        (float("-inf"), DYNAMO_MAX.copy_negate(), True),
        (1e300, DYNAMO_MAX, True),
        (-1e300, DYNAMO_MAX.copy_negate(), True),
        (1e-200, Decimal(0), True),
        (1e-125, Decimal("1E-125"), False),
        (10**40 + 1, Decimal("1.000000000000000000000000000000000000000E+40"), True),
        (True, True, False),
        (None, None, False),
        ("text", "text", False),
    ],
)
def test_numbers_fit_dynamodb(value: Any, stored: Any, changed: bool) -> None:
    converted, notes = to_dynamo(value)
    assert converted == stored
    assert type(converted) is type(stored)
    assert bool(notes) is changed


def test_negative_extreme_keeps_all_digits() -> None:
    converted, _ = to_dynamo(float("-inf"))
    assert str(converted) == "-9.9999999999999999999999999999999999999E+125"


def test_nested_values_and_booleans_inside_info() -> None:
    converted, notes = to_dynamo({"info": {"ok": True, "bad": [float("nan"), 2.5]}})
    assert converted == {"info": {"ok": True, "bad": [None, Decimal("2.5")]}}
    assert notes == ["$.info.bad[0]: NaN stored as null"]


def test_reading_back_integral_decimals_become_ints() -> None:
    assert from_dynamo([Decimal("4.665"), Decimal("0"), Decimal("1E+2")]) == [4.665, 0, 100]
    assert type(from_dynamo(Decimal("2"))) is int
    assert type(from_dynamo(Decimal("2.5"))) is float
    assert from_dynamo({"a": {Decimal("1")}}) == {"a": [1]}


def test_timestamp_format() -> None:
    moment = datetime(2026, 11, 25, 10, 1, 17, 123456, tzinfo=timezone.utc)
    assert timestamp(moment) == "2026-11-25T10:01:17.123Z"


def test_truncate_middle_keeps_start_and_end() -> None:
    text = "START" + "x" * 50000 + "END"
    cut = truncate_middle(text, 16384)
    assert len(cut) <= 16384
    assert cut.startswith("START") and cut.endswith("END")
    assert "characters cut" in cut
    assert truncate_middle("short") == "short"
