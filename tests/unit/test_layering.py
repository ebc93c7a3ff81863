"""The package's import rules, read from the source: which module may import what.

Only ``aws/``, ``queue/`` and ``store/`` may talk to boto3 or botocore (type
stubs included): everything else reaches AWS through their seams, so that a
change of SDK, or a second backend, stays inside those three. ``platform_side/``
plays OptHub, which makes the table and the queues itself: it may too.

The package's parts stand in layers (``LAYERS``, the ground first): a part
imports only parts of lower layers, never one of its own layer or above, so
that imports point one way and no two parts import each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

import opthub_runner_admin

PACKAGE = Path(opthub_runner_admin.__file__).parent
#: Top-level names of the AWS SDK and its type stubs.
AWS_LIBRARIES = ("boto3", "botocore", "mypy_boto3_")
#: The only places that may import them (module files and folders of the package).
AWS_HOMES = ("aws", "queue", "store", "platform_side")
#: The package's parts, the ground first: a sub-package, or a module at the root.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "model", "masking"),  # the vocabulary every part shares
    ("values",),  # model's values at the edge of DynamoDB and JSON
    ("settings", "host"),  # the kinds of config value; this machine's processes
    ("aws",),  # the clients, their errors, the keys that reach them
    ("auth", "queue", "store", "executor", "matches"),  # the seams and the login
    ("history",),  # the scorer's history, over the store
    ("jobs",),  # what one message means
    ("fleet",),  # every runner's queues, seen from any host
    ("observe",),  # what a running runner shows
    ("worker",),  # the loop that runs jobs
    ("config",),  # every part's keys, joined and read
    ("runner",),  # one runner process assembled; doctor
    ("platform_side",),  # OptHub's side, played for the demo, the tests, the benchmarks
    ("demo",),  # the embedded local stack
    ("cli",),  # the click face and process control
)


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


def part_of(relative: Path) -> str:
    """The part a module belongs to: its sub-package, or its own name at the root."""
    first = relative.parts[0]
    return first.removesuffix(".py")


def imported_parts(path: Path, relative: Path) -> list[tuple[int, str]]:
    """(line, part) for every import of the package's own modules that ``path`` makes."""
    package = list(relative.parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.ImportFrom):
            continue
        if node.level:
            base = package[: len(package) - (node.level - 1)]
            names = node.module.split(".") if node.module else []
            heads = [(base + names)[0]] if base + names else [a.name for a in node.names]
        elif node.module and node.module.startswith(f"{PACKAGE.name}."):
            heads = [node.module.split(".")[1]]
        else:
            continue
        found.extend((node.lineno, head) for head in heads)
    return found


def upward_imports(package: Path) -> list[str]:
    """Every import of a part of the same layer or a higher one, as ``file:line a -> b``."""
    layer = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}
    found: list[str] = []
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package)
        if relative == Path("__init__.py"):
            continue
        me = part_of(relative)
        for line, other in imported_parts(path, relative):
            if other in (me, "__version__"):
                continue
            if layer.get(other, len(LAYERS)) >= layer.get(me, -1):
                found.append(f"{relative.as_posix()}:{line} {me} -> {other}")
    return found


def test_every_part_has_a_layer() -> None:
    parts = {part_of(path.relative_to(PACKAGE)) for path in PACKAGE.glob("*")}
    parts -= {"__init__", "__pycache__", "py.typed"}
    assert parts == {part for layer in LAYERS for part in layer}


def test_imports_point_down_the_layers() -> None:
    assert upward_imports(PACKAGE) == []


def test_the_layer_rule_sees_an_import_up_and_one_across(tmp_path: Path) -> None:
    """The check itself: an import up, one across a layer, relative or absolute, is caught."""
    for folder in ("executor/docker", "queue", "cli"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "executor" / "docker" / "reaping.py").write_text(
        "from ...config.schema import scope_of\nfrom ...model import RunnerScope\n"
    )
    (tmp_path / "queue" / "sqs.py").write_text(
        "from ..store import Store\nfrom .base import Queue\n"
    )
    (tmp_path / "cli" / "main.py").write_text(
        "from .. import __version__\nfrom ..worker import W\n"
    )
    (tmp_path / "model.py").write_text(
        "def f():\n    from opthub_runner_admin.jobs.outcome import Outcome\n"
    )

    assert upward_imports(tmp_path) == [
        "executor/docker/reaping.py:1 executor -> config",
        "model.py:2 model -> jobs",
        "queue/sqs.py:1 queue -> store",
    ]


def test_only_the_aws_homes_import_the_aws_sdk() -> None:
    assert aws_imports_outside_homes(PACKAGE) == {}


def test_the_rule_sees_every_kind_of_import(tmp_path: Path) -> None:
    """The check itself: plain, from, lazy and TYPE_CHECKING imports are all caught."""
    (tmp_path / "queue").mkdir()
    (tmp_path / "queue" / "sqs.py").write_text("import boto3\n")
    (tmp_path / "aws").mkdir()
    (tmp_path / "aws" / "clients.py").write_text("from botocore.config import Config\n")
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
