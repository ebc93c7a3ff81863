"""The package's import rules, read from the source: which module may import what.

Only ``aws``, ``queue/`` and ``store/`` may talk to boto3 or botocore (type
stubs included): everything else reaches AWS through their seams, so that a
change of SDK, or a second backend, stays inside those three.
"""

from __future__ import annotations

import ast
from pathlib import Path

import opthub_runner_admin

PACKAGE = Path(opthub_runner_admin.__file__).parent
#: Top-level names of the AWS SDK and its type stubs.
AWS_LIBRARIES = ("boto3", "botocore", "mypy_boto3_")
#: The only places that may import them (module files and folders of the package).
AWS_HOMES = ("aws.py", "queue", "store")


def imported_modules(path: Path) -> list[str]:
    """Every absolute module name ``path`` imports, at any depth (TYPE_CHECKING and lazy too)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def aws_imports_outside_homes(package: Path) -> dict[str, list[str]]:
    """{module path: AWS library imports} for every module outside ``AWS_HOMES``."""
    found: dict[str, list[str]] = {}
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative.parts[0] in AWS_HOMES:
            continue
        hits = [name for name in imported_modules(path) if name.startswith(AWS_LIBRARIES)]
        if hits:
            found[relative.as_posix()] = hits
    return found


def test_only_aws_queue_and_store_import_the_aws_sdk() -> None:
    assert aws_imports_outside_homes(PACKAGE) == {}


def test_the_rule_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The check itself: plain, from, lazy and TYPE_CHECKING imports are all caught."""
    (tmp_path / "queue").mkdir()
    (tmp_path / "queue" / "sqs.py").write_text("import boto3\n")
    (tmp_path / "aws.py").write_text("from botocore.config import Config\n")
    (tmp_path / "plain.py").write_text("import boto3.session\n")
    (tmp_path / "lazy.py").write_text("def f():\n    from botocore.exceptions import ClientError\n")
    (tmp_path / "typed.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from mypy_boto3_sqs import SQSClient\n"
    )
    (tmp_path / "relative.py").write_text("from .aws import aws_clients\n")

    assert aws_imports_outside_homes(tmp_path) == {
        "lazy.py": ["botocore.exceptions"],
        "plain.py": ["boto3.session"],
        "typed.py": ["mypy_boto3_sqs"],
    }
