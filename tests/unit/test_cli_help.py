"""Every command's ``--help`` ends with an example an operator can copy."""

from __future__ import annotations

from collections.abc import Iterator

import click
import pytest
from click.testing import CliRunner

from opthub_runner_admin.cli.main import main


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        elif command is not None:
            yield (*path, name)


@pytest.mark.parametrize("path", list(commands(main)), ids=lambda path: " ".join(path) or "main")
def test_the_help_has_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    heading = next((line for line in lines if line in ("  Example:", "  Examples:")), None)
    assert heading is not None, result.output
    example = lines[lines.index(heading) + 1].strip()
    assert example.startswith(" ".join(("opthub-runner", *path))), example
