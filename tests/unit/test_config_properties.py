"""Any config file settles as a config or one ``ConfigError`` naming the file: never a crash.

Property-based (Hypothesis): bytes that are not UTF-8, binary, empty and huge
files, YAML documents with every declared key holding values of every type,
anchor bombs and deep nesting. The CLI turns a ``ConfigError`` into its
``Error:`` lines and exit 78 (EX_CONFIG, which systemd does not retry):
checked here for the files an administrator actually meets.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from hypothesis import given
from hypothesis import strategies as st

from opthub_runner_admin.cli.common import EXIT_CONFIG
from opthub_runner_admin.config.loading import LoadedConfig, load_config, parse_config
from opthub_runner_admin.config.schema import DECLARED, SECRET_KEYS
from opthub_runner_admin.errors import ConfigError
from opthub_runner_admin.settings.yaml_text import MAX_FILE_BYTES
from tests.support.properties import BOMB_EXAMPLES, CONFIG_EXAMPLES, tried

SOURCE = "the-config.yml"

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(sorted(DECLARED)) | st.text(max_size=12)


def settles(text: str) -> LoadedConfig | ConfigError:
    """What the runner makes of ``text``: a config, or the error (anything else fails)."""
    try:
        return parse_config(text, source=SOURCE, base_dir=Path("/nonexistent"))
    except ConfigError as exc:
        return exc


def assert_names_the_file(error: ConfigError, source: str = SOURCE) -> None:
    assert error.problems, error
    for problem in error.problems:
        assert problem.startswith(source), problem
        assert "\n" not in problem, problem
        assert "Traceback" not in problem


@tried(CONFIG_EXAMPLES)
@given(st.dictionaries(keys, values, max_size=8))
def test_every_key_with_any_value_settles(document: dict[str, Any]) -> None:
    text = yaml.safe_dump(document, allow_unicode=True)
    result = settles(text)
    if isinstance(result, ConfigError):
        assert_names_the_file(result)
        for key in SECRET_KEYS:  # a secret's value is never echoed back
            secret = document.get(key)
            if isinstance(secret, str) and len(secret) >= 6:
                assert secret not in str(result)


@tried(CONFIG_EXAMPLES)
@given(st.text(max_size=300))
def test_any_text_settles(text: str) -> None:
    result = settles(text)
    if isinstance(result, ConfigError):
        assert_names_the_file(result)


@tried(CONFIG_EXAMPLES)
@given(st.binary(max_size=400))
def test_any_bytes_on_disk_settle(tmp_path_factory: Any, data: bytes) -> None:
    path = tmp_path_factory.mktemp("config") / "config.yml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as exc:
        assert_names_the_file(exc, str(path))


@tried(BOMB_EXAMPLES)
@given(st.integers(1, 12), st.integers(1, 12), st.sampled_from(["list", "map"]))
def test_anchor_bombs_settle_bounded(depth: int, fanout: int, shape: str) -> None:
    lines = ["a0: &a0 [1, 2, 3]"]
    for n in range(1, depth + 1):
        refs = [f"*a{n - 1}"] * fanout
        body = (
            f"[{', '.join(refs)}]"
            if shape == "list"
            else ("{" + ", ".join(f"k{i}: {r}" for i, r in enumerate(refs)) + "}")
        )
        lines.append(f"a{n}: &a{n} {body}")
    lines.append(f"cpus: *a{depth}")  # a declared key walks the whole value
    result = settles("\n".join(lines))
    assert isinstance(result, ConfigError)  # either too big or the wrong type, in one line
    assert_names_the_file(result)


@tried(BOMB_EXAMPLES)
@given(st.integers(1, 3000), st.sampled_from(["[", "{a: ", "- "]))
def test_deep_nesting_settles(depth: int, opener: str) -> None:
    closer = {"[": "]", "{a: ": "}", "- ": ""}[opener]
    if opener == "- ":
        text = "cpus:\n" + "".join(f"{'  ' * n}- \n" for n in range(depth))
    else:
        text = "cpus: " + opener * depth + "1" + closer * depth
    result = settles(text)
    if isinstance(result, ConfigError):
        assert_names_the_file(result)


def run_evaluator(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", "evaluator", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def test_unreadable_files_exit_78_with_one_line_naming_the_file(tmp_path: Path) -> None:
    files = {
        "shift_jis.yml": "region_name: ap-northeast-1\n# 評価用の設定\n".encode("shift_jis"),
        "binary.yml": bytes(range(256)) * 4,
        "nul.yml": b"region_name: a\x00b\n",
        "huge.yml": b"# " + b"x" * MAX_FILE_BYTES + b"\n",
        "bomb.yml": (
            b"a: &a [1,1,1,1,1,1,1,1,1,1]\n"
            + b"".join(
                f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n".encode()
                for i in range(9)
            )
        ),
        "deep.yml": b"cpus: " + b"[" * 5000 + b"]" * 5000 + b"\n",
        "empty.yml": b"",
    }
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        result = run_evaluator(path)
        assert "Traceback" not in result.stderr, (name, result.stderr)
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
        assert result.returncode == EXIT_CONFIG, (name, result.stderr)
        assert errors and all(line.startswith(f"Error: {path}") for line in errors), (
            name,
            result.stderr,
        )
