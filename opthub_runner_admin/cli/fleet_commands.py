"""The click commands ``status`` and ``dlq``; ``main`` adds them to the ``opthub-runner`` group.

Each failure ends in one line and an exit code, as everywhere in the CLI:
78 (sysexits EX_CONFIG) for the configuration, 1 for what the queues answered.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from ..errors import ConfigError, RunnerError, TransientError
from ..fleet import MODES
from .common import EXIT_CONFIG, EXIT_FATAL, fail, read_config

_CONFIG_OPTION = click.option(
    "--config",
    "config_path",
    default="config.yml",
    show_default=True,
    help="YAML configuration file.",
)


def _guarded(action: Callable[[], None]) -> None:
    from ..fleet.dead_letters import MoveFailed, NoDeadLetterQueue

    try:
        action()
    except ConfigError as exc:
        fail(str(exc), EXIT_CONFIG)
    except TransientError as exc:
        fail(f"{exc} (check the network and endpoint_url, then run it again)", EXIT_FATAL)
    except (RunnerError, NoDeadLetterQueue, MoveFailed) as exc:
        fail(str(exc), EXIT_FATAL)


@click.command()
@_CONFIG_OPTION
def status(config_path: str) -> None:
    """Show what every runner on every host shares: each queue's messages and dead letters.

    Then this machine's runners of the config's queues and table, each with
    what it does (taking jobs, PAUSED, LOGIN NEEDED); runners on other hosts
    show it on their own status line, page and metrics.
    Then what each match's trials used, and what that suggests, as the runner
    serving on this config's ``metrics_port`` measured them.

    \b
    Example:
      opthub-runner status --config config.yml
    """
    from ..fleet.queue_counts import read_status, status_lines
    from ..fleet.queues import fleet_queues
    from ..observe.usage_client import runner_usage_lines
    from ..runner.disks import host_disk_lines
    from .runner_selection import fleet_scopes, local_runner_lines

    config = read_config(config_path)

    def show() -> None:
        for line in status_lines(read_status(fleet_queues(config))):
            click.echo(line)
        for line in local_runner_lines(fleet_scopes(config)):
            click.echo(line)
        for line in host_disk_lines(config.disk_warning_below):
            click.echo(line)
        for line in runner_usage_lines(config.metrics_host, config.metrics_port):
            click.echo(line)

    _guarded(show)


@click.group()
def dlq() -> None:
    """List, show and bring back dead-lettered messages (after fixing an image).

    \b
    Examples:
      opthub-runner dlq list --config config.yml
      opthub-runner dlq show MESSAGE_ID --queue evaluator
      opthub-runner dlq redrive --queue evaluator --max 5
    """


_QUEUE_OPTION = click.option(
    "--queue",
    "mode",
    type=click.Choice(MODES),
    default="evaluator",
    show_default=True,
    help="Whose dead-letter queue: the evaluator's or the scorer's.",
)


@dlq.command("list")
@_CONFIG_OPTION
@_QUEUE_OPTION
@click.option("--max", "limit", default=100, show_default=True, help="Most messages to list.")
def dlq_list(config_path: str, mode: str, limit: int) -> None:
    """List the dead letters of a queue (each is received, then made visible again).

    \b
    Example:
      opthub-runner dlq list --config config.yml --queue scorer
    """
    from ..fleet.dead_letters import dead_letter_queue_of, list_lines, peek
    from ..fleet.queues import fleet_queues

    config = read_config(config_path)

    def show() -> None:
        queue = fleet_queues(config, (mode,))[mode]
        for line in list_lines(peek(dead_letter_queue_of(queue, f"{mode}_queue_url"), limit)):
            click.echo(line)

    _guarded(show)


@dlq.command("show")
@click.argument("message_id")
@_CONFIG_OPTION
@_QUEUE_OPTION
@click.option(
    "--max", "limit", default=1000, show_default=True, help="Most messages to look through."
)
def dlq_show(message_id: str, config_path: str, mode: str, limit: int) -> None:
    """Show one dead letter: its trial, its receive count and its whole body.

    \b
    Example:
      opthub-runner dlq show 1c2b0e4e-... --config config.yml
    """
    from ..fleet.dead_letters import dead_letter_queue_of, peek, show_lines
    from ..fleet.queues import fleet_queues

    config = read_config(config_path)

    def show() -> None:
        queue = fleet_queues(config, (mode,))[mode]
        dead_letter = dead_letter_queue_of(queue, f"{mode}_queue_url")
        found = [m for m in peek(dead_letter, limit) if m.message_id == message_id]
        if not found:
            fail(
                f"no message {message_id} in {dead_letter.url}: 'opthub-runner dlq list'"
                " shows the ids there",
                EXIT_FATAL,
            )
        for line in show_lines(found[0]):
            click.echo(line)

    _guarded(show)


@dlq.command("redrive")
@_CONFIG_OPTION
@_QUEUE_OPTION
@click.option(
    "--max",
    "limit",
    type=click.IntRange(min=1),
    default=None,
    help="Bring back at most this many, one by one (default: all, by SQS's own move task).",
)
def dlq_redrive(config_path: str, mode: str, limit: int | None) -> None:
    """Bring dead letters back to their queue, once what failed them is fixed.

    Without --max, SQS's own message-move task moves them all where the
    endpoint has one; otherwise (and with --max) each is received, sent back
    and only then deleted, one line per message.

    \b
    Examples:
      opthub-runner dlq redrive --config config.yml --queue evaluator --max 5
      opthub-runner dlq redrive --config config.yml --queue evaluator
    """
    from ..fleet.dead_letters import dead_letter_queue_of, redrive
    from ..fleet.queues import fleet_queues

    config = read_config(config_path)

    def move() -> None:
        queue = fleet_queues(config, (mode,))[mode]
        dead_letter = dead_letter_queue_of(queue, f"{mode}_queue_url")
        done = redrive(dead_letter, queue, limit=limit, report=click.echo)
        how = "by the message-move task" if done.by_task else "one by one"
        click.echo(f"{done.moved} messages back on {queue.url} ({how})")

    _guarded(move)
