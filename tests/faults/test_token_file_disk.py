"""The saved OptHub login (token file) on a full or read-only disk (#21.3).

The token file only saves a prompt at the next start: a write that cannot
happen is one warning naming the file, never a stop, never half a file, and
never the refresh token in the line; once the disk mends, the next save works.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest

from opthub_runner_admin.auth.cognito import Tokens
from opthub_runner_admin.auth.endpoints import PRODUCTION_API
from opthub_runner_admin.auth.token_file import TokenCache

from .test_cache_disk import fill, small_fs

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")

__all__ = ["small_fs"]


def test_a_token_file_that_cannot_be_saved_is_one_warning_and_no_half_file(
    small_fs: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="opthub_runner_admin.auth.token_file")
    folder = small_fs / "opthub-runner"
    cache = TokenCache(folder / "tokens.json")
    tokens = Tokens("admin", "access-secret", "refresh-secret", issued_at=0, expires_at=1)
    cache.save(PRODUCTION_API, tokens)  # a first login, saved
    (folder / "tokens.json").unlink()
    filler = fill(small_fs)
    cache.save(PRODUCTION_API, tokens)  # full disk
    assert list(folder.iterdir()) == []  # no half file, no temporary left behind
    filler.unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    cache.save(PRODUCTION_API, tokens)  # read-only disk
    lines = [
        r.getMessage() for r in caplog.records if "cannot save the OptHub login" in r.getMessage()
    ]
    assert len(lines) == 2
    assert all(str(folder / "tokens.json") in line for line in lines)
    assert all("refresh-secret" not in line for line in lines)
    subprocess.run(["mount", "-o", "remount,rw", str(small_fs)], check=True)
    cache.save(PRODUCTION_API, tokens)  # the disk mended: saved again
    login = cache.load(PRODUCTION_API)
    assert login is not None and login.refresh_token == "refresh-secret"
