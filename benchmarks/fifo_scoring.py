"""How long the scorer takes when a participant's trials reach it out of order.

Parallel evaluators finish trials out of order, so the scorer's queue gets a
participant's score messages shuffled. This benchmark stores P participants'
T evaluations, sends their score messages shuffled within each participant
(interleaved across participants), and times R scorers of W workers each
(in this process, sharing one queue) until every trial is scored, once on a
FIFO queue (one group per participant) and once on a standard queue, in one
run. Scores are checked against the best so far computed from the trials.

The queues are SQS on a moto server; the table is the in-memory store (moto's
TransactWriteItems copies its whole table per call, which would measure moto);
the indicator is the demo's best-so-far busybox image on the real Docker
daemon.

Run (from the repository root, after scripts/setup.sh):

    .venv/bin/python -m benchmarks.fifo_scoring                     # 30 x 6, 3 scorers x 2
    .venv/bin/python -m benchmarks.fifo_scoring --participants 10 --trials 4
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import docker

from opthub_runner_admin.demo.images import BEST_SO_FAR_SCRIPT, build_busybox_image
from opthub_runner_admin.executor.docker import DockerExecutor, connect_docker, runner_labels
from opthub_runner_admin.history import HistoryBuilder, MemoryHistoryCache
from opthub_runner_admin.jobs.score import ScoreJob
from opthub_runner_admin.model import Timing
from opthub_runner_admin.platform_side.contract import create_queue, send_job
from opthub_runner_admin.platform_side.emulators import MotoServer
from opthub_runner_admin.platform_side.shuffled_trials import IndicatorCatalogue, evaluated_trials
from opthub_runner_admin.queue.sqs import SqsQueue
from opthub_runner_admin.store.memory import MemoryStore
from opthub_runner_admin.worker import Worker, WorkerSettings

IMAGE = "opthub-bench/best-so-far:1"
#: The default of the ``defer_seconds`` key: what an out-of-order trial waits today.
DEFER_SECONDS = 10


@dataclass(frozen=True)
class Run:
    queue: str
    trials: int
    seconds: float
    wrong: int


def score_all(
    server: MotoServer,
    client: docker.DockerClient,
    *,
    fifo: bool,
    participants: int,
    trials: int,
    scorers: int,
    workers: int,
    seed: int,
) -> Run:
    clients = server.clients()
    url = create_queue(clients.sqs, f"bench-{uuid.uuid4().hex[:8]}", fifo=fifo)
    store = MemoryStore()
    now = datetime.now(timezone.utc)
    shuffled = evaluated_trials(
        store,
        match=str(uuid.uuid4()),
        participants=participants,
        trials=trials,
        timing=Timing(now, now),
        seed=seed,
    )
    for ref in shuffled.sends():
        send_job(clients.sqs, url, ref, group=ref.participant_id if fifo else None)

    total = participants * trials
    runners = []
    for _ in range(scorers):
        job = ScoreJob(
            store=store,
            matches=IndicatorCatalogue(indicator=IMAGE),
            executor=DockerExecutor(client=client, labels=runner_labels("bench")),
            history=HistoryBuilder(store, MemoryHistoryCache()),
            timeout=60,
            max_deferrals=30,
            defer_seconds=DEFER_SECONDS,
            fifo_queue=fifo,
        )
        queue = SqsQueue(server.clients().sqs, url)
        queue.check()
        settings = WorkerSettings(poll_seconds=1, workers=workers)
        runners.append(Worker(queue=queue, handler=job, settings=settings, name="scorer"))
    began = time.monotonic()
    threads = [threading.Thread(target=w.run, daemon=True) for w in runners]
    for thread in threads:
        thread.start()
    while len(store.score_items()) < total:
        time.sleep(0.2)
    seconds = time.monotonic() - began
    for worker in runners:
        worker.stop()
    for thread in threads:
        thread.join(120)
    clients.sqs.delete_queue(QueueUrl=url)
    return Run("FIFO" if fifo else "standard", total, seconds, len(shuffled.wrong_scores(store)))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=30)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--scorers", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=22)
    args = parser.parse_args(argv)
    client = connect_docker()
    build_busybox_image(client, IMAGE, BEST_SO_FAR_SCRIPT)
    print(
        f"{args.participants} participants x {args.trials} trials, shuffled within each"
        f" participant; {args.scorers} scorers x {args.workers} workers on one queue;"
        f" defer_seconds {DEFER_SECONDS}"
    )
    with MotoServer() as server:
        runs = [
            score_all(
                server,
                client,
                fifo=fifo,
                participants=args.participants,
                trials=args.trials,
                scorers=args.scorers,
                workers=args.workers,
                seed=args.seed,
            )
            for fifo in (True, False)
        ]
    for run in runs:
        print(
            f"{run.queue:9} {run.trials} trials scored in {run.seconds:6.1f} s"
            f" ({run.trials / run.seconds:.2f} trials/s), {run.wrong} wrong"
        )
    print(f"FIFO / standard time: {runs[0].seconds / runs[1].seconds:.2f}x")
    print(
        "rerun: .venv/bin/python -m benchmarks.fifo_scoring"
        f" --participants {args.participants} --trials {args.trials}"
        f" --scorers {args.scorers} --workers {args.workers} --seed {args.seed}"
    )


if __name__ == "__main__":
    main()
