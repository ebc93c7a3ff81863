"""The season's memory trace names the place whose live memory grew, and nothing that shrank.

``benchmarks/memory_trace.py compare`` is how a long season's growth is
traced to a line (docs/performance.md); if it named the wrong place, or
listed what was freed as growth, the hunt would follow it.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.memory_trace import compare


@pytest.fixture
def tracing() -> Iterator[None]:
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start(4)
    yield
    if started:
        tracemalloc.stop()


def grow_a_structure(kept: list[bytes]) -> None:
    kept.extend(bytes(512) for _ in range(400))


def test_the_growth_is_named_by_the_line_that_allocated_it(tracing: None, tmp_path: Path) -> None:
    freed = [bytes(512) for _ in range(400)]
    tracemalloc.take_snapshot().dump(str(tmp_path / "first.pickle"))
    kept: list[bytes] = []
    grow_a_structure(kept)
    del freed
    tracemalloc.take_snapshot().dump(str(tmp_path / "last.pickle"))

    lines = compare(tmp_path / "first.pickle", tmp_path / "last.pickle")

    assert lines[0].startswith("traced memory +")
    growth = [line for line in lines[1:] if "KiB" in line]
    assert growth and growth[0].lstrip().startswith("+")
    assert all(line.lstrip().startswith("+") for line in growth)
    first_place = lines[1 : lines.index(growth[1]) if len(growth) > 1 else None]
    assert any("grow_a_structure" in line or "kept.extend" in line for line in first_place)
    assert not any("freed = [" in line for line in lines)
