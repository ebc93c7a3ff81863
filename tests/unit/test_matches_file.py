"""The YAML match catalogue: what it accepts, and the one-line errors for what it does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from opthub_runner_admin.errors import ConfigError
from opthub_runner_admin.matches.base import UnknownMatch
from opthub_runner_admin.matches.file import FileMatchSource

MATCH = "3b7c0b1e-0000-4000-8000-000000000001"
OTHER = "3b7c0b1e-0000-4000-8000-000000000002"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "matches.yml"
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_images_and_string_environments(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
{MATCH}:
  problem:
    image: opthub/sphere:latest
    environment: {{DIM: 2, SCALE: 1.5, NOISY: true, QUIET: false, NAME: sphere, EMPTY: ''}}
  indicator:
    image: opthub/best:latest
"Match#{OTHER}":
  problem: {{image: p:1}}
  indicator: {{image: i:1, environment: {{K: v}}}}
""",
    )
    source = FileMatchSource(path)

    spec = source.get(MATCH)
    assert spec.match_id == MATCH
    assert spec.problem.image == "opthub/sphere:latest"
    assert dict(spec.problem.environment) == {
        "DIM": "2",
        "SCALE": "1.5",
        "NOISY": "true",
        "QUIET": "false",
        "NAME": "sphere",
        "EMPTY": "",
    }
    assert spec.indicator.image == "opthub/best:latest"
    assert dict(spec.indicator.environment) == {}
    # A key copied from the table (Match#<uuid>) is looked up by its bare UUID.
    assert dict(source.get(OTHER).indicator.environment) == {"K": "v"}
    assert source.match_ids() == [MATCH, OTHER]


def test_unknown_match_names_the_match_and_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, f"{MATCH}: {{problem: {{image: p}}, indicator: {{image: i}}}}\n")
    source = FileMatchSource(path)

    with pytest.raises(UnknownMatch) as caught:
        source.get(OTHER)

    assert OTHER in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"{MATCH}: {{indicator: {{image: i}}}}", f"match {MATCH}: 'problem' is required"),
        (
            f"{MATCH}: {{problem: {{image: p}}, indicator: {{environment: {{}}}}}}",
            "'indicator.image' must be a Docker image name",
        ),
        (
            f"{MATCH}: {{problem: {{image: p, env: {{A: 1}}}}, indicator: {{image: i}}}}",
            "unknown key 'env'",
        ),
        (
            f"{MATCH}: {{problem: {{image: p, environment: {{A: [1]}}}}, indicator: {{image: i}}}}",
            "'problem.environment.A' must be text or a number",
        ),
        (
            f"{MATCH}: {{problem: {{image: p, environment: {{A: }}}}, indicator: {{image: i}}}}",
            "'problem.environment.A' has no value",
        ),
        (f"{MATCH}: {{problem: {{image: p}}, indicator: [i]}}", "'indicator' must be a mapping"),
        ("- just a list", "expected a mapping of match UUIDs"),
        ("", "defines no match"),
        (f"{MATCH}: {{problem: {{image: p}}", "YAML syntax error"),
    ],
)
def test_invalid_catalogue_is_one_line_naming_file_match_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        FileMatchSource(path)

    message = str(caught.value)
    assert expected in message
    assert message.startswith(str(path))
    assert "\n" not in message


def test_secret_values_are_not_echoed_in_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{MATCH}: {{problem: {{image: p, environment: {{TOKEN: {{nested: s3cr3t}}}}}},"
        " indicator: {image: i}}",
    )

    with pytest.raises(ConfigError) as caught:
        FileMatchSource(path)

    assert "TOKEN" in str(caught.value)
    assert "s3cr3t" not in str(caught.value)


def test_duplicate_match_is_refused(tmp_path: Path) -> None:
    entry = "{problem: {image: p}, indicator: {image: i}}"
    path = write(tmp_path, f"{MATCH}: {entry}\n{MATCH}: {entry}\n")

    with pytest.raises(ConfigError, match="duplicate key"):
        FileMatchSource(path)


def test_same_match_with_and_without_table_prefix_is_refused(tmp_path: Path) -> None:
    entry = "{problem: {image: p}, indicator: {image: i}}"
    path = write(tmp_path, f"{MATCH}: {entry}\n'Match#{MATCH}': {entry}\n")

    with pytest.raises(ConfigError, match=f"match {MATCH} is listed twice"):
        FileMatchSource(path)


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="matches file not found"):
        FileMatchSource(tmp_path / "absent.yml")


def test_environment_is_kept_out_of_repr(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"{MATCH}: {{problem: {{image: p, environment: {{KEY: hunter2}}}},"
        " indicator: {image: i}}",
    )

    assert "hunter2" not in repr(FileMatchSource(path).get(MATCH))


def test_an_image_may_carry_its_own_command(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
{MATCH}:
  problem:
    image: opthub/sphere:latest
    command: --dim 3 --seed '1 2'
  indicator:
    image: opthub/best:latest
    command: [--reference, 1.5]
""",
    )
    match = FileMatchSource(path).get(MATCH)
    assert match.problem.command == ("--dim", "3", "--seed", "1 2")
    assert match.indicator.command == ("--reference", "1.5")


def test_a_bad_image_command_names_the_match_and_the_key(tmp_path: Path) -> None:
    path = write(
        tmp_path, f"{MATCH}:\n  problem: {{image: a, command: []}}\n  indicator: {{image: b}}\n"
    )
    with pytest.raises(ConfigError) as caught:
        FileMatchSource(path)
    assert MATCH in str(caught.value) and "'problem.command'" in str(caught.value)
