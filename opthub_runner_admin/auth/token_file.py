"""The saved login: refresh tokens kept between restarts in a private file.

Restarting the runner in tmux (or under systemd) should not prompt again
while the refresh token still works; only the refresh token is kept, never
the password or an access token.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .cognito import Tokens
from .endpoints import ApiSettings

log = logging.getLogger(__name__)

_CACHE_VERSION = 1
_CACHE_FILE = "tokens.json"
_CACHE_DIR = "opthub-runner"


def default_cache_path() -> Path:
    """``$XDG_CONFIG_HOME/opthub-runner/tokens.json``, by default under ``~/.config``."""
    base = os.environ.get("XDG_CONFIG_HOME", "")
    # The XDG spec says to ignore a relative value.
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".config"
    return root / _CACHE_DIR / _CACHE_FILE


@dataclass(frozen=True)
class CachedLogin:
    """What the cache keeps of a login: enough to refresh it, nothing to log in anew."""

    username: str
    refresh_token: str = field(repr=False)
    #: Unix time the password was last given (None: saved by a runner that did not say).
    logged_in_at: float | None = None


class TokenCache:
    """Refresh tokens kept between restarts, per user pool, app client and username.

    The file is created with mode 0600 (and its directory 0700) and replaced
    atomically, so that a crash never leaves half a file and no other user can
    read it even for a moment. One login per pool and client is kept: the
    latest. A file that others can read is ignored (and overwritten at the
    next login). Failing to write it is logged, not fatal: the cache only
    saves a prompt.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.path = path if path is not None else default_cache_path()
        self._lock = threading.Lock()

    def load(self, settings: ApiSettings, username: str | None = None) -> CachedLogin | None:
        """The latest login of this pool and client (of ``username`` if given)."""
        with self._lock:
            for entry in reversed(self._read()):
                if _same_client(entry, settings) and username in (None, entry.get("username")):
                    return CachedLogin(
                        username=str(entry["username"]),
                        refresh_token=str(entry["refresh_token"]),
                        logged_in_at=_logged_in_at(entry),
                    )
        return None

    def save(
        self, settings: ApiSettings, tokens: Tokens, logged_in_at: float | None = None
    ) -> None:
        """Keep ``tokens``' refresh token as the login of this pool and client.

        ``logged_in_at``: when the password was given (kept across rotations, for the
        estimate of the login's end).
        """
        with self._lock:
            logins = [e for e in self._read() if not _same_client(e, settings)]
            logins.append(
                {
                    "user_pool_id": settings.cognito_user_pool_id,
                    "client_id": settings.cognito_client_id,
                    "username": tokens.username,
                    "refresh_token": tokens.refresh_token,
                    "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    **({} if logged_in_at is None else {"logged_in_at": logged_in_at}),
                }
            )
            self._write(logins)

    def forget(self, settings: ApiSettings, username: str) -> None:
        """Drop a login whose refresh token stopped working."""
        with self._lock:
            logins = self._read()
            kept = [
                e for e in logins if not (_same_client(e, settings) and e["username"] == username)
            ]
            if len(kept) != len(logins):
                self._write(kept)

    def remove(self) -> bool:
        """Delete the file (``opthub-runner logout``); True if there was one."""
        with self._lock:
            try:
                self.path.unlink()
            except FileNotFoundError:
                return False
            log.info("removed the saved OptHub login %s", self.path)
            return True

    def _read(self) -> list[dict[str, Any]]:
        try:
            mode = self.path.stat().st_mode
            if mode & 0o077:
                log.warning("ignoring %s: other users may read it (expected mode 0600)", self.path)
                return []
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            log.warning("ignoring the saved OptHub login %s: %s", self.path, type(exc).__name__)
            return []
        if not isinstance(raw, Mapping) or raw.get("version") != _CACHE_VERSION:
            return []
        logins = raw.get("logins")
        return [e for e in logins if _valid_entry(e)] if isinstance(logins, list) else []

    def _write(self, logins: list[dict[str, Any]]) -> None:
        text = json.dumps({"version": _CACHE_VERSION, "logins": logins}, indent=2)
        try:
            if logins:
                _write_private(self.path, text)
            else:
                self.path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("cannot save the OptHub login in %s: %s", self.path, exc.strerror)


def _same_client(entry: Mapping[str, Any], settings: ApiSettings) -> bool:
    return (
        entry.get("user_pool_id") == settings.cognito_user_pool_id
        and entry.get("client_id") == settings.cognito_client_id
    )


def _logged_in_at(entry: Mapping[str, Any]) -> float | None:
    value = entry.get("logged_in_at")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return None


def _valid_entry(entry: Any) -> bool:
    keys = ("user_pool_id", "client_id", "username", "refresh_token")
    return isinstance(entry, Mapping) and all(isinstance(entry.get(k), str) for k in keys)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only from the first byte."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    temporary.unlink(missing_ok=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            os.fchmod(handle.fileno(), 0o600)  # in case the umask or the filesystem differs
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def remove_token_cache(path: Path | None = None) -> bool:
    """Forget every saved login (``opthub-runner logout``); True if a file was removed."""
    return TokenCache(path).remove()
