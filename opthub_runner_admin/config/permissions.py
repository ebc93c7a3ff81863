"""Noticing a configuration file that other users of the machine can read.

The config may hold the administrator's AWS secret key. Runners live on
shared servers for weeks; a ``config.yml`` left at the usual 0644 gives the
key to every account there. The runner does not refuse to start (the operator
may have reasons), but says once, at start, which command closes the hole.
"""

from __future__ import annotations

import shlex
import stat
from pathlib import Path

from .schema import SECRET_KEYS, Config


def exposed_secrets_warning(path: Path, config: Config) -> str | None:
    """One line naming the secrets and the ``chmod`` that fixes it, or None when all is well."""
    held = [key for key in SECRET_KEYS if getattr(config, key, None)]
    if not held:
        return None
    try:
        mode = path.stat().st_mode
    except OSError:
        return None  # it was just read; a vanished file is not this check's business
    readable_by = [
        who for who, bit in (("group", stat.S_IRGRP), ("others", stat.S_IROTH)) if mode & bit
    ]
    if not readable_by:
        return None
    return (
        f"{path} holds {', '.join(held)} and is readable by {' and '.join(readable_by)}"
        f" (mode {stat.S_IMODE(mode):04o}): run 'chmod 600 {shlex.quote(str(path.resolve()))}'"
        " so that only you can read it"
    )
