"""How the runner sorts botocore's errors: worth a retry, wrong credentials, or neither.

The queue and the store meet the same botocore errors (throttling, 5xx,
dropped connections, rejected keys) and must agree on which are worth a retry
and which stop the runner, so the ``errors`` those become are chosen here
once; each seam adds its own rules before them and raises only ``errors``
types, so that ``ClientError`` never leaves ``aws/``, ``queue/`` or ``store/``.
"""

from __future__ import annotations

import re

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
)

from .. import errors

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


class AwsCallFailed(Exception):
    """A botocore error already sorted, for callers outside ``aws``, ``queue`` and ``store``.

    It carries no request parameters (botocore's text may quote them, a
    password among them): only the error code, AWS's own message, and the
    verdicts the runner needs.
    """

    def __init__(
        self, *, code: str, message: str, described: str, transient: bool, transport: bool
    ) -> None:
        super().__init__(described)
        self.code = code
        self.message = message
        self.described = described
        self.transient = transient
        #: No answer from AWS at all (network, endpoint), rather than a refusal.
        self.transport = transport
        self.type_name = ""


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


def missing_resource_error(resource: str, config_key: str) -> errors.SetupError:
    """A queue or table that does not exist: a restart cannot help until config.yml names it."""
    return errors.SetupError(
        f"{resource} does not exist: check {config_key} (and region_name) in config.yml"
    )


def credentials_error(exc: BaseException, action: str) -> errors.FatalError | None:
    """What stops the runner when ``exc`` says the credentials are wrong, else None.

    When AWS answered (keys rejected, access denied) a restart cannot help
    until config.yml is fixed: a ``SetupError``. ``action`` is as
    ``credentials_problem`` takes it.
    """
    problem = credentials_problem(exc, action)
    if problem is None:
        return None
    if isinstance(exc, ClientError):
        return errors.SetupError(problem)
    return errors.FatalError(problem)


def transient_or_admin(
    exc: BaseException, action: str, *, transient: bool
) -> errors.TransientError | errors.AdminError:
    """A botocore error that no more particular rule sorted: retried later, else the admin's.

    ``action`` names what was attempted, as ``credentials_problem`` takes it.
    """
    text = f"cannot {action}: {describe(exc)}"
    return errors.TransientError(text) if transient else errors.AdminError(text)


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
