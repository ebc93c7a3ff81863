"""What the repository's .dockerignore lets into the runner image's build context."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from tests.support.runner_image import build_context


def test_the_build_context_holds_the_package_and_nothing_private(tmp_path: Path) -> None:
    (tmp_path / "example-1.0-py3-none-any.whl").write_bytes(b"wheel")
    with tarfile.open(fileobj=io.BytesIO(build_context(tmp_path))) as tar:
        names = set(tar.getnames())
    assert {"Dockerfile", "pyproject.toml", "README.md"} <= names
    assert "opthub_runner_admin/cli/main.py" in names
    assert any(name.startswith("opthub_runner_admin/observe/static/") for name in names)
    assert "wheelhouse/example-1.0-py3-none-any.whl" in names
    for private in (".git/", ".venv/", "tests/", "deploy/", ".ci/", "__pycache__"):
        assert not [name for name in names if private in f"{name}/"], private
