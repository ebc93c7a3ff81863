"""``pip install .`` builds the package without a warning of ours.

A deprecation the build backend prints today is a build that stops working on
a later release of it (setuptools gave ``project.license`` as a TOML table a
date), and it is the first thing a new administrator reads. The build runs
as ``pip install .`` runs it, in an isolated environment with the newest build
backend the index serves, on a copy of the checkout so nothing is left in it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: What the build backend (setuptools' ``SetuptoolsDeprecationWarning``, pip's
#: ``BuildBackendWarning``) and pip itself (``DEPRECATION:``) say of a deprecation.
_DEPRECATION = re.compile(r"deprecat|BuildBackendWarning", re.IGNORECASE)
#: What the copy leaves out: environments, caches and earlier builds.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv*", "*cache*", "__pycache__", "*.egg-info", "build", "dist", ".demo"
)


def test_the_package_builds_with_no_deprecation_warning(tmp_path: Path) -> None:
    source, wheels = tmp_path / "source", tmp_path / "wheels"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = build.stdout + build.stderr
    assert build.returncode == 0, output[-3000:]
    assert [line for line in output.splitlines() if _DEPRECATION.search(line)] == []
    (wheel,) = wheels.glob("opthub_runner_admin-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        (metadata,) = [name for name in archive.namelist() if name.endswith(".dist-info/METADATA")]
        assert "License-Expression: MIT" in archive.read(metadata).decode().splitlines()
