"""The status board's hour of history and its table per match, on an injected clock."""

from __future__ import annotations

import json

from opthub_runner_admin.jobs.outcome import Done, HandBack
from opthub_runner_admin.observe.board import MATCHES_SHOWN, StatusBoard
from opthub_runner_admin.observe.status import status_line
from opthub_runner_admin.queue import Message
from opthub_runner_admin.queue.base import QueueStats


class Clock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def _message(n: int, match: str = "m-1") -> Message:
    body = json.dumps({"MatchID": match, "ParticipantID": "alice", "TrialNo": f"{n:04d}"})
    return Message(str(n), body, "r", 1, 0.0)


def _finish(board: StatusBoard, n: int, outcome: Done | HandBack, seconds: float = 1.0,
            match: str = "m-1") -> None:  # fmt: skip
    board.job_started(_message(n, match))
    board.job_finished(_message(n, match), outcome, seconds)


def _stats(visible: int, in_flight: int = 0, dead: int | None = None) -> QueueStats:
    return QueueStats("q", visible, in_flight, 0, None, "dlq" if dead is not None else None, dead)


def test_jobs_per_minute_puts_each_finish_in_its_minute_and_forgets_past_the_hour() -> None:
    clock = Clock()
    board = StatusBoard(slow_after=600, clock=clock)
    _finish(board, 1, Done("evaluation Success"))  # 61 min before the snapshot: forgotten
    clock.now += 60 * 60 + 30
    _finish(board, 2, Done("evaluation Success"))  # 31 min before: bar 60-1-31 = 28
    _finish(board, 3, Done("evaluation Failed"))
    clock.now += 30 * 60 + 30
    _finish(board, 4, Done("evaluation Success"))  # 30 s before: the last bar
    _finish(board, 5, HandBack(60, "later"))  # not a finished job
    clock.now += 30

    bars = board.snapshot().jobs_per_minute

    assert len(bars) == 60
    assert sum(bars) == 3
    assert bars[59] == 1 and bars[28] == 2


def test_depth_history_keeps_the_hour_s_samples_with_their_age() -> None:
    clock = Clock()
    board = StatusBoard(slow_after=600, clock=clock)
    board.queue_stats(_stats(99))
    clock.now += 3601
    board.queue_stats(_stats(5, 2))
    clock.now += 60
    board.queue_stats(_stats(7, 1))

    snapshot = board.snapshot()

    assert [(s.ago, s.visible, s.in_flight) for s in snapshot.depth_history] == [
        (60.0, 5, 2),
        (0.0, 7, 1),
    ]
    assert snapshot.queue == _stats(7, 1) and snapshot.queue_depth == 7


def test_the_table_per_match_counts_medians_and_keeps_the_last_failure_redacted() -> None:
    clock = Clock()
    board = StatusBoard(slow_after=600, clock=clock)
    for n, seconds in enumerate((1.0, 2.0, 9.0), start=1):
        _finish(board, n, Done("evaluation Success"), seconds, match="m-1")
    clock.now += 1
    board.job_started(_message(4, "m-2"))
    board.container_started("image", ["hunter2"])
    board.job_finished(
        _message(4, "m-2"), Done("evaluation Failed", admin_message="leaked hunter2"), 4.0
    )

    rows = {row.match: row for row in board.snapshot().matches}

    assert (rows["m-1"].done, rows["m-1"].failed, rows["m-1"].median_seconds) == (3, 0, 2.0)
    assert (rows["m-2"].done, rows["m-2"].failed) == (0, 1)
    assert rows["m-2"].last_failure == "leaked [redacted]"
    assert next(row.match for row in board.snapshot().matches) == "m-2"  # most recent first


def test_the_table_per_match_is_bounded() -> None:
    clock = Clock()
    board = StatusBoard(slow_after=600, clock=clock)
    for n in range(MATCHES_SHOWN + 5):
        clock.now += 1
        _finish(board, n, Done("evaluation Success"), match=f"m-{n}")

    matches = [row.match for row in board.snapshot().matches]

    assert len(matches) == MATCHES_SHOWN
    assert "m-0" not in matches and f"m-{MATCHES_SHOWN + 4}" in matches


def test_the_status_line_names_dead_letters_and_the_command_to_see_them() -> None:
    board = StatusBoard(slow_after=600, clock=Clock())
    board.queue_stats(_stats(3, dead=0))
    assert "dead letters" not in status_line("evaluator", board.snapshot())
    board.queue_stats(_stats(3, dead=2))
    assert status_line("evaluator", board.snapshot()).endswith(
        "queue depth 3, 2 dead letters (opthub-runner dlq list)"
    )
