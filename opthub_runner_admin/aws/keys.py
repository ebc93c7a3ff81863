"""The config keys saying where the queues and the table are and how to reach them.

``aws.config_clients`` reads the region, endpoint and keys; the builders read
the queue URLs and the table name.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic.dataclasses import dataclass

from ..settings.kinds import KEYS, refuse
from .queue_urls import queue_url_problem


@dataclass(config=KEYS, kw_only=True, frozen=True)
class AwsKeys:
    """AWS: the queues, the table and the keys to reach them"""

    region_name: str = Field(
        description="AWS region of the queues and the table, e.g. ap-northeast-1",
        examples=["ap-northeast-1"],
    )
    table_name: str = Field(
        description="DynamoDB table of solutions, evaluations and scores", examples=["opthub"]
    )
    evaluator_queue_url: str | None = Field(
        default=None,
        description="SQS queue of the evaluator (required by `evaluator`)",
        examples=["https://sqs.ap-northeast-1.amazonaws.com/123456789012/evaluator"],
    )
    scorer_queue_url: str | None = Field(
        default=None,
        description="SQS queue of the scorer (required by `scorer`)",
        examples=["https://sqs.ap-northeast-1.amazonaws.com/123456789012/scorer"],
    )
    # repr=False marks a secret: never in a repr, a log or an error message.
    access_key_id: str | None = Field(
        default=None,
        repr=False,
        description="AWS access key; omit both keys to use boto3's default chain"
        " (environment, profile, instance role)",
        examples=["AKIA..."],
    )
    secret_access_key: str | None = Field(
        default=None, repr=False, description="AWS secret key of `access_key_id`", examples=["..."]
    )
    endpoint_url: str | None = Field(
        default=None,
        description="one endpoint for SQS, DynamoDB and Cognito (a local stack); unset = real AWS",
        examples=["http://127.0.0.1:5000"],
    )

    @model_validator(mode="after")
    def _queue_urls_are_urls(self) -> AwsKeys:
        """A queue's bare name (the earlier runner's) fails here, not at every request."""
        for key in ("evaluator_queue_url", "scorer_queue_url"):
            url = getattr(self, key)
            problem = url and queue_url_problem(key, url, region_name=self.region_name)
            if problem:
                raise refuse(problem)
        return self
