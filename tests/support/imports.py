"""What importing one module drags in, seen from a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

AWS_LIBRARIES = ("boto3", "botocore")


def aws_libraries_imported_by(module: str) -> list[str]:
    """The AWS libraries a fresh Python has loaded once it imported ``module``."""
    probe = (
        "import json, sys\n"
        f"import {module}\n"
        "loaded = {m.split('.')[0] for m in sys.modules}\n"
        f"print(json.dumps(sorted(loaded & {set(AWS_LIBRARIES)!r})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    loaded: list[str] = json.loads(result.stdout)
    return loaded
