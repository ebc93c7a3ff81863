"""The fleet's queues, built from an operator's ``config.yml``."""

from __future__ import annotations

from botocore.config import Config as BotoConfig

from ..aws import CONNECT_TIMEOUT, READ_TIMEOUT, config_clients
from ..config import Config, ConfigError
from ..queue.sqs import SqsQueue
from ..queue.sqs_age import OldestAge
from . import MODES

#: Attempts per AWS call: a person is waiting for the answer.
FLEET_ATTEMPTS = 2


def fleet_queues(config: Config, modes: tuple[str, ...] = MODES) -> dict[str, SqsQueue]:
    """The configured queues of ``modes`` (those whose URL is set), by mode.

    Raises ``ConfigError`` when none of them is configured.
    """
    urls = {mode: getattr(config, f"{mode}_queue_url") for mode in modes}
    urls = {mode: url for mode, url in urls.items() if url}
    if not urls:
        keys = " or ".join(f"'{mode}_queue_url'" for mode in modes)
        raise ConfigError(f"{keys} is required (the SQS queue URL)")
    clients = config_clients(config, max_attempts=FLEET_ATTEMPTS)
    cloudwatch = clients.session.client(
        "cloudwatch",
        endpoint_url=config.endpoint_url,
        config=BotoConfig(
            retries={"max_attempts": FLEET_ATTEMPTS, "mode": "standard"},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
        ),
    )
    age = OldestAge(client=cloudwatch)
    return {
        mode: SqsQueue(clients.sqs, url, config_key=f"{mode}_queue_url", oldest_age=age)
        for mode, url in urls.items()
    }
