"""The scorer on a FIFO queue against the same trials on a standard queue, in one run.

P participants x T trials, every trial evaluated first (as the evaluator
leaves them), their score messages sent with each participant's trials
shuffled (one message group per participant on the FIFO queue). The real
scorer (built as the CLI builds it, in this process, with its Docker
indicator image on the machine's daemon) scores them on a moto server; the
benchmark reports the seconds from start to the last score, the deferral
waits and immediate rotations of the scorer, and checks every score against
best-so-far of the trial's history (a wrong history shows as a wrong score).

With ``--previous`` it also runs the FIFO queue as the previous release did
(every out-of-order trial waits ``defer_seconds`` in its slot); that run takes
minutes.

Run (from the repository root, after scripts/setup.sh):

    .venv/bin/python -m benchmarks.fifo_scoring
    .venv/bin/python -m benchmarks.fifo_scoring --participants 30 --trials 6 --workers 2
    .venv/bin/python -m benchmarks.fifo_scoring --previous

Figures depend on the machine and its load; compare within one run.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import docker
import yaml
from boto3.dynamodb.types import TypeDeserializer

from opthub_runner_admin.app import Options, build_worker
from opthub_runner_admin.aws import AwsClients
from opthub_runner_admin.config import load_config
from opthub_runner_admin.demo.images import BEST_SO_FAR_SCRIPT, build_busybox_image
from opthub_runner_admin.demo.stack import REGION, MotoServer, create_table, job_body
from opthub_runner_admin.jobs.score import ScoreJob
from opthub_runner_admin.model import Evaluation, Timing, TrialRef
from opthub_runner_admin.store.dynamodb import DynamoStore

INDICATOR = "opthub-bench/best-so-far:latest"
TABLE = "opthub-bench-fifo"
FAKE_KEY = "testing"


@dataclass(frozen=True)
class Measured:
    kind: str
    seconds: float
    scored: int
    exact: int
    waits: int
    rotations: int


def objective(participant: int, trial: int) -> int:
    return (participant * 7 + trial * 5) % 11


def plan_of(participants: int, trials: int, seed: int) -> list[tuple[int, list[int]]]:
    order = random.Random(seed)
    plan = []
    for participant in range(participants):
        numbers = list(range(1, trials + 1))
        order.shuffle(numbers)
        plan.append((participant, numbers))
    return plan


def measure(
    kind: str,
    clients: AwsClients,
    endpoint: str,
    plan: list[tuple[int, list[int]]],
    *,
    workers: int,
    defer_seconds: int,
    previous: bool = False,
) -> Measured:
    fifo = kind != "standard"
    suffix = ".fifo" if fifo else ""
    name = f"bench-{uuid.uuid4().hex[:10]}{suffix}"
    if fifo:
        url = clients.sqs.create_queue(QueueName=name, Attributes={"FifoQueue": "true"})["QueueUrl"]
    else:
        url = clients.sqs.create_queue(QueueName=name)["QueueUrl"]
    match = str(uuid.uuid4())
    store = DynamoStore(clients.dynamodb, TABLE)
    now = datetime.now(timezone.utc)
    timing = Timing(now, now)
    refs = []
    for participant, numbers in plan:
        for trial in numbers:
            ref = TrialRef(match, f"p-{participant}", f"{trial:04d}")
            store.put_evaluation(ref, Evaluation(objective=objective(participant, trial)), timing)
            refs.append((participant, trial, ref))
    for participant, _trial, ref in refs:
        extra: dict[str, Any] = (
            {"MessageGroupId": f"p-{participant}", "MessageDeduplicationId": uuid.uuid4().hex}
            if fifo
            else {}
        )
        clients.sqs.send_message(QueueUrl=url, MessageBody=job_body(ref), **extra)
    with tempfile.TemporaryDirectory(prefix="opthub-bench-") as home:
        Path(home, "matches.yml").write_text(
            yaml.safe_dump(
                {
                    match: {
                        "problem": {"image": "opthub-bench/unused:1", "environment": {}},
                        "indicator": {"image": INDICATOR, "environment": {}},
                    }
                }
            )
        )
        settings = {
            "endpoint_url": endpoint,
            "region_name": REGION,
            "access_key_id": FAKE_KEY,
            "secret_access_key": FAKE_KEY,
            "table_name": TABLE,
            "evaluator_queue_url": url,
            "scorer_queue_url": url,
            "matches_file": "matches.yml",
            "cache_dir": "cache",
            "interval": 1,
            "workers": workers,
            "defer_seconds": defer_seconds,
            "log_level": "WARNING",
        }
        Path(home, "config.yml").write_text(yaml.safe_dump(settings))
        config = load_config(Path(home, "config.yml")).config
        worker = build_worker("scorer", config, Options(interactive=False))
        job = worker.handler
        assert isinstance(job, ScoreJob)
        if previous:
            job._may_rotate = lambda *args: False  # type: ignore[method-assign]
        thread = threading.Thread(target=worker.run, daemon=True)
        began = time.monotonic()
        thread.start()
        while worker.stats.done < len(refs) and thread.is_alive():
            time.sleep(0.05)
        seconds = time.monotonic() - began
        worker.stop(force=True)
        thread.join(60)
    exact = 0
    scored = 0
    for participant, trial, ref in refs:
        value = score_of(clients, ref)
        scored += value is not None
        best = min(objective(participant, t) for t in range(1, trial + 1))
        exact += value == Decimal(best)
    clients.sqs.delete_queue(QueueUrl=url)
    return Measured(kind, seconds, scored, exact, job.waits, job.rotations)


def score_of(clients: AwsClients, ref: TrialRef) -> Decimal | None:
    key = f"Scores#Match#{ref.match_id}#{ref.participant_id}"
    item = clients.dynamodb.get_item(
        TableName=TABLE, Key={"ID": {"S": key}, "Trial": {"S": f"Success#{ref.trial_no}"}}
    ).get("Item")
    if item is None:
        return None
    value = TypeDeserializer().deserialize(item["Value"])
    return value if isinstance(value, Decimal) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=10)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--defer-seconds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=22)
    parser.add_argument(
        "--previous", action="store_true", help="also run FIFO as the previous release (slow)"
    )
    args = parser.parse_args()
    build_busybox_image(docker.from_env(), INDICATOR, BEST_SO_FAR_SCRIPT)
    plan = plan_of(args.participants, args.trials, args.seed)
    total = args.participants * args.trials
    print(
        f"{args.participants} participants x {args.trials} trials shuffled per participant, "
        f"{args.workers} workers, defer_seconds {args.defer_seconds}, moto + Docker"
    )
    print(f"{'queue':<16} {'seconds':>8} {'scored':>8} {'exact':>8} {'waits':>6} {'rotations':>9}")
    kinds = ["standard", "fifo", *(["fifo (previous)"] if args.previous else [])]
    with MotoServer() as server:
        clients = server.clients()
        create_table(clients.dynamodb, TABLE)
        for kind in kinds:
            row = measure(
                kind,
                clients,
                server.endpoint_url,
                plan,
                workers=args.workers,
                defer_seconds=args.defer_seconds,
                previous=kind == "fifo (previous)",
            )
            print(
                f"{row.kind:<16} {row.seconds:>8.1f} {row.scored:>5}/{total:<2} "
                f"{row.exact:>5}/{total:<2} {row.waits:>6} {row.rotations:>9}",
                flush=True,
            )


if __name__ == "__main__":
    main()
