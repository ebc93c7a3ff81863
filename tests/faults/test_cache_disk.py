"""The scorer's history cache on a real, small file system that fills up, turns read-only,
and is removed: every score exact, no Failed item, and the cache back by itself.

The cache sits on its own tmpfs, mounted by the test (root only: elsewhere the
tests are skipped with that reason). The clock of the cache is the test's, so
"try again after a minute" is a state the test moves, not a wait.
"""

from __future__ import annotations

import logging
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from opthub_runner_admin.history import HistoryBuilder, SqliteHistoryCache
from opthub_runner_admin.host import pidfiles
from opthub_runner_admin.jobs.outcome import Done, JobContext
from opthub_runner_admin.jobs.score import ScoreJob
from opthub_runner_admin.model import Evaluation, Timing, TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import job_body
from opthub_runner_admin.platform_side.stack import AwsStack
from opthub_runner_admin.queue import Message
from opthub_runner_admin.store.dynamodb import DynamoStore
from opthub_runner_admin.store.memory import MemoryStore

from ..support.e2e import make_worker, result_item
from ..support.scoring import START, BestSoFar, OneMatch, expected_score, objective

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounting a tmpfs for cache_dir needs root"
)

TIMING = Timing(START, START)
PARTICIPANTS = 4


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of its own (unmounted at the end, whatever its state)."""
    mount = tmp_path / "fs"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write until the file system is full; return the filler (delete it to free space)."""
    filler = directory / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


class Scorer:
    """One ScoreJob over a memory table, the cache on ``cache_dir``; trials scored in order."""

    def __init__(self, cache_dir: Path, clock: Clock) -> None:
        self.store = MemoryStore()
        self.match = str(uuid.uuid4())
        self.cache = SqliteHistoryCache(
            cache_dir / "history.sqlite3", scope="test", retry_seconds=60, clock=clock
        )
        self.job = ScoreJob(
            store=self.store,
            matches=OneMatch(),
            executor=BestSoFar(),
            history=HistoryBuilder(self.store, self.cache),
            timeout=60,
            max_deferrals=1,
            defer_seconds=1,
        )
        self.next_trial = 1

    def ref(self, participant: int, trial: int) -> TrialRef:
        return TrialRef(self.match, f"p-{participant}", f"{trial:04d}")

    def score_round(self) -> None:
        """Trial ``next_trial`` of every participant: evaluated, then scored."""
        trial = self.next_trial
        for participant in range(PARTICIPANTS):
            ref = self.ref(participant, trial)
            self.store.put_evaluation(
                ref, Evaluation(objective=objective(participant, trial)), TIMING
            )
            message = Message(f"m-{participant}-{trial}", job_body(ref), "r", 1, time.monotonic())
            ctx = JobContext(deadline=time.monotonic() + 600, cancel=threading.Event())
            assert self.job(message, ctx) == Done("score Success")
        self.next_trial += 1

    def assert_exact(self) -> None:
        items = self.store.score_items()
        assert [i for i in items if i["Status"] != "Success"] == []
        found = {(str(i["ID"]), str(i["Trial"])): i["Value"] for i in items}
        assert found == {
            (f"Scores#Match#{self.match}#p-{p}", f"Success#{t:04d}"): expected_score(p, t)
            for p in range(PARTICIPANTS)
            for t in range(1, self.next_trial)
        }


def cache_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "cannot be used" in r.getMessage()
    ]


def test_a_full_disk_under_the_cache_costs_table_reads_never_a_score(
    small_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    scorer = Scorer(small_fs / "cache", clock)
    for _ in range(3):
        scorer.score_round()
    filler = fill(small_fs)
    for _ in range(6):  # mid-run: the disk is full, and stays full over many writes
        scorer.score_round()
    scorer.assert_exact()
    warnings = cache_warnings(caplog)
    assert len(warnings) == 1, warnings  # one warning per outage, naming the path and the fix
    assert str(small_fs / "cache" / "history.sqlite3") in warnings[0]
    assert "cache_dir" in warnings[0]
    filler.unlink()  # space comes back
    clock.now += 61  # the next attempt is due
    scorer.score_round()
    scorer.assert_exact()
    assert any("works again" in r.getMessage() for r in caplog.records)
    # What the file holds is whole: a restarted scorer reads every trial's history from it.
    scorer.cache.close()
    again = SqliteHistoryCache(small_fs / "cache" / "history.sqlite3", scope="test")
    for participant in range(PARTICIPANTS):
        prefix = again.get((scorer.match, f"p-{participant}"))
        assert prefix is not None and prefix.watermark == f"{scorer.next_trial - 2:04d}"
        assert [e.trial_no for e in prefix.entries] == [
            f"{t:04d}" for t in range(1, scorer.next_trial - 1)
        ]
    again.close()


def test_a_read_only_or_removed_cache_dir_costs_table_reads_never_a_score(
    small_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    (small_fs / "cache").mkdir()
    # Read-only from the start (a file system with open writers cannot be made read-only):
    # the scorer starts all the same.
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    scorer = Scorer(small_fs / "cache", clock)
    scorer.score_round()
    scorer.score_round()
    clock.now += 61
    scorer.score_round()  # tried again, still read-only: no second warning
    assert len(cache_warnings(caplog)) == 1
    subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    clock.now += 61
    scorer.score_round()
    assert (small_fs / "cache" / "history.sqlite3").exists()  # back by itself
    subprocess.run(["rm", "-rf", str(small_fs / "cache")], check=True)  # removed under it
    scorer.score_round()
    clock.now += 61
    scorer.score_round()
    scorer.score_round()
    scorer.assert_exact()
    assert (small_fs / "cache" / "history.sqlite3").exists()  # created anew by itself
    # And whole: a restarted scorer finds every participant's history in it.
    scorer.cache.close()
    again = SqliteHistoryCache(small_fs / "cache" / "history.sqlite3", scope="test")
    for participant in range(PARTICIPANTS):
        prefix = again.get((scorer.match, f"p-{participant}"))
        assert prefix is not None
        assert [e.trial_no for e in prefix.entries] == [
            f"{t:04d}" for t in range(1, int(prefix.watermark) + 1)
        ]
        assert int(prefix.watermark) == scorer.next_trial - 2
    again.close()


def test_a_pid_file_that_cannot_be_written_leaves_the_runner_running(
    small_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    with pidfiles.registered("scorer", folder=small_fs / "state") as path:
        assert not path.exists()
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("cannot write the pid file" in line and "kill -TERM" in line for line in lines)


def test_the_runner_scores_exactly_with_its_cache_dir_on_a_full_disk(
    small_fs: Path,
    tmp_path: Path,
    aws: AwsStack,
    best_so_far_image: str,
    case_labels: dict[str, str],
) -> None:
    """The runner as the CLI builds it (moto, Docker); its cache_dir's disk fills after start."""
    match = str(uuid.uuid4())
    cache_dir = small_fs / "cache"
    config = write_config(
        tmp_path,
        aws,
        {match: match_entry("opthub-test/unused:1", best_so_far_image)},
        cache_dir=str(cache_dir),
        workers=2,
    )
    refs = [TrialRef(match, f"p-{p}", f"{t:04d}") for t in (1, 2) for p in range(3)]
    worker = make_worker("scorer", config, case_labels, num=len(refs))  # opens the cache file
    assert (cache_dir / "history.sqlite3").exists()
    fill(small_fs)
    store = DynamoStore(aws.clients.dynamodb, aws.table_name)
    for trial_ref in refs:
        participant, trial = int(trial_ref.participant_id[2:]), int(trial_ref.trial_no)
        store.put_evaluation(trial_ref, Evaluation(objective=objective(participant, trial)), TIMING)
        aws.clients.sqs.send_message(QueueUrl=aws.scorer_queue_url, MessageBody=job_body(trial_ref))
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    thread.join(90)
    worker.stop(force=True)
    thread.join(30)
    for trial_ref in refs:
        participant, trial = int(trial_ref.participant_id[2:]), int(trial_ref.trial_no)
        item = result_item(aws, "Scores", trial_ref)
        assert item["Status"] == "Success", item
        assert item["Value"] == expected_score(participant, trial)
