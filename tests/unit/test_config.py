"""The operator's config: every published key still works; every mistake is one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from opthub_runner_admin.auth.endpoints import DEVELOPMENT_API, PRODUCTION_API
from opthub_runner_admin.cli.common import EXIT_CONFIG
from opthub_runner_admin.config.loading import load_config, parse_config
from opthub_runner_admin.errors import ConfigError

MINIMAL = "region_name: ap-northeast-1\ntable_name: opthub\n"
PUBLISHED = """
interval: 2
timeout: 43200
rm: true
log_level: INFO
force: false
evaluator_queue_url: https://sqs.ap-northeast-1.amazonaws.com/1/evaluator
scorer_queue_url: https://sqs.ap-northeast-1.amazonaws.com/1/scorer
access_key_id: AKIAEXAMPLE
secret_access_key: very-secret-value
region_name: ap-northeast-1
table_name: opthub
"""


def test_published_config_keeps_working() -> None:
    loaded = parse_config(PUBLISHED)
    config = loaded.config
    assert loaded.warnings == []
    assert (config.interval, config.timeout, config.rm, config.log_level) == (
        2,
        43200,
        True,
        "INFO",
    )
    assert config.queue_url("evaluator").endswith("/evaluator")
    assert config.queue_url("scorer").endswith("/scorer")
    assert config.access_key_id == "AKIAEXAMPLE"
    assert config.num == 0
    assert config.endpoint_url is None and config.matches_file is None


def test_secrets_stay_out_of_repr() -> None:
    config = parse_config(PUBLISHED).config
    assert "very-secret-value" not in repr(config)
    assert "AKIAEXAMPLE" not in repr(config)


def test_defaults_and_lowercase_log_level() -> None:
    config = parse_config(MINIMAL + "log_level: debug\n").config
    assert config.log_level == "DEBUG"
    assert config.rm is True and config.timeout == 43200 and config.interval == 2


def test_image_and_runtime_defaults_and_values() -> None:
    default = parse_config(MINIMAL).config
    assert (default.pull_policy, default.pull_interval, default.runtime) == (
        "if-missing",
        300,
        None,
    )
    text = MINIMAL + "pull_policy: always\npull_interval: 60\nruntime: crun\n"
    config = parse_config(text).config
    assert (config.pull_policy, config.pull_interval, config.runtime) == ("always", 60, "crun")


def test_containers_are_started_ahead_by_default_and_prestart_false_turns_it_off() -> None:
    assert parse_config(MINIMAL).config.prestart is True
    assert parse_config(MINIMAL + "prestart: false\n").config.prestart is False


def test_relative_matches_file_is_taken_from_the_config_folder(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(MINIMAL + "matches_file: matches.yml\ncache_dir: ~/x\n")
    config = load_config(path).config
    assert config.matches_file == tmp_path / "matches.yml"
    assert config.cache_dir == Path.home() / "x"


def test_unknown_key_is_a_warning_naming_it() -> None:
    loaded = parse_config(MINIMAL + "intervall: 3\n")
    assert len(loaded.warnings) == 1
    assert "'intervall'" in loaded.warnings[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("table_name: t\n", "'region_name' is required"),
        ("region_name: r\n", "'table_name' is required"),
        (MINIMAL + "interval: soon\n", "'interval' must be a whole number, got 'soon'"),
        (MINIMAL + "timeout: 0\n", "'timeout' must be at least 1"),
        (MINIMAL + "rm: yes please\n", "'rm' must be true or false"),
        (MINIMAL + "interval: true\n", "'interval' must be a whole number"),
        (MINIMAL + "log_level: LOUD\n", "'log_level' must be one of DEBUG, INFO"),
        (MINIMAL + "table_name: [a]\n", "'table_name' must be text"),
        ("region_name: r\ntable_name: [unclosed\n", "line 3: YAML syntax error"),
        ("- a\n- b\n", "expected a mapping"),
        (MINIMAL + "visibility_timeout: 50000\n", "'visibility_timeout' must be at most 43200"),
        (MINIMAL + "workers: 0\n", "'workers' must be at least 1, got 0"),
        (MINIMAL + "workers: 65\n", "'workers' must be at most 64, got 65"),
        (
            MINIMAL + "max_jobs_per_participant: 0\n",
            "'max_jobs_per_participant' must be at least 1",
        ),
        (MINIMAL + "pull_policy: sometimes\n", "'pull_policy' must be one of always, if-missing"),
        (MINIMAL + "pull_interval: -1\n", "'pull_interval' must be at least 0"),
        (MINIMAL + "runtime: 3\n", "'runtime' must be text"),
    ],
)
def test_config_errors_name_the_key(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(text)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message


def test_a_wrongly_typed_secret_is_not_echoed() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(MINIMAL + "secret_access_key: 123456789\n")
    assert "123456789" not in str(info.value)
    assert "'secret_access_key' must be text" in str(info.value)


def test_missing_queue_for_the_mode() -> None:
    config = parse_config(MINIMAL).config
    with pytest.raises(ConfigError, match="'scorer_queue_url' is required"):
        config.queue_url("scorer")


def test_api_endpoints_default_to_production_and_dev_and_overrides() -> None:
    config = parse_config(MINIMAL).config
    assert config.api() == PRODUCTION_API
    assert config.api(dev=True) == DEVELOPMENT_API
    custom = parse_config(MINIMAL + "api_url: http://127.0.0.1:1/graphql\n").config
    assert custom.api().api_url == "http://127.0.0.1:1/graphql"
    assert custom.api().cognito_user_pool_id == PRODUCTION_API.cognito_user_pool_id


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_missing_config_file_exits_78_with_one_line(tmp_path: Path) -> None:
    result = _cli("evaluator", cwd=tmp_path)
    assert result.returncode == EXIT_CONFIG == 78  # sysexits EX_CONFIG: no restart
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "config.yml: configuration file not found" in lines[0]
    assert "Traceback" not in result.stderr


def test_cli_config_errors_exit_78(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("region_name: r\ntable_name: t\ninterval: x\n")
    result = _cli("scorer", "--config", "bad.yml", cwd=tmp_path)
    assert result.returncode == EXIT_CONFIG == 78  # sysexits EX_CONFIG: no restart
    assert result.stderr.strip() == "Error: bad.yml: 'interval' must be a whole number, got 'x'"


def test_cli_missing_queue_url_exits_78(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(MINIMAL)
    result = _cli("evaluator", cwd=tmp_path)
    assert result.returncode == EXIT_CONFIG == 78  # sysexits EX_CONFIG: no restart
    assert "'evaluator_queue_url' is required" in result.stderr
    assert "Traceback" not in result.stderr


def test_workers_default_to_one_and_the_cap_to_none() -> None:
    config = parse_config(MINIMAL).config
    assert (config.workers, config.max_jobs_per_participant) == (1, None)
    capped = parse_config(MINIMAL + "workers: 8\nmax_jobs_per_participant: 2\n").config
    assert (capped.workers, capped.max_jobs_per_participant) == (8, 2)
    assert (
        parse_config(MINIMAL + "max_jobs_per_participant: null\n").config.max_jobs_per_participant
        is None
    )


def test_cli_refuses_zero_workers_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text(MINIMAL)
    result = _cli("evaluator", "--workers", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "--workers" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("--dim 3 --name 'two words'", ("--dim", "3", "--name", "two words")),
        ("[--dim, 3, '--flag']", ("--dim", "3", "--flag")),
    ],
)
def test_command_is_a_list_or_a_string_split_like_a_shell(
    value: str, expected: tuple[str, ...]
) -> None:
    assert parse_config(MINIMAL + f"command: {value}\n").config.command == expected
    assert parse_config(MINIMAL).config.command is None


@pytest.mark.parametrize("value", ["[]", "''", "{a: 1}", '"--name \'unclosed"', "[[1]]"])
def test_a_bad_command_is_one_line_naming_the_key(value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL + f"command: {value}\n")
    assert "'command'" in str(caught.value) and "\n" not in str(caught.value)


def test_interval_is_described_the_same_in_the_docs_and_the_default_config() -> None:
    from opthub_runner_admin.config.docs import default_file, table
    from opthub_runner_admin.config.schema import DECLARED

    meaning = DECLARED["interval"].description or ""
    assert "long poll" in meaning  # what it is: not a pause between polls
    assert f"| `interval` | int ≥ 0 | `2` | {meaning} |" in table()
    lines = default_file().splitlines()
    at = lines.index("interval: 2")
    comment = [line for line in lines[:at] if line.startswith("# ")][-2:]
    assert " ".join(line[2:] for line in comment) == meaning
