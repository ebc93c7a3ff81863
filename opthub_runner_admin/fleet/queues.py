"""The fleet's queues, built from the AWS keys of an operator's ``config.yml``."""

from __future__ import annotations

from ..aws.clients import cloudwatch_client, config_clients
from ..aws.keys import AwsKeys
from ..errors import ConfigError
from ..queue.sqs import SqsQueue
from ..queue.sqs_age import OldestAge
from . import MODES

#: Attempts per AWS call: a person is waiting for the answer.
FLEET_ATTEMPTS = 2


def fleet_queues(config: AwsKeys, modes: tuple[str, ...] = MODES) -> dict[str, SqsQueue]:
    """The configured queues of ``modes`` (those whose URL is set), by mode.

    Raises ``ConfigError`` when none of them is configured.
    """
    urls = {mode: getattr(config, f"{mode}_queue_url") for mode in modes}
    urls = {mode: url for mode, url in urls.items() if url}
    if not urls:
        keys = " or ".join(f"'{mode}_queue_url'" for mode in modes)
        raise ConfigError(f"{keys} is required (the SQS queue URL)")
    clients = config_clients(config, max_attempts=FLEET_ATTEMPTS)
    age = OldestAge(client=cloudwatch_client(clients, max_attempts=FLEET_ATTEMPTS))
    return {
        mode: SqsQueue(clients.sqs, url, config_key=f"{mode}_queue_url", oldest_age=age)
        for mode, url in urls.items()
    }
