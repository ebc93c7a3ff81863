"""``opthub-runner demo``: the whole product on this machine, with nothing to sign up for.

It plays the platform's part (a moto server for SQS and DynamoDB, solutions in
the table, messages in the queues, a local match catalogue) and runs the real
evaluator and scorer, built by the same wiring as ``opthub-runner evaluator``,
against it. What the runner wrote is read back from the table and printed.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import yaml

from ..aws.clients import AwsClients, aws_clients
from ..config.loading import load_config
from ..executor.docker import connect_docker
from ..model import TrialRef
from ..platform_side.contract import create_queue, create_table, put_solution, send_job
from ..platform_side.emulators import MotoServer, require_moto_server
from ..runner.assembly import build_worker
from ..runner.modes import mode_named
from ..runner.parts import Options
from ..store.dynamodb import DynamoStore
from ..store.items import EVALUATIONS, FAILED, SUCCESS
from ..values import from_dynamo
from .images import BEST_SO_FAR_SCRIPT, SPHERE_SCRIPT, build_busybox_image

log = logging.getLogger(__name__)

REGION = "ap-northeast-1"
PROBLEM_IMAGE = "opthub-demo/sphere:latest"
INDICATOR_IMAGE = "opthub-demo/best-so-far:latest"
#: The demo's participants; each scores against their own history only.
PARTICIPANTS = ("alice", "bob")
#: What every fourth solution is, to show a Failed evaluation.
MALFORMED = "not a vector"
#: Width of the number columns of the table (the decimal points line up).
NUMBER_WIDTH = 12


def run_demo(*, solutions: int = 5, keep: bool = False, workdir: Path | None = None) -> None:
    require_moto_server()
    workdir = workdir or Path.cwd() / ".demo"
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    click.echo("Building the example images (static busybox, no registry needed)...")
    docker_client = connect_docker()
    build_busybox_image(docker_client, PROBLEM_IMAGE, SPHERE_SCRIPT)
    build_busybox_image(docker_client, INDICATOR_IMAGE, BEST_SO_FAR_SCRIPT)
    click.echo("Starting a moto server for SQS and DynamoDB...")
    with MotoServer() as server:
        _run_on(server.endpoint_url, workdir, solutions)
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)


def _run_on(endpoint: str, workdir: Path, solutions: int) -> None:
    clients = aws_clients(
        region_name=REGION,
        endpoint_url=endpoint,
        access_key_id="demo",
        secret_access_key="demo",
    )
    table = "opthub-demo"
    create_table(clients.dynamodb, table)
    evaluator_url = create_queue(clients.sqs, "opthub-demo-evaluator")
    scorer_url = create_queue(clients.sqs, "opthub-demo-scorer")
    match_id = str(uuid.uuid4())
    (workdir / "matches.yml").write_text(
        yaml.safe_dump(
            {
                match_id: {
                    "problem": {"image": PROBLEM_IMAGE, "environment": {"DIMENSION": "2"}},
                    "indicator": {"image": INDICATOR_IMAGE, "environment": {}},
                }
            }
        )
    )
    config_path = workdir / "config.yml"
    settings: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "access_key_id": "demo",
        "secret_access_key": "demo",
        "table_name": table,
        "evaluator_queue_url": evaluator_url,
        "scorer_queue_url": scorer_url,
        "matches_file": "matches.yml",
        "cache_dir": "cache",
        "interval": 1,
        "timeout": 30,
        "log_level": "INFO",
    }
    config_path.write_text(yaml.safe_dump(settings))

    refs, malformed = _submit(clients, table, evaluator_url, match_id, solutions)
    click.echo(f"\nEnqueued {len(refs)} solutions for match {match_id}; running the evaluator.")
    _run_mode("evaluator", config_path, len(refs))

    evaluated = [ref for ref in refs if _status(clients, table, EVALUATIONS, ref) == SUCCESS]
    for ref in evaluated:
        send_job(clients.sqs, scorer_url, ref)
    click.echo(f"\n{len(evaluated)} evaluations succeeded; running the scorer on them.")
    if evaluated:
        _run_mode("scorer", config_path, len(evaluated))
    _print_results(clients, table, refs, malformed)


def _submit(
    clients: Any, table: str, queue_url: str, match_id: str, count: int
) -> tuple[list[TrialRef], set[TrialRef]]:
    """Store and enqueue ``count`` solutions; return them, and those malformed on purpose."""
    rng = random.Random(42)
    refs = []
    malformed = set()
    trials = dict.fromkeys(PARTICIPANTS, 0)
    for n in range(1, count + 1):
        # Two participants take turns; each numbers their own trials, as on the platform.
        participant = PARTICIPANTS[(n - 1) % len(PARTICIPANTS)]
        trials[participant] += 1
        ref = TrialRef(match_id, participant, f"{trials[participant]:04d}")
        # Every fourth solution is malformed, to show a Failed evaluation.
        variable: Any = (
            MALFORMED if n % 4 == 0 else [round(rng.uniform(-2, 2), 3) for _ in range(2)]
        )
        put_solution(clients.dynamodb, table, ref, variable)
        send_job(clients.sqs, queue_url, ref)
        refs.append(ref)
        if variable == MALFORMED:
            malformed.add(ref)
    return refs, malformed


def _run_mode(mode: str, config_path: Path, jobs: int) -> None:
    config = replace(load_config(config_path).config, num=jobs)
    worker = build_worker(mode_named(mode), config, Options())
    stats = worker.run()
    log.info("%s stopped: %s", mode, stats.summary())


def _item(
    clients: AwsClients, table: str, kind: str, ref: TrialRef, status: str
) -> dict[str, Any] | None:
    item = DynamoStore(clients.dynamodb, table).result(kind, ref, status)
    return None if item is None else {key: from_dynamo(value) for key, value in item.items()}


def _status(clients: Any, table: str, kind: str, ref: TrialRef) -> str | None:
    for status in (SUCCESS, FAILED):
        if _item(clients, table, kind, ref, status) is not None:
            return status
    return None


def _print_results(
    clients: Any, table: str, refs: list[TrialRef], malformed: set[TrialRef]
) -> None:
    click.echo("\nWhat the runner wrote to the table:")
    click.echo(
        f"{'participant':<12} {'trial':<6} {'evaluation':<10}"
        f" {'objective':>{NUMBER_WIDTH}} {'score':>{NUMBER_WIDTH}}"
    )
    succeeded = failed = intended = scored = 0
    for ref in refs:
        evaluation = _item(clients, table, "Evaluations", ref, "Success")
        start = f"{ref.participant_id:<12} {ref.trial_no:<6}"
        if evaluation is None:
            item = _item(clients, table, "Evaluations", ref, "Failed") or {}
            failed += 1
            note = str(item.get("ErrorMessage", "(no item)"))
            if ref in malformed:
                intended += 1
                note = f"as intended: the solution {json.dumps(MALFORMED)} is malformed ({note})"
            dash = "-"
            click.echo(
                f"{start} {'Failed':<10} {dash:>{NUMBER_WIDTH}} {dash:>{NUMBER_WIDTH}}  {note}"
            )
            continue
        succeeded += 1
        score = _item(clients, table, "Scores", ref, "Success")
        scored += score is not None
        value = _number(score["Value"]) if score else "(none)"
        click.echo(
            f"{start} {'Success':<10} {_number(evaluation['Objective']):>{NUMBER_WIDTH}}"
            f" {value:>{NUMBER_WIDTH}}"
        )
    click.echo(
        f"\n{len(refs)} solutions: {succeeded} evaluations Success, {failed} Failed"
        f" ({intended} as intended), {scored} scores written."
    )


def _number(value: Any) -> str:
    """A number with six decimals (the points line up); anything else as JSON."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.6f}"
    return json.dumps(value)
