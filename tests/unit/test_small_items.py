"""The small things a new administrator met: each message says what is wrong and what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from opthub_runner_admin.cli.common import EXIT_CONFIG, EXIT_USAGE, naming_the_file
from opthub_runner_admin.config.loading import parse_config
from opthub_runner_admin.errors import ConfigError
from opthub_runner_admin.jobs.tryout import environment_for
from opthub_runner_admin.matches import ImageSpec, MatchSpec

MATCH = "3b7c0b1e-0000-4000-8000-0000000000bb"


def cli(*args: str, cwd: Path, stdin: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
        env={**os.environ, **env},
    )


def test_a_memory_below_dockers_minimum_is_said_as_a_size() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config("region_name: r\ntable_name: t\nmemory: 100\n", source="c.yml")
    assert str(caught.value) == (
        "c.yml: 'memory' must be at least 6 MiB (6291456 bytes), got 100"
        " (a number without a unit is bytes: 100m is 100 MiB)"
    )


def test_messages_name_the_config_file_by_its_own_name() -> None:
    text = "set access_key_id in config.yml; check region_name in config.yml"
    assert naming_the_file(text, "typo.yml") == (
        "set access_key_id in typo.yml; check region_name in typo.yml"
    )
    assert naming_the_file("/etc/x/config.yml.bak", "a.yml") == "/etc/x/config.yml.bak"


def test_missing_aws_credentials_name_the_file_and_boto3s_own_places(tmp_path: Path) -> None:
    config = tmp_path / "typo.yml"
    config.write_text(
        yaml.safe_dump(
            {
                "region_name": "ap-northeast-1",
                "table_name": "opthub",
                "evaluator_queue_url": "https://sqs.ap-northeast-1.amazonaws.com/123456789012/q",
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", "evaluator", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
        env={**env, "HOME": str(tmp_path), "AWS_EC2_METADATA_DISABLED": "true"},
    )
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip() == (
        f"Error: no AWS credentials found: set access_key_id and secret_access_key in {config},"
        " or give them where boto3 looks (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,"
        " AWS_PROFILE or ~/.aws/credentials, an EC2 instance role)"
    )


def test_empty_stdin_to_try_is_no_solution_given(tmp_path: Path) -> None:
    result = cli("try", "problem", "any/image:1", cwd=tmp_path, stdin="")
    assert result.returncode == EXIT_USAGE
    assert result.stderr.strip() == "Error: no solution given: the input is empty"


def test_try_reads_config_yml_by_default_like_the_other_commands(tmp_path: Path) -> None:
    (tmp_path / "config.yml").write_text("region_name: r\ntable_name: t\nmemory: 100\n")
    result = cli("try", "problem", "any/image:1", "--solution", "[1]", cwd=tmp_path)
    assert result.returncode == EXIT_CONFIG
    assert result.stderr.startswith("Error: config.yml: 'memory' must be at least 6 MiB")


def test_try_match_takes_the_environment_from_the_api_without_a_matches_file() -> None:
    class Api:
        def get(self, match_id: str) -> MatchSpec:
            assert match_id == MATCH
            return MatchSpec(
                match_id, ImageSpec("p:1", {"DIM": "3"}), ImageSpec("i:1", {"REF": "x"})
            )

    environment = environment_for("problem", pairs=["EXTRA=1"], match_id=MATCH, matches=Api)
    assert environment == {"DIM": "3", "EXTRA": "1"}
    assert environment_for("indicator", match_id=f"Match#{MATCH}", matches=Api) == {"REF": "x"}


@pytest.mark.parametrize("mode", ["both", "all"])
def test_stop_both_modes_is_both_and_all_its_old_name(tmp_path: Path, mode: str) -> None:
    result = cli("stop", mode, cwd=tmp_path, XDG_RUNTIME_DIR=str(tmp_path), HOME=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "No running opthub-runner found on this machine."
    help_text = cli("stop", "--help", cwd=tmp_path).stdout
    assert '"all" is an old name for\n  both modes, not for --all' in help_text


def test_doctor_and_try_config_have_help_text(tmp_path: Path) -> None:
    for command in (["doctor"], ["try", "problem"]):
        text = " ".join(cli(*command, "--help", cwd=tmp_path).stdout.split())
        assert "--config TEXT YAML configuration file" in text, text
        assert "[default: config.yml]" in text, text
