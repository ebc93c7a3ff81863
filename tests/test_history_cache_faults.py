"""The history cache on a real file system that fails under it: scores stay exact.

Each test mounts a small tmpfs for ``cache_dir`` (root only: mounting needs
it), breaks it mid-run (full, read-only, removed), and checks every history
the scorer builds against one built without any cache; then lets the file
system recover and checks the cache is used again without a restart.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opthub_runner_admin import pidfiles
from opthub_runner_admin.auth.cognito import Tokens
from opthub_runner_admin.auth.token_file import TokenCache
from opthub_runner_admin.config import PRODUCTION_API
from opthub_runner_admin.history import HistoryBuilder, MemoryHistoryCache, SqliteHistoryCache
from opthub_runner_admin.model import Evaluation, Score, TrialRef
from opthub_runner_admin.store.memory import MemoryStore
from tests.test_history import MATCH, TIMING, RecordingStore

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="mounting a tmpfs for cache_dir needs root"
)

#: Small enough to fill in a moment, larger than SQLite's write-ahead log grows here.
TMPFS_SIZE = "8m"
#: Each entry's info is this large, so that every write needs new pages.
INFO_BYTES = 2000
PARTICIPANTS = 6
TRIALS = 6


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "cache"
    where.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(where)], check=True
    )
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def ref(participant: int, n: int) -> TrialRef:
    return TrialRef(MATCH, f"p-{participant}", str(n).zfill(4))


def fill(store: MemoryStore, n: int) -> None:
    for p in range(PARTICIPANTS):
        evaluation = Evaluation(objective=float(n * p), info={"pad": "x" * INFO_BYTES})
        store.put_evaluation(ref(p, n), evaluation, TIMING)
        store.put_score(ref(p, n), Score(n / (p + 1)), TIMING)


def check_round(store: MemoryStore, builder: HistoryBuilder, n: int) -> None:
    """Every participant's history before trial ``n`` is exactly the table's."""
    fill(store, n - 1)
    for p in range(PARTICIPANTS):
        expected = HistoryBuilder(store, MemoryHistoryCache()).collect(ref(p, n))
        assert builder.collect(ref(p, n)) == expected


def fill_disk(where: Path) -> Path:
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "cannot be used" in r.getMessage()]


def run(
    where: Path,
    caplog: pytest.LogCaptureFixture,
    break_it: Callable[[SqliteHistoryCache], object],
    mend: Callable[[], object],
) -> tuple[RecordingStore, SqliteHistoryCache]:
    """Score a few rounds, break the file system, score on, mend it: every history exact."""
    caplog.set_level(logging.WARNING, logger="opthub_runner_admin.history.cache")
    clock = Clock()
    store = RecordingStore()
    cache = SqliteHistoryCache(where / "sub" / "history.sqlite3", scope="t", clock=clock)
    builder = HistoryBuilder(store, cache)
    check_round(store, builder, 2)
    assert warnings(caplog) == []
    break_it(cache)
    for n in range(3, TRIALS):
        check_round(store, builder, n)
        clock.now += 1.0  # within the pause: not tried again, no more warnings
    assert len(warnings(caplog)) == 1
    assert str(where / "sub" / "history.sqlite3") in warnings(caplog)[0]
    mend()
    clock.now += 120.0
    check_round(store, builder, TRIALS)
    assert any("usable again" in r.getMessage() for r in caplog.records)
    return store, cache


def assert_file_serves_a_restart(
    where: Path, store: RecordingStore, cache: SqliteHistoryCache
) -> None:
    """After recovery the file holds full prefixes: a restarted scorer reads no table item."""
    cache.close()
    expected = [
        HistoryBuilder(store, MemoryHistoryCache()).collect(ref(p, TRIALS))
        for p in range(PARTICIPANTS)
    ]
    restarted = SqliteHistoryCache(where / "sub" / "history.sqlite3", scope="t")
    store.ranges.clear()
    got = [HistoryBuilder(store, restarted).collect(ref(p, TRIALS)) for p in range(PARTICIPANTS)]
    assert got == expected
    assert store.ranges == []


def test_a_full_cache_disk_degrades_and_recovers(
    mount: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, cache = run(mount, caplog, lambda _: fill_disk(mount), (mount / "filler").unlink)
    assert_file_serves_a_restart(mount, store, cache)


def test_a_read_only_cache_disk_degrades_and_recovers(
    mount: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def remount(mode: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], check=True)

    def go_read_only(cache: SqliteHistoryCache) -> None:
        # Linux refuses remount,ro while a file on it is open for writing (the
        # kernel's own remount after disk errors does not ask): the scorer's
        # connection is closed first, as after a restart, and opened again on
        # the read-only file system.
        cache.close()
        remount("ro")

    store, cache = run(mount, caplog, go_read_only, lambda: remount("rw"))
    assert_file_serves_a_restart(mount, store, cache)


def test_a_removed_cache_dir_is_made_again(mount: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="opthub_runner_admin.history.cache")
    clock = Clock()
    store = RecordingStore()
    path = mount / "sub" / "history.sqlite3"
    cache = SqliteHistoryCache(path, scope="t", clock=clock)
    builder = HistoryBuilder(store, cache)
    check_round(store, builder, 2)
    shutil.rmtree(mount / "sub")
    for n in range(3, TRIALS + 1):
        check_round(store, builder, n)
    assert path.exists()
    assert_file_serves_a_restart(mount, store, cache)


def test_a_pid_file_on_a_full_or_read_only_disk_is_a_warning_not_a_stop(
    mount: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="opthub_runner_admin.pidfiles")
    fill_disk(mount)
    with pidfiles.registered("scorer", folder=mount) as full:
        assert not full.exists()  # no half file that `stop` would misread
    (mount / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    with pidfiles.registered("scorer", folder=mount / "sub") as read_only:
        assert not read_only.exists()
    lines = [
        r.getMessage() for r in caplog.records if "cannot write the pid file" in r.getMessage()
    ]
    assert len(lines) == 2
    assert str(full) in lines[0] and str(read_only) in lines[1]


def test_a_token_file_that_cannot_be_saved_is_a_warning_and_no_half_file(
    mount: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="opthub_runner_admin.auth.token_file")
    cache = TokenCache(mount / "opthub-runner" / "tokens.json")
    tokens = Tokens("admin", "access-secret", "refresh-secret", issued_at=0, expires_at=1)
    cache.save(PRODUCTION_API, tokens)  # a first login, saved
    (mount / "opthub-runner" / "tokens.json").unlink()
    fill_disk(mount)
    cache.save(PRODUCTION_API, tokens)
    assert sorted(p.name for p in (mount / "opthub-runner").iterdir()) == []
    (mount / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
    cache.save(PRODUCTION_API, tokens)
    lines = [
        r.getMessage() for r in caplog.records if "cannot save the OptHub login" in r.getMessage()
    ]
    assert len(lines) == 2
    assert all("refresh-secret" not in line for line in lines)
    subprocess.run(["mount", "-o", "remount,rw", str(mount)], check=True)
    cache.save(PRODUCTION_API, tokens)
    login = cache.load(PRODUCTION_API)
    assert login is not None and login.refresh_token == "refresh-secret"
