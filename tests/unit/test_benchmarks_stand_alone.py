"""The benchmarks run with the package and its ``demo`` extra alone: no test tools, no tests.

``pip install '.[demo]'`` on a measuring machine must be enough for
``python -m benchmarks.<name>``. Each benchmark starts here in a fresh
interpreter in which the test tools and the ``tests`` package cannot be
imported; it must still print its ``--help``. The harness the benchmarks share
with the tests lives in ``opthub_runner_admin/platform_side/``.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if p.stem != "__init__")
#: Each distribution of the ``test`` extra beyond ``demo``, with the modules it brings.
TEST_TOOLS: dict[str, tuple[str, ...]] = {
    "pytest": ("pytest", "_pytest"),
    "pytest-timeout": ("pytest_timeout",),
    "hypothesis": ("hypothesis",),
    "jsonschema": ("jsonschema",),
    "ruff": ("ruff",),
    "mypy": ("mypy",),
    "types-pyyaml": (),  # stubs: nothing to import
    "types-jsonschema": (),
    "types-requests": (),
    "boto3-stubs": ("mypy_boto3_",),
}
#: Run as ``python -c``: refuse the test tools and ``tests``, then run the benchmark.
RUN_WITHOUT_TEST_TOOLS = """
import importlib.abc, runpy, sys
blocked = tuple(sys.argv[2].split(","))
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0].startswith(blocked):
            raise ImportError(f"{name} is a test tool, not installed with .[demo]")
        return None
sys.meta_path.insert(0, Refuse())
module = sys.argv[1]
sys.argv = [module, "--help"]
runpy.run_module(module, run_name="__main__")
"""


def _requirement_names(extra: str) -> set[str]:
    """The distributions an extra of the installed package asks for, by name."""
    names: set[str] = set()
    for line in importlib.metadata.requires("opthub-runner-admin") or []:
        if re.search(rf"""extra\s*==\s*["']{extra}["']""", line):
            names.add(re.split(r"[\[<>=!~ ;(]", line, maxsplit=1)[0].lower())
    return names


def test_every_test_tool_is_refused_below() -> None:
    """A new test dependency must be added to TEST_TOOLS, or the check below misses it."""
    assert _requirement_names("test") - _requirement_names("demo") == set(TEST_TOOLS)


@pytest.mark.parametrize("name", BENCHMARKS)
def test_a_benchmark_starts_without_the_test_tools(name: str) -> None:
    blocked = [module for modules in TEST_TOOLS.values() for module in modules] + ["tests"]
    result = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TEST_TOOLS, f"benchmarks.{name}", ",".join(blocked)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout


def test_the_refusal_itself_catches_an_import_of_tests(tmp_path: Path) -> None:
    """The check can fail: a module importing the test suite is refused."""
    (tmp_path / "leaning.py").write_text("import tests.support.e2e\n")
    result = subprocess.run(
        [sys.executable, "-c", RUN_WITHOUT_TEST_TOOLS, "leaning", "pytest,tests"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "tests is a test tool, not installed with .[demo]" in result.stderr
