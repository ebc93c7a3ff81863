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
#: Seconds the scorer goes without a cache file it cannot use before trying it again.
RETRY_AFTER = 60.0
#: SQLite's primary result codes for a file another connection holds.
SQLITE_BUSY, SQLITE_LOCKED = 5, 6


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
        retry_after: float = RETRY_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._memory = MemoryHistoryCache(max_keys=MEMORY_KEYS)
        self._path = path
        self._scope = scope
        self._lock = threading.Lock()
        self._retry_after = retry_after
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        #: While the file cannot be used: when to try it again (None: it works).
        self._broken_until: float | None = None

    def _usable(self) -> sqlite3.Connection | None:
        """The open file, opening it now if due; None while it is out of use (hold the lock).

        The file is optional: the table holds every fact it does. So a file that
        cannot be read or written (disk full, read-only, removed, no permission)
        is left alone for ``retry_after`` seconds with ONE warning, never raised
        to the job (which would settle a participant's trial as Failed).
        """
        if self._db is not None and not self._path.exists():
            # Removed under us: SQLite would go on writing a file nobody can open again.
            log.warning("history cache %s was removed; creating it again", self._path)
            self._db.close()
            self._db = None
        if self._db is not None:
            return self._db
        if self._broken_until is not None and self._clock() < self._broken_until:
            return None
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            self._db = self._open(self._path)
        except (OSError, sqlite3.Error) as exc:
            self._out_of_use(exc)
            return None
        if self._broken_until is not None:
            log.warning("history cache %s is usable again", self._path)
            self._broken_until = None
        # Memory may be ahead of a file just (re)opened: forget it, so that each
        # participant's next write gives the file all its entries, never a
        # watermark without them.
        self._memory = MemoryHistoryCache(max_keys=MEMORY_KEYS)
        return self._db

    def _out_of_use(self, exc: BaseException) -> None:
        """Stop using the file for a while; warn once per outage (hold the lock)."""
        if self._broken_until is None:
            log.warning(
                "history cache %s cannot be used (%s: %s); scoring goes on reading history"
                " from the table; free space on or fix the permissions of %s (tried again"
                " every %.0f s)",
                self._path,
                type(exc).__name__,
                exc,
                self._path.parent,
                self._retry_after,
            )
        self._broken_until = self._clock() + self._retry_after
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

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
                aside = path.with_suffix(path.suffix + ".broken")
                log.warning("history cache %s is unreadable (%s); moved to %s", path, exc, aside)
                path.replace(aside)
                return self._connect(path)

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
            try:
                prefix = self._read(key)
            except (OSError, sqlite3.Error) as exc:
                self._out_of_use(exc)
                return None
            if prefix is not None:
                self._memory.put(key, prefix)
        return prefix

    def _read(self, key: tuple[str, str]) -> Prefix | None:
        db = self._usable()
        if db is None:
            return None
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
        return Prefix(row[0], tuple(_decode(body) for (body,) in rows))

    def put(self, key: tuple[str, str], prefix: Prefix) -> None:
        with self._lock:
            try:
                self._write(key, prefix)
            except (OSError, sqlite3.Error) as exc:
                self._out_of_use(exc)
            self._memory.put(key, prefix)

    def _write(self, key: tuple[str, str], prefix: Prefix) -> None:
        db = self._usable()
        if db is None:
            return
        old = self._memory.get(key)
        known = {e.trial_no for e in old.entries} if old else set()
        new = [e for e in prefix.entries if e.trial_no not in known]
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

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def _busy(exc: sqlite3.OperationalError) -> bool:
    """Another process holds the file (worth waiting for); not a full or read-only disk."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if code is not None:
        return code & 0xFF in (SQLITE_BUSY, SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


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
