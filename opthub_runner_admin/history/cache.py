"""Where resolved history is kept between jobs, and between restarts.

A cache entry is a participant's *resolved prefix*: every trial up to the
watermark has its final results in the table, and results are immutable once
written (the flag item guarantees it). So what the cache holds can never
disagree with the table, whatever other scorers on other machines do; it only
spares reading the same items again.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..model import Evaluation, HistoryEntry

log = logging.getLogger(__name__)

#: Participants whose histories the disk cache also keeps in memory.
MEMORY_KEYS = 1024
#: Seconds to wait for a cache file that other scorers on this machine hold locked.
OPEN_TIMEOUT = 30.0
#: Seconds between two attempts at a cache file that could not be used.
RETRY_SECONDS = 60.0


@dataclass(frozen=True)
class Prefix:
    """Trials up to ``watermark`` (inclusive) are all resolved; ``entries`` are their history."""

    watermark: str
    entries: tuple[HistoryEntry, ...]


class HistoryCache(Protocol):
    def get(self, key: tuple[str, str]) -> Prefix | None: ...

    def put(self, key: tuple[str, str], prefix: Prefix) -> None: ...


class MemoryHistoryCache:
    """Per-process cache; lost on restart.

    ``max_keys`` bounds it to the participants used most recently, so that a
    runner living for weeks does not hold every history of the competition.
    """

    def __init__(self, max_keys: int | None = None) -> None:
        self._data: OrderedDict[tuple[str, str], Prefix] = OrderedDict()
        self._max_keys = max_keys
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> Prefix | None:
        with self._lock:
            prefix = self._data.get(key)
            if prefix is not None:
                self._data.move_to_end(key)
            return prefix

    def keys(self) -> list[tuple[str, str]]:
        with self._lock:
            return list(self._data)

    def put(self, key: tuple[str, str], prefix: Prefix) -> None:
        with self._lock:
            self._data[key] = prefix
            self._data.move_to_end(key)
            if self._max_keys is not None and len(self._data) > self._max_keys:
                self._data.popitem(last=False)


class SqliteHistoryCache:
    """Memory in front of an SQLite file, so that a restarted scorer need not reread everything.

    ``scope`` names the table (and endpoint) the facts come from: a cache file
    shared by runners of two competitions never mixes their histories.
    Entries are appended as the watermark moves, so a write costs what is new.
    A damaged file is set aside and rebuilt from the table, never trusted.
    """

    def __init__(
        self,
        path: Path,
        *,
        scope: str,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._memory = MemoryHistoryCache(max_keys=MEMORY_KEYS)
        self._scope = scope
        self._path = path
        self._lock = threading.Lock()
        self._retry_seconds = retry_seconds
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        #: When the file may be tried again (None: it works, or is to be opened now).
        self._retry_at: float | None = None
        #: Participants whose entries in memory may not all be in the file (written
        #: while it failed): their next write to the file carries every entry.
        self._behind: set[tuple[str, str]] = set()
        #: Why the file was found damaged while open: set aside before the next open.
        self._damaged: sqlite3.DatabaseError | None = None
        self._inode = 0
        self._checked_at = 0.0
        with self._lock:
            self._usable()

    # The file is only a shortcut: whatever it cannot do (disk full, read-only,
    # removed, damaged, no permission) costs table reads, never a score. One
    # warning says so; the file is tried again every ``retry_seconds``.

    def _usable(self) -> sqlite3.Connection | None:
        """The open file, or None while it is out of use (call with the lock held)."""
        if self._db is not None and not self._replaced():
            return self._db
        if self._retry_at is not None and self._clock() < self._retry_at:
            return None
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            if self._damaged is not None:
                self._set_aside(self._path, self._damaged)
                self._damaged = None
            self._db = self._open(self._path)
            self._inode = self._path.stat().st_ino
            self._checked_at = self._clock()
        except (OSError, sqlite3.Error) as exc:
            self._failed(exc)
            return None
        if self._retry_at is not None:
            log.warning("history cache %s works again", self._path)
            self._retry_at = None
        return self._db

    def _replaced(self) -> bool:
        """Whether the open file was removed or replaced (looked at once per ``retry_seconds``).

        SQLite goes on writing to a file removed under it, which no restart
        would find: the file is opened anew at its path instead.
        """
        if self._clock() < self._checked_at + self._retry_seconds:
            return False
        self._checked_at = self._clock()
        try:
            same = self._path.stat().st_ino == self._inode
        except OSError:
            same = False
        if not same and self._db is not None:
            log.warning("history cache %s was removed or replaced; opening it anew", self._path)
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
            self._behind.update(self._memory.keys())
        return not same

    def _failed(self, exc: BaseException) -> None:
        """Put the file out of use until the next attempt; warn once per outage (lock held)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        if isinstance(exc, sqlite3.DatabaseError) and not isinstance(exc, sqlite3.OperationalError):
            # The file's content is damaged (not the disk under it): never trusted again.
            self._damaged = exc
        if self._retry_at is None:
            log.warning(
                "history cache %s cannot be used (%s: %s); scoring goes on, reading histories "
                "from the table, and tries the cache again every %.0f s: free space on, or allow "
                "writes to, %s (or set cache_dir in config.yml to a writable directory)",
                self._path,
                type(exc).__name__,
                exc,
                self._retry_seconds,
                self._path.parent,
            )
        else:
            log.debug("history cache %s still unusable (%s)", self._path, exc)
        self._retry_at = self._clock() + self._retry_seconds

    def _open(self, path: Path) -> sqlite3.Connection:
        # Several scorers on one machine share the file: one that is busy (another
        # process is creating it or switching it to WAL) is waited for, never set
        # aside; only a file SQLite cannot read at all is.
        deadline = time.monotonic() + OPEN_TIMEOUT
        while True:
            try:
                return self._connect(path)
            except sqlite3.OperationalError as exc:
                if not _busy(exc) or time.monotonic() >= deadline:
                    raise
                log.debug("history cache %s busy (%s); trying again", path, exc)
                time.sleep(0.05)
            except sqlite3.DatabaseError as exc:
                self._set_aside(path, exc)
                return self._connect(path)

    @staticmethod
    def _set_aside(path: Path, exc: sqlite3.DatabaseError) -> None:
        aside = path.with_suffix(path.suffix + ".broken")
        log.warning("history cache %s is unreadable (%s); moved to %s", path, exc, aside)
        path.replace(aside)

    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        db = sqlite3.connect(
            str(path), check_same_thread=False, isolation_level=None, timeout=OPEN_TIMEOUT
        )
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS watermark (scope TEXT, match TEXT, participant TEXT,"
                " trial TEXT, PRIMARY KEY (scope, match, participant))"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS entry (scope TEXT, match TEXT, participant TEXT,"
                " trial TEXT, body TEXT, PRIMARY KEY (scope, match, participant, trial))"
            )
        except BaseException:
            db.close()
            raise
        return db

    def get(self, key: tuple[str, str]) -> Prefix | None:
        cached = self._memory.get(key)
        if cached is not None:
            return cached
        with self._lock:
            db = self._usable()
            if db is None:
                return None
            try:
                row = db.execute(
                    "SELECT trial FROM watermark WHERE scope=? AND match=? AND participant=?",
                    (self._scope, *key),
                ).fetchone()
                if row is None:
                    return None
                rows = db.execute(
                    "SELECT body FROM entry WHERE scope=? AND match=? AND participant=? AND"
                    " length(trial)=length(?) AND trial<=? ORDER BY trial",
                    (self._scope, *key, row[0], row[0]),
                ).fetchall()
                prefix = Prefix(row[0], tuple(_decode(body) for (body,) in rows))
            except (OSError, sqlite3.Error, ValueError, KeyError, TypeError) as exc:
                self._failed(exc)
                return None
        self._memory.put(key, prefix)
        return prefix

    def put(self, key: tuple[str, str], prefix: Prefix) -> None:
        old = self._memory.get(key)
        with self._lock:
            db = self._usable()  # first: it may find the file behind the memory
            known = {e.trial_no for e in old.entries} if old and key not in self._behind else set()
            new = [e for e in prefix.entries if e.trial_no not in known]
            if db is None:
                self._behind.add(key)
            else:
                try:
                    with db:
                        db.execute("BEGIN")
                        db.executemany(
                            "INSERT OR REPLACE INTO entry VALUES (?, ?, ?, ?, ?)",
                            [(self._scope, *key, e.trial_no, _encode(e)) for e in new],
                        )
                        db.execute(
                            "INSERT OR REPLACE INTO watermark VALUES (?, ?, ?, ?)",
                            (self._scope, *key, prefix.watermark),
                        )
                    self._behind.discard(key)
                except (OSError, sqlite3.Error) as exc:
                    self._behind.add(key)
                    self._failed(exc)
        self._memory.put(key, prefix)

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Another process holds the file (it is being created or switched to WAL): wait for it."""
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _encode(entry: HistoryEntry) -> str:
    return json.dumps(entry.as_json())


def _decode(body: str) -> HistoryEntry:
    data = json.loads(body)
    evaluation = Evaluation(
        objective=data["objective"],
        constraint=data["constraint"],
        info=data["info"],
        feasible=data["feasible"],
    )
    return HistoryEntry(trial_no=data["trial_no"], evaluation=evaluation, score=data["score"])
