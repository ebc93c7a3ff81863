"""An operator's config.yml as a runner in a pod or an image reads it.

The pod reads its config from a read-only folder and has AWS access from its
own identity, so the keys are left out (never in a ConfigMap), relative
paths that the runner writes to are moved under its state folder, a match
catalogue file travels beside the config, and /metrics and /healthz listen on
the pod's address for Prometheus and the kubelet's probe.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

import yaml

#: Keys whose relative paths the runner writes to: moved under the state folder.
WRITTEN_PATHS = ("cache_dir",)
MATCHES_FILE = "matches.yml"


def pod_config_files(
    raw: dict[str, Any],
    *,
    secret_keys: tuple[str, ...],
    matches_text: str | None,
    state_dir: str,
    metrics_port: int,
) -> tuple[dict[str, str], list[str]]:
    """``{file name: text}`` for the pod's config folder, and the keys left out."""
    settings = {key: value for key, value in raw.items() if key not in secret_keys}
    dropped = sorted(key for key in raw if key in secret_keys and raw[key])
    for key in WRITTEN_PATHS:
        value = settings.get(key)
        if isinstance(value, str) and not PurePosixPath(value).is_absolute():
            settings[key] = str(PurePosixPath(state_dir) / value)
    settings["metrics_host"] = "0.0.0.0"  # the pod's own address: Prometheus and the probe
    settings["metrics_port"] = metrics_port
    files = {}
    if matches_text is not None:
        settings["matches_file"] = MATCHES_FILE
        files[MATCHES_FILE] = matches_text
    files["config.yml"] = yaml.safe_dump(settings, sort_keys=True)
    return dict(sorted(files.items())), dropped
