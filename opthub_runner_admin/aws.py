"""boto3 clients for SQS, DynamoDB and Cognito, and how their errors are classified.

All clients come from ONE ``boto3.session.Session`` (``AwsClients.session``)
so that they share a credential source (explicit keys from ``config.yml``, or
boto3's default chain when the keys are omitted) and are safe to use from the
worker's threads (boto3 clients are thread-safe; the default session is not).
The Cognito client (``cognito_client``) is made from the same session but
unsigned and in the pool's own region: ``InitiateAuth`` needs no AWS keys.

The classification helpers live here because the queue and the store meet the
same botocore errors (throttling, 5xx, dropped connections, rejected keys) and
must agree on which are worth a retry; each seam still raises its own
``errors`` types, so that ``ClientError`` never leaves ``queue/`` or ``store/``.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3.session
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)

from . import errors

if TYPE_CHECKING:
    from mypy_boto3_cognito_idp import CognitoIdentityProviderClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_sqs import SQSClient

    from .config import Config as RunnerConfig

log = logging.getLogger(__name__)

#: Attempts per call, first one included. Standard mode backs off exponentially
#: (capped at 20 s) between them, so a short outage is absorbed inside one call.
MAX_ATTEMPTS = 8
#: Seconds to open a TCP connection: an unreachable endpoint should fail fast.
CONNECT_TIMEOUT = 5
#: Seconds to wait for a response. Must exceed SQS's 20 s long poll, or every
#: idle receive would end in a read timeout.
READ_TIMEOUT = 30

#: Error codes that mean "too busy or briefly broken, try again later".
TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "SlowDown",
        "TransactionInProgressException",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalErrorException",
    }
)

#: Error codes that mean the access key, its secret or the signing region is wrong.
CREDENTIAL_CODES = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
        "IncompleteSignature",
        "IncompleteSignatureException",
        "MissingAuthenticationToken",
        "MissingAuthenticationTokenException",
        "ExpiredToken",
        "ExpiredTokenException",
        "AuthFailure",
    }
)

#: Error codes that mean the key is valid but its IAM policy forbids the call.
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException"})

#: Longest description of an error put in a message (AWS may answer with a whole page).
DESCRIBE_LIMIT = 300

#: An error code inside an XML error body.
_XML_CODE = re.compile(r"<Code>([^<]+)</Code>")

#: What to tell the operator when AWS rejects the credentials.
CREDENTIALS_HINT = "check access_key_id, secret_access_key and region_name in config.yml"


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
            "no AWS credentials found: set access_key_id and secret_access_key in config.yml"
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


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ``ClientError`` ("" when the response has none).

    When botocore could not parse the error body (an XML body where it expected
    JSON, as moto sends for rejected keys), the code is only the HTTP status;
    the real code is then read from the body that botocore kept as the message.
    """
    code = str(exc.response.get("Error", {}).get("Code", ""))
    if code.isdigit():
        found = _XML_CODE.search(error_message(exc))
        if found:
            return found.group(1)
    return code


def error_message(exc: ClientError) -> str:
    """The AWS error message of a ``ClientError`` ("" when the response has none)."""
    return str(exc.response.get("Error", {}).get("Message", ""))


def http_status(exc: ClientError) -> int:
    """The HTTP status of a ``ClientError`` (0 when unknown)."""
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` is worth retrying after a backoff.

    True for throttling, any 5xx, and for connections that could not be made,
    were dropped or timed out: the next attempt may well succeed.
    """
    if isinstance(exc, (ConnectionError, HTTPClientError)):
        return True
    if isinstance(exc, ClientError):
        return error_code(exc) in TRANSIENT_CODES or http_status(exc) >= 500
    return False


def credentials_problem(exc: BaseException, action: str) -> str | None:
    """One line for the operator when ``exc`` says the credentials are wrong, else None.

    ``action`` names what was attempted (for example "receive from SQS queue
    <url>"). The line never carries a secret: AWS's own message is left out
    because it may quote parts of the request.
    """
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return f"cannot {action}: no AWS credentials found; {CREDENTIALS_HINT}"
    if not isinstance(exc, ClientError):
        return None
    code = error_code(exc)
    if code in CREDENTIAL_CODES:
        return f"cannot {action}: AWS rejected the credentials ({code}); {CREDENTIALS_HINT}"
    if code in ACCESS_DENIED_CODES or http_status(exc) == 403:
        return (
            f"cannot {action}: access denied ({code or 'HTTP 403'}); give the IAM user of "
            "access_key_id permission for it, or fix access_key_id and secret_access_key "
            "in config.yml"
        )
    return None


def describe(exc: BaseException) -> str:
    """A short one-line description of a botocore error for logs and error messages."""
    if isinstance(exc, ClientError):
        code, message = error_code(exc) or "error", error_message(exc)
        text = f"{code}: {message}" if message else code
    elif isinstance(exc, BotoCoreError):
        text = f"{type(exc).__name__}: {exc}"
    else:
        text = repr(exc)
    text = " ".join(text.split())
    return text if len(text) <= DESCRIBE_LIMIT else text[: DESCRIBE_LIMIT - 3] + "..."


def config_clients(config: RunnerConfig, *, max_attempts: int = MAX_ATTEMPTS) -> AwsClients:
    """``aws_clients`` for the region, endpoint and keys of an operator's config."""
    return aws_clients(
        region_name=config.region_name,
        endpoint_url=config.endpoint_url,
        access_key_id=config.access_key_id,
        secret_access_key=config.secret_access_key,
        max_attempts=max_attempts,
    )
