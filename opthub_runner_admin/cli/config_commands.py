"""``opthub-runner config``: what config.yml may hold, rendered from the declarations."""

from __future__ import annotations

import click


@click.group("config")
def config_group() -> None:
    """What config.yml may hold, rendered from the runner's own declarations.

    \b
    Example:
      opthub-runner config default > config.yml
    """


@config_group.command("schema")
def config_schema() -> None:
    """Print the JSON Schema of config.yml (for an editor: docs/config.schema.json).

    \b
    Example:
      opthub-runner config schema > docs/config.schema.json
    """
    from ..config.docs import schema_text

    click.echo(schema_text(), nl=False)


@config_group.command("table")
def config_table() -> None:
    """Print the markdown table of every key (docs/configuration.md).

    \b
    Example:
      opthub-runner config table
    """
    from ..config.docs import table

    click.echo(table(), nl=False)


@config_group.command("default")
def config_default() -> None:
    """Print a starting config.yml: every key with its default (config.default.yml).

    \b
    Example:
      opthub-runner config default > config.yml
    """
    from ..config.docs import default_file

    click.echo(default_file(), nl=False)
