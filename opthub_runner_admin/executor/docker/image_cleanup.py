"""Removing the images this runner pulled and no match has used for a while (opt-in).

A season of matches and image updates fills Docker's data root: nothing
else ever removes an image. With ``image_cleanup_after`` set, the runner
records each image it PULLS (never one the operator built or loaded) and
when a job last used it, in a small JSON file of its state folder shared by
the runners of the host (``PulledImages``). ``ImageCleanup.run`` removes the
recorded images unused for that long, by TAG only (never by id, which could
take another tag's image), and never one that any container on the daemon
uses, a container started ahead included: Docker itself refuses a tag whose
image a container uses, and the runner checks first.

It runs every ``CHECK_EVERY`` seconds while jobs come, and once at once when
a pull or a container start met "no space left on device" (the job goes back
to the queue either way: a full disk is no participant's fault).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker.errors
import requests

log = logging.getLogger(__name__)

#: Seconds between two clean-ups while jobs come.
CHECK_EVERY = 3600.0
#: A job's use is written to the record at most this often per image (seconds).
USE_WRITE_EVERY = 300.0
#: Docker's words for a full disk.
NO_SPACE = "no space left on device"


def no_space(exc: BaseException) -> bool:
    """Whether a Docker error says its disk is full."""
    return NO_SPACE in str(exc).lower()


class PulledImages:
    """``{tag: unix time of its last use}`` in ``path``; safe across processes (flock)."""

    def __init__(self, *, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock
        self._written: dict[str, float] = {}
        self._lock = threading.Lock()

    def pulled(self, tag: str) -> None:
        self._set(tag)

    def used(self, tag: str) -> None:
        """A job uses ``tag``: recorded if it was pulled (at most every ``USE_WRITE_EVERY``)."""
        now = self._clock()
        with self._lock:
            if now - self._written.get(tag, float("-inf")) < USE_WRITE_EVERY:
                return
        with self._locked() as record:
            if tag in record:
                record[tag] = now
        self._note(tag, now)  # an image it did not pull is looked up as rarely

    def unused_since(self, cutoff: float) -> list[str]:
        with self._locked() as record:
            return sorted(tag for tag, used in record.items() if used < cutoff)

    def forget(self, tag: str) -> None:
        with self._locked() as record:
            record.pop(tag, None)

    def tags(self) -> list[str]:
        with self._locked() as record:
            return sorted(record)

    def _set(self, tag: str) -> None:
        now = self._clock()
        with self._locked() as record:
            record[tag] = now
            self._note(tag, now)

    def _note(self, tag: str, now: float) -> None:
        with self._lock:
            self._written[tag] = now

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, float]]:
        """The record, read and written back under an exclusive lock of its own file."""
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._path.with_suffix(".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            record = self._read()
            before = dict(record)
            yield record
            if record != before:
                temporary = self._path.with_suffix(".tmp")
                temporary.write_text(json.dumps(record, sort_keys=True))
                os.replace(temporary, self._path)

    def _read(self) -> dict[str, float]:
        try:
            data: Any = json.loads(self._path.read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        return {str(k): float(v) for k, v in data.items() if isinstance(v, (int, float))}


class ImageCleanup:
    """Removes the recorded images unused for ``after`` seconds; see the module docstring."""

    def __init__(
        self,
        *,
        api: Any,
        record: PulledImages,
        after: float,
        on_removed: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._api = api
        self._record = record
        self._after = after
        self._on_removed = on_removed
        self._clock = clock
        self._lock = threading.Lock()
        self._last = clock()

    def pulled(self, tag: str) -> None:
        self._record.pulled(tag)

    def used(self, tag: str) -> None:
        self._record.used(tag)

    def due(self) -> bool:
        return self._clock() - self._last >= CHECK_EVERY

    def run(self) -> list[str]:
        """Remove what is due now; returns the tags removed. Never raises for Docker's errors."""
        if not self._lock.acquire(blocking=False):
            return []  # another thread cleans up now
        try:
            self._last = self._clock()
            return self._run()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
            log.warning("image clean-up skipped: Docker did not answer (%s)", exc)
            return []
        finally:
            self._lock.release()

    def _run(self) -> list[str]:
        due = self._record.unused_since(self._clock() - self._after)
        if not due:
            return []
        in_use = self._images_in_use()
        removed: list[str] = []
        for tag in due:
            try:
                image_id = str(self._api.inspect_image(tag)["Id"])
            except docker.errors.ImageNotFound:
                self._record.forget(tag)  # removed by someone else
                continue
            if image_id in in_use or tag in in_use:
                continue  # a container (a warm one too) uses it
            try:
                self._api.remove_image(tag)  # by tag: the image goes only with its last tag
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:
                log.info("image %s kept: %s", tag, " ".join(str(exc.explanation).split()))
                continue
            self._record.forget(tag)
            removed.append(tag)
            log.warning(
                "removed image %s: pulled by the runner and unused by any match for %.0f days",
                tag,
                self._after / 86400,
            )
            if self._on_removed is not None:
                self._on_removed(tag)
        return removed

    def _images_in_use(self) -> set[str]:
        """Ids and names of the images of every container on the daemon, stopped ones too."""
        used: set[str] = set()
        for info in self._api.containers(all=True):
            used.add(str(info.get("ImageID", "")))
            used.add(str(info.get("Image", "")))
        return used
