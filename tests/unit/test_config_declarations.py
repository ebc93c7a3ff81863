"""One declaration per key: the schema, the docs table and config.default.yml follow it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from opthub_runner_admin.cli.common import EXIT_CONFIG
from opthub_runner_admin.config.docs import (
    TABLE_BEGIN,
    TABLE_END,
    default_file,
    json_schema,
    schema_text,
    table,
)
from opthub_runner_admin.config.loading import parse_config
from opthub_runner_admin.config.schema import DECLARED
from opthub_runner_admin.errors import ConfigError
from tests.unit.test_config import _cli

ROOT = Path(__file__).resolve().parents[2]
MINIMAL = "region_name: r\ntable_name: t\n"
REGENERATE = "regenerate it: opthub-runner config {} > {}"


def test_the_committed_schema_is_the_declarations() -> None:
    committed = (ROOT / "docs" / "config.schema.json").read_text(encoding="utf-8")
    assert committed == schema_text(), REGENERATE.format("schema", "docs/config.schema.json")


def test_the_docs_table_is_the_declarations() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    begin, end = page.index(TABLE_BEGIN), page.index(TABLE_END)
    assert page[begin + len(TABLE_BEGIN) + 1 : end] == table(), (
        "the table between the markers of docs/configuration.md is stale: "
        "replace it by the output of opthub-runner config table"
    )
    assert all(f"| `{key}` |" in page for key in DECLARED)


def test_config_default_yml_is_the_declarations() -> None:
    committed = (ROOT / "config.default.yml").read_text(encoding="utf-8")
    assert committed == default_file(), REGENERATE.format("default", "config.default.yml")


def _default_values() -> dict[str, Any]:
    values = yaml.safe_load(default_file())
    assert isinstance(values, dict)
    return values


def test_config_default_yml_reads_as_the_declared_defaults() -> None:
    values = _default_values()
    config = parse_config(MINIMAL + default_file()).config
    for key in values:
        assert getattr(config, key) == DECLARED[key].default, key
    commented = set(re.findall(r"^# (\w+):", default_file(), re.MULTILINE))
    assert set(DECLARED) - {"force"} <= set(values) | commented


def test_the_schema_accepts_the_default_file_and_refuses_what_the_runner_refuses() -> None:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    assert not list(
        validator.iter_errors({**_default_values(), "region_name": "r", "table_name": "t"})
    )
    for bad in ({"workers": 65}, {"memory": "lots"}, {"network": "host"}, {"intervall": 3}):
        document = {"region_name": "r", "table_name": "t", **bad}
        assert list(validator.iter_errors(document)), bad
    for good in ({"memory": "512m", "memory_swap": -1, "cpus": 1.5, "gpus": [0, "GPU-1"]},):
        assert not list(validator.iter_errors({"region_name": "r", "table_name": "t", **good}))


def test_every_missing_required_key_is_reported_in_one_run() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("interval: soon\n", source="c.yml")
    assert caught.value.problems == (
        "c.yml: 'interval' must be a whole number, got 'soon'",
        "c.yml: 'region_name' is required"
        " (AWS region of the queues and the table, e.g. ap-northeast-1)",
        "c.yml: 'table_name' is required (DynamoDB table of solutions, evaluations and scores)",
    )


def test_a_misspelt_key_is_named_with_the_key_it_looks_like() -> None:
    warnings = parse_config(MINIMAL + "workes: 4\nfrobnicate: 1\n", source="c.yml").warnings
    assert warnings == [
        "c.yml: unknown key 'workes' is ignored (did you mean 'workers'?)",
        "c.yml: unknown key 'frobnicate' is ignored (check its spelling)",
    ]


def test_config_schema_command_prints_the_schema(tmp_path: Path) -> None:
    result = _cli("config", "schema", cwd=tmp_path)
    assert result.returncode == 0
    assert json.loads(result.stdout) == json_schema()


def test_every_problem_is_an_error_line_of_its_own(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("workers: 0\n")
    result = _cli("evaluator", cwd=tmp_path)
    assert result.returncode == EXIT_CONFIG
    lines = result.stderr.strip().splitlines()
    assert [line.split("'")[1] for line in lines] == ["workers", "region_name", "table_name"]
    assert all(line.startswith("Error: config.yml: '") for line in lines)


def test_the_editor_checks_config_files_with_the_committed_schema() -> None:
    settings = json.loads((ROOT / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    schemas = settings["yaml.schemas"]
    assert "config*.yml" in schemas["./docs/config.schema.json"]
    assert (ROOT / "docs" / "config.schema.json").is_file()
    recommended = json.loads((ROOT / ".vscode" / "extensions.json").read_text(encoding="utf-8"))
    assert "redhat.vscode-yaml" in recommended["recommendations"]


def test_the_editor_launches_real_commands() -> None:
    import click

    from opthub_runner_admin.cli.main import main

    launch = json.loads((ROOT / ".vscode" / "launch.json").read_text(encoding="utf-8"))
    commands = []
    for configuration in launch["configurations"]:
        if configuration["module"] == "pytest":
            continue
        assert configuration["module"] == "opthub_runner_admin.cli"
        words = [w for w in configuration["args"] if not w.startswith("${")]
        context = main.make_context("opthub-runner", list(words), resilient_parsing=True)
        command: click.Command = main
        for word in words:
            if not isinstance(command, click.Group) or word.startswith("-"):
                break
            found = command.get_command(context, word)
            if found is None:
                break
            command = found
        commands.append(command.name)
    assert commands == ["evaluator", "scorer", "problem", "doctor", "demo"]
