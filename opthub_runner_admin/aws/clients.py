"""boto3 clients for SQS, DynamoDB, Cognito and CloudWatch, all from one session.

All clients come from ONE ``boto3.session.Session`` (``AwsClients.session``)
so that they share a credential source (explicit keys from ``config.yml``, or
boto3's default chain when the keys are omitted) and are safe to use from the
worker's threads (boto3 clients are thread-safe; the default session is not).
The Cognito client (``cognito_client``) is made from the same session but
unsigned and in the pool's own region: ``InitiateAuth`` needs no AWS keys.
How their errors are sorted is ``failures``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import boto3.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from .. import errors
from .failures import AwsCallFailed, describe, error_code, error_message, is_transient

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

    #: Client types, for modules that hold one without importing the stubs.
    CognitoClient = CognitoIdentityProviderClient
    SqsClient = SQSClient

log = logging.getLogger(__name__)

#: Attempts per call, first one included. Standard mode backs off exponentially
#: (capped at 20 s) between them, so a short outage is absorbed inside one call.
MAX_ATTEMPTS = 8
#: Seconds to open a TCP connection: an unreachable endpoint should fail fast.
CONNECT_TIMEOUT = 5
#: Seconds to wait for a response. Must exceed SQS's 20 s long poll, or every
#: idle receive would end in a read timeout.
READ_TIMEOUT = 30

#: The session type, for modules that pass one along without importing boto3.
AwsSession = boto3.session.Session


@dataclass(frozen=True)
class AwsClients:
    """The runner's three AWS clients, built together from one session."""

    sqs: SQSClient
    dynamodb: DynamoDBClient
    session: boto3.session.Session
    region_name: str
    endpoint_url: str | None = None

    def cognito(self, region_name: str) -> CognitoIdentityProviderClient:
        """An unsigned Cognito client of this session in the user pool's region."""
        return cognito_client(
            session=self.session, region_name=region_name, endpoint_url=self.endpoint_url
        )


def aws_clients(
    *,
    region_name: str,
    endpoint_url: str | None = None,
    access_key_id: str | None = None,
    secret_access_key: str | None = None,
    max_attempts: int = MAX_ATTEMPTS,
) -> AwsClients:
    """Build the SQS and DynamoDB clients on one session (Cognito's comes from it on demand).

    ``endpoint_url`` points every client at one local stack (moto); None means
    the real AWS endpoints of ``region_name``. ``max_attempts`` is there for
    tests that want an outage to surface at once instead of after the backoff.
    Raises ``errors.FatalError`` when no region or no credentials can be found.
    """
    if not region_name:
        raise errors.SetupError("region_name is not set: add it to config.yml")
    if (access_key_id is None) != (secret_access_key is None):
        raise errors.SetupError(
            "only one of access_key_id and secret_access_key is set: set both or neither"
        )
    session = boto3.session.Session(
        aws_access_key_id=access_key_id,
        aws_secret_access_key=secret_access_key,
        region_name=region_name,
    )
    config = Config(
        retries={"max_attempts": max_attempts, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )
    try:
        if session.get_credentials() is None:
            raise NoCredentialsError()
        clients = AwsClients(
            sqs=session.client("sqs", endpoint_url=endpoint_url, config=config),
            dynamodb=session.client("dynamodb", endpoint_url=endpoint_url, config=config),
            session=session,
            region_name=region_name,
            endpoint_url=endpoint_url,
        )
    except (NoCredentialsError, PartialCredentialsError) as exc:
        raise errors.FatalError(
            "no AWS credentials found: set access_key_id and secret_access_key in config.yml,"
            " or give them where boto3 looks (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY,"
            " AWS_PROFILE or ~/.aws/credentials, an EC2 instance role)"
        ) from exc
    except NoRegionError as exc:
        raise errors.SetupError("region_name is not valid: fix it in config.yml") from exc
    log.debug(
        "AWS clients for region %s%s",
        region_name,
        f" at {endpoint_url}" if endpoint_url else "",
    )
    return clients


#: Seconds one Cognito request may take (it answers at once or not at all).
COGNITO_TIMEOUT = 10.0
#: Words found in botocore's DEBUG lines that carry a Cognito request body (the
#: password) or answer (the tokens).
_SECRET_MARKERS = ("AuthParameters", "AuthenticationResult")


def cognito_client(
    *,
    region_name: str,
    session: boto3.session.Session | None = None,
    endpoint_url: str | None = None,
    timeout: float = COGNITO_TIMEOUT,
) -> CognitoIdentityProviderClient:
    """An unsigned Cognito client (``InitiateAuth`` needs no AWS keys) of ``session``.

    botocore logs whole request and response bodies at DEBUG: a filter that
    drops those of InitiateAuth is put on its loggers here, so that a runner
    started with log_level DEBUG still never prints a password or a token.
    """
    hide_auth_bodies()
    session = session if session is not None else boto3.session.Session()
    return session.client(
        "cognito-idp",
        region_name=region_name,
        endpoint_url=endpoint_url,
        config=Config(
            signature_version=UNSIGNED,
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 3, "mode": "standard"},
        ),
    )


def initiate_auth(client: CognitoIdentityProviderClient, **params: Any) -> Any:
    """Cognito's ``InitiateAuth``; any botocore error becomes ``AwsCallFailed``."""
    try:
        return client.initiate_auth(**params)
    except ClientError as exc:
        raise AwsCallFailed(
            code=error_code(exc),
            message=error_message(exc),
            described=describe(exc),
            transient=is_transient(exc),
            transport=False,
        ) from None
    except BotoCoreError as exc:
        failed = AwsCallFailed(
            code="", message="", described="", transient=is_transient(exc), transport=True
        )
        failed.type_name = type(exc).__name__
        raise failed from None


def _no_auth_bodies(record: logging.LogRecord) -> bool:
    """Drop botocore's DEBUG lines that quote an InitiateAuth request or answer."""
    if record.levelno > logging.DEBUG:
        return True
    message = record.getMessage()
    return not any(marker in message for marker in _SECRET_MARKERS)


def hide_auth_bodies() -> None:
    """Put the ``_no_auth_bodies`` filter on botocore's body loggers (once)."""
    for name in ("botocore.endpoint", "botocore.parsers"):
        logger = logging.getLogger(name)
        if _no_auth_bodies not in logger.filters:
            logger.addFilter(_no_auth_bodies)


class AwsSettings(Protocol):
    """Where and as whom to call AWS: the four keys of an operator's config."""

    @property
    def region_name(self) -> str: ...

    @property
    def endpoint_url(self) -> str | None: ...

    @property
    def access_key_id(self) -> str | None: ...

    @property
    def secret_access_key(self) -> str | None: ...


def config_clients(config: AwsSettings, *, max_attempts: int = MAX_ATTEMPTS) -> AwsClients:
    """``aws_clients`` for the region, endpoint and keys of an operator's config."""
    return aws_clients(
        region_name=config.region_name,
        endpoint_url=config.endpoint_url,
        access_key_id=config.access_key_id,
        secret_access_key=config.secret_access_key,
        max_attempts=max_attempts,
    )


def cloudwatch_client(clients: AwsClients, *, max_attempts: int = MAX_ATTEMPTS) -> CloudWatchClient:
    """A CloudWatch client of the clients' session (for the age of a queue's oldest message)."""
    return clients.session.client(
        "cloudwatch",
        endpoint_url=clients.endpoint_url,
        config=Config(
            retries={"max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
        ),
    )
