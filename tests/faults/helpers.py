"""What several fault tests share: submitting trials and reading the table whole."""

from __future__ import annotations

import uuid
from typing import Any

from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.contract import put_solution, send_job
from opthub_runner_admin.platform_side.stack import AwsStack


def new_match() -> str:
    return str(uuid.uuid4())


def submit(
    aws: AwsStack, match: str, variables: list[Any], participant: str = "p-1", first: int = 1
) -> list[TrialRef]:
    """Store each solution and enqueue its evaluation, as the platform does."""
    refs = []
    for n, variable in enumerate(variables, start=first):
        ref = TrialRef(match, participant, f"{n:04d}")
        put_solution(aws.clients.dynamodb, aws.table_name, ref, variable)
        send_job(aws.clients.sqs, aws.evaluator_queue_url, ref)
        refs.append(ref)
    return refs
