"""``opthub-runner demo --serve``: the embedded stack kept up for a newcomer to try every command.

It starts what ``demo`` starts (a moto server, the example images, a match
catalogue), writes a ready ``config.yml`` into a temporary folder and prints
its path, then runs an evaluator and a scorer on it with the status page on,
while a feeder plays the platform: a new solution every ``every`` seconds,
each successful evaluation sent on to the scorer. One message waits in the
evaluator's dead-letter queue, for ``dlq list`` and ``dlq redrive``.

The printed config has no ``metrics_port``, so that ``opthub-runner
evaluator --config ...`` started beside it joins the fleet on the same queue
without fighting over the page's port. Ctrl-C (or SIGTERM) stops the
runners, the moto server and the page, and removes the folder: nothing is
left behind but the example images, which ``demo`` keeps too.
"""

from __future__ import annotations

import contextlib
import logging
import random
import shutil
import signal
import tempfile
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from types import FrameType
from typing import Any

import click
import yaml

from ..aws.clients import AwsClients
from ..config.loading import load_config
from ..executor.docker import connect_docker
from ..model import TrialRef
from ..platform_side.contract import (
    create_queue,
    create_table,
    dead_letter_queue_name,
    job_body,
    put_solution,
    send_job,
)
from ..platform_side.emulators import FAKE_KEY, REGION, MotoServer, require_moto_server
from ..runner.assembly import build_monitor, build_worker
from ..runner.modes import EVALUATOR, SCORER
from ..runner.parts import Options
from ..store import Store
from ..store.dynamodb import DynamoStore
from ..worker import Worker
from .images import BEST_SO_FAR_SCRIPT, SPHERE_SCRIPT, build_busybox_image

log = logging.getLogger(__name__)

PROBLEM_IMAGE = "opthub-demo/sphere:latest"
INDICATOR_IMAGE = "opthub-demo/best-so-far:latest"
PARTICIPANTS = ("alice", "bob")
#: The participant of the trial waiting in the dead-letter queue.
DEAD_LETTER_PARTICIPANT = "carol"
#: Receives before a message goes to the dead-letter queue (above the runner's own put-backs).
MAX_RECEIVES = 10
#: Seconds between two status samples of the demo's evaluator (the page's chart).
STATUS_INTERVAL = 10


def serve_demo(*, every: float, port: int, host: str = "127.0.0.1") -> None:
    """Run until SIGINT, SIGTERM or SIGHUP; raise ``FatalError`` when the stack cannot start."""
    require_moto_server()
    stop = threading.Event()
    _on_signals(stop)
    workdir = Path(tempfile.mkdtemp(prefix="opthub-demo-"))
    try:
        click.echo("Building the example images (static busybox, no registry needed)...")
        docker_client = connect_docker()
        build_busybox_image(docker_client, PROBLEM_IMAGE, SPHERE_SCRIPT)
        build_busybox_image(docker_client, INDICATOR_IMAGE, BEST_SO_FAR_SCRIPT)
        click.echo("Starting a moto server for SQS and DynamoDB...")
        with MotoServer(host=host) as server:
            _serve(server, workdir, every=every, port=port, host=host, stop=stop)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _on_signals(stop: threading.Event) -> None:
    def handle(signum: int, frame: FrameType | None) -> None:
        if not stop.is_set():
            click.echo(f"\n{signal.Signals(signum).name}: stopping the demo...", err=True)
        stop.set()

    # SIGHUP too: a closed terminal must not leave the moto server (its own session) behind.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, handle)


def _serve(
    server: MotoServer, workdir: Path, *, every: float, port: int, host: str, stop: threading.Event
) -> None:
    clients = server.clients()
    config_path, match_id = _write_stack(clients, server.endpoint_url, workdir)
    config = replace(
        load_config(config_path).config,
        metrics_port=port,
        metrics_host=host,
        status_interval=STATUS_INTERVAL,
    )
    feeder = Feeder(
        clients=clients,
        store=DynamoStore(clients.dynamodb, config.table_name),
        table=config.table_name,
        evaluator_url=EVALUATOR.queue_url(config),
        scorer_url=SCORER.queue_url(config),
        match_id=match_id,
    )
    feeder.seed_dead_letter()
    monitor = build_monitor(EVALUATOR, config)
    with contextlib.ExitStack() as resources:
        options = Options(events=monitor.events)
        evaluator = build_worker(EVALUATOR, config, options, resources)
        scorer = build_worker(SCORER, config, Options(), resources)
        with monitor:
            if monitor.server is None:  # metrics_port is set above: never
                raise RuntimeError("the demo's status page did not start")
            page_host, page_port = monitor.server.address
            threads = [_run(evaluator, "demo-evaluator"), _run(scorer, "demo-scorer")]
            _print_ready(config_path, f"http://{page_host}:{page_port}/", match_id)
            while not stop.wait(every):
                feeder.tick()
            for worker in (evaluator, scorer):
                worker.stop(force=True)
            for thread in threads:
                thread.join(timeout=60)
    click.echo("Demo stopped: runners, moto server and status page are gone.")


def _run(worker: Worker, name: str) -> threading.Thread:
    thread = threading.Thread(target=worker.run, name=name, daemon=True)
    thread.start()
    return thread


def _write_stack(clients: AwsClients, endpoint: str, workdir: Path) -> tuple[Path, str]:
    """Table, queues (each with a dead-letter queue), catalogue and config; (config, match)."""
    table = "opthub-demo"
    create_table(clients.dynamodb, table)
    evaluator_url = create_queue(
        clients.sqs, "opthub-demo-evaluator", dead_letter_max_receives=MAX_RECEIVES
    )
    scorer_url = create_queue(
        clients.sqs, "opthub-demo-scorer", dead_letter_max_receives=MAX_RECEIVES
    )
    match_id = str(uuid.uuid4())
    matches = workdir / "matches.yml"
    matches.write_text(
        yaml.safe_dump(
            {
                match_id: {
                    "problem": {"image": PROBLEM_IMAGE, "environment": {"DIMENSION": "2"}},
                    "indicator": {"image": INDICATOR_IMAGE, "environment": {}},
                }
            }
        )
    )
    settings: dict[str, Any] = {
        "endpoint_url": endpoint,
        "region_name": REGION,
        "access_key_id": FAKE_KEY,
        "secret_access_key": FAKE_KEY,
        "table_name": table,
        "evaluator_queue_url": evaluator_url,
        "scorer_queue_url": scorer_url,
        "matches_file": str(matches),
        "cache_dir": str(workdir / "cache"),
        "interval": 1,
        "timeout": 30,
        "grace_period": 30,
        "log_level": "INFO",
    }
    config_path = workdir / "config.yml"
    config_path.write_text(yaml.safe_dump(settings))
    config_path.chmod(0o600)  # it holds (fake) keys: as an operator's config should be
    return config_path, match_id


def _print_ready(config_path: Path, page: str, match_id: str) -> None:
    c = str(config_path)
    lines = [
        "",
        "The demo stack is up: a moto server, an evaluator and a scorer, a new solution",
        "every few seconds. Try the commands against it in another terminal:",
        "",
        f"  config: {c}",
        f"  status page: {page}",
        "",
        f"  opthub-runner doctor --config {c}",
        f"  opthub-runner status --config {c}",
        f"  opthub-runner evaluator --config {c} --num 1",
        f"  opthub-runner dlq list --config {c}",
        f"  opthub-runner dlq redrive --config {c} --queue evaluator --max 1",
        f"  echo '[1, 2]' | opthub-runner try problem {PROBLEM_IMAGE} --config {c}"
        f" --match {match_id}",
        "",
        "Ctrl-C stops it all and removes the folder of the config.",
    ]
    for line in lines:
        click.echo(line)


class Feeder:
    """Plays the platform: sends solutions, forwards successful evaluations to the scorer."""

    def __init__(
        self,
        *,
        clients: AwsClients,
        store: Store,
        table: str,
        evaluator_url: str,
        scorer_url: str,
        match_id: str,
    ) -> None:
        self._clients = clients
        self._store = store
        self._table = table
        self._evaluator = evaluator_url
        self._scorer = scorer_url
        self._match = match_id
        self._rng = random.Random(7)
        self._trials = dict.fromkeys(PARTICIPANTS, 0)
        self._pending: list[TrialRef] = []
        self._sent = 0

    def seed_dead_letter(self) -> None:
        """One trial whose message was dead-lettered (as if its image had been broken then).

        Its participant has no other trial, so that the scorer of the others
        never waits for it.
        """
        ref = TrialRef(self._match, DEAD_LETTER_PARTICIPANT, "0001")
        put_solution(self._clients.dynamodb, self._table, ref, [0.5, 0.5])
        name = self._evaluator.rsplit("/", 1)[-1]
        dlq = self._clients.sqs.get_queue_url(QueueName=dead_letter_queue_name(name))
        self._clients.sqs.send_message(QueueUrl=dlq["QueueUrl"], MessageBody=job_body(ref))
        self._pending.append(ref)

    def tick(self) -> None:
        """Forward what was evaluated since, then submit one more solution."""
        try:
            self._forward()
            ref = self._solution()
            send_job(self._clients.sqs, self._evaluator, ref)
            self._pending.append(ref)
        except Exception as exc:  # the demo must go on; the runners report their own trouble
            log.warning("demo feeder: %s", exc)

    def _solution(self) -> TrialRef:
        self._sent += 1
        participant = PARTICIPANTS[self._sent % len(PARTICIPANTS)]
        self._trials[participant] += 1
        ref = TrialRef(self._match, participant, f"{self._trials[participant]:04d}")
        # Every fifth solution is malformed on purpose, to show a Failed evaluation.
        variable: Any = (
            "not a vector"
            if self._sent % 5 == 0
            else [round(self._rng.uniform(-2, 2), 3) for _ in range(2)]
        )
        put_solution(self._clients.dynamodb, self._table, ref, variable)
        return ref

    def _forward(self) -> None:
        waiting = []
        for ref in self._pending:
            if self._store.get_evaluation(ref) is not None:
                send_job(self._clients.sqs, self._scorer, ref)
            else:
                waiting.append(ref)
        # A failed evaluation is never scored: keep only the recent ones waiting.
        self._pending = waiting[-20:]
