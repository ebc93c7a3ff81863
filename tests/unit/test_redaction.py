"""One masking rule for every text that may quote the match's environment."""

from __future__ import annotations

from opthub_runner_admin.executor import RunSpec
from opthub_runner_admin.executor.docker.errors import short_reason
from opthub_runner_admin.jobs.redaction import redact_failure
from opthub_runner_admin.masking import MASK, redact
from opthub_runner_admin.model import Failure
from opthub_runner_admin.observe.events import environment_values

ENVIRONMENT = {"API_KEY": "k3y9", "QUOTED": 'a"b\\c', "DIMENSION": "2"}


def test_a_short_private_value_is_masked_in_failed_items() -> None:
    failure = Failure(
        message="bad key k3y9", admin_message='stderr: API_KEY=k3y9 QUOTED="a\\"b\\\\c" dims 2'
    )
    masked = redact_failure(failure, ENVIRONMENT)
    assert isinstance(masked, Failure)
    assert masked.message == f"bad key {MASK}"
    assert masked.admin_message == f'stderr: API_KEY={MASK} QUOTED="{MASK}" dims 2'


def test_docker_errors_and_the_status_page_use_the_same_rule() -> None:
    spec = RunSpec(image="i", stdin_lines=[], timeout=1.0, environment=ENVIRONMENT)
    assert short_reason(ValueError("invalid variable k3y9"), spec) == f"invalid variable {MASK}"
    page_text = redact("env k3y9 and 2", environment_values(ENVIRONMENT))
    assert page_text == f"env {MASK} and 2"
