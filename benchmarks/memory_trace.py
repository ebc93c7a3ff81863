"""The runner under ``tracemalloc``, to find what grows over a long season.

The season benchmark (``--trace-memory DIR``) starts the runner through this
module instead of the ``opthub-runner`` script: ``tracemalloc`` is started
before the runner's first import, and a snapshot is dumped into ``DIR`` each
time the benchmark asks for one (it writes the number of jobs done into
``DIR/request``; the snapshot is ``DIR/snapshot-<jobs>.pickle``). Tracing
costs memory and time of its own, so a traced run's RSS is not a season's
figure: it is for the comparison, which names the lines whose live memory grew
between two snapshots:

    .venv/bin/python -m benchmarks.season --jobs 4000 --trace-memory /tmp/trace
    .venv/bin/python -m benchmarks.memory_trace compare /tmp/trace/snapshot-1000.pickle \\
        /tmp/trace/snapshot-4000.pickle

Allocations that Python does not make (the C libraries', the allocator's
fragmentation) are not traced: growth of RSS that the snapshots do not show
is outside Python's objects.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import tracemalloc
from collections.abc import Sequence
from pathlib import Path

#: The folder of snapshots and requests, given by the benchmark.
TRACE_DIR_ENV = "OPTHUB_TRACE_DIR"
FRAMES = 8
USAGE = (
    "usage: python -m benchmarks.memory_trace compare FIRST LAST\n"
    f"   or: {TRACE_DIR_ENV}=DIR python -m benchmarks.memory_trace <the runner's arguments>"
    " (as the season benchmark's --trace-memory does)"
)


def _answer_requests(folder: Path) -> None:
    request = folder / "request"
    while True:
        time.sleep(0.5)
        try:
            jobs = request.read_text().strip()
        except FileNotFoundError:
            continue
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        snapshot.dump(str(folder / f"snapshot-{jobs}.pickle"))
        request.unlink()


def run(argv: Sequence[str]) -> None:
    """The runner's own command line, traced; snapshots answered on a daemon thread."""
    folder = Path(os.environ[TRACE_DIR_ENV])
    folder.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(FRAMES)
    threading.Thread(target=_answer_requests, args=(folder,), name="trace", daemon=True).start()
    from opthub_runner_admin.cli.main import main as runner_main

    sys.argv = ["opthub-runner", *argv]
    runner_main()


def compare(first: Path, last: Path, *, top: int = 25) -> list[str]:
    """The places whose live memory grew most from ``first`` to ``last``, by traceback."""
    before = tracemalloc.Snapshot.load(str(first))
    after = tracemalloc.Snapshot.load(str(last))
    total = sum(stat.size for stat in after.statistics("filename")) - sum(
        stat.size for stat in before.statistics("filename")
    )
    lines = [f"traced memory {total / 1024:+.1f} KiB from {first.name} to {last.name}"]
    # compare_to orders by the size of the change either way: what was freed is not growth.
    grown = sorted(
        (diff for diff in after.compare_to(before, "traceback") if diff.size_diff > 0),
        key=lambda diff: -diff.size_diff,
    )
    for diff in grown[:top]:
        lines.append(
            f"{diff.size_diff / 1024:+9.1f} KiB {diff.count_diff:+6d} blocks"
            f" (now {diff.size / 1024:.1f} KiB in {diff.count})"
        )
        lines += [f"      {line}" for line in diff.traceback.format(limit=FRAMES)]
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--help"], ["-h"]):
        print(f"{USAGE}\n\n{__doc__}")
        return 0
    if args[:1] == ["compare"] and len(args) == 3:
        try:
            print("\n".join(compare(Path(args[1]), Path(args[2]))))
        except OSError as exc:
            print(f"memory_trace: cannot read a snapshot: {exc}", file=sys.stderr)
            return 1
        return 0
    if os.environ.get(TRACE_DIR_ENV):
        run(args)
        return 0
    print(USAGE, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
