"""The ``opthub-runner`` command: every command, one module each, joined here.

Every failure an operator can meet ends here in one line on stderr and an
exit code from ``sysexits.h``, never a traceback: 78 (``EX_CONFIG``) for
what only the operator can fix (the config file, a refused password, an
unknown user pool, a queue URL that is not one), which the systemd unit
lists in ``RestartPreventExitStatus``; 1 for what may pass (the network,
Docker away), which systemd retries; 2 for a wrong command line (click's).
"""

from __future__ import annotations

import click

from .. import __version__
from ..runner.modes import MODES
from .config_commands import config_group
from .demo_command import demo
from .deploy_commands import fleet
from .doctor_command import doctor
from .fleet_commands import dlq, status
from .pause_commands import pause, resume
from .run_commands import logout, mode_command
from .stop_command import stop
from .try_commands import try_group


@click.group()
@click.version_option(__version__, prog_name="opthub-runner")
def main() -> None:
    """Evaluate and score OptHub solutions in Docker, fed by SQS and DynamoDB.

    \b
    Example:
      opthub-runner doctor --config config.yml
      opthub-runner evaluator --config config.yml
    """


for _mode in MODES:
    main.command(_mode.name)(mode_command(_mode))
for _command in (
    logout,
    stop,
    pause,
    resume,
    try_group,
    doctor,
    demo,
    config_group,
    status,
    dlq,
    fleet,
):
    main.add_command(_command)
