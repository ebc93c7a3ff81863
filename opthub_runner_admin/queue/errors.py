"""Errors of the queue seam that the shared ``errors`` module does not need to know."""

from __future__ import annotations

from ..errors import RunnerError


class ReceiptExpired(RunnerError):
    """The message can no longer be extended, made visible or deleted with this receipt.

    It was deleted already, its receipt handle is stale (another consumer
    received it since), or it reached SQS's 12-hour visibility cap. The job
    may go on, but the message may already be with another consumer: the flag
    item keeps a second result from being written, so this is not a failure
    of the trial, only a sign that this runner no longer holds the message.
    """
