"""Scale-out: one burst drained by one host's runner, then by two hosts' runners.

Two Docker daemons on this machine stand for two hosts (the second one from
``scripts/second-dockerd.sh``, with its own socket, data root and bridge;
needs root). A burst of ``--trials`` one-second evaluations is sent to one
queue at once; first one runner (``workers`` jobs at once) on the first
daemon drains it, then a fresh burst is drained by one runner on each daemon,
sharing the queue and the table. For each it prints the drain time (first
message sent to last result written), the jobs each host took, and checks
one result per trial. The jobs sleep rather than compute, so the two cores
this machine has do not cap the second host; on real hosts, whose jobs use
their CPUs, the gain is the same as long as the queue, the table and the
platform are not the bottleneck.

    sudo .venv/bin/python -m benchmarks.scale_out --trials 48 --workers 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import docker

from opthub_runner_admin.demo.images import build_busybox_image
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import put_solution, send_job
from opthub_runner_admin.platform_side.emulators import emulator
from opthub_runner_admin.platform_side.runners import RunnerPool, wait_for
from opthub_runner_admin.platform_side.second_daemon import second_dockerd
from opthub_runner_admin.platform_side.stack import AwsStack, scan_results, stack_on

NAP = "IFS= read -r line\nsleep 1\necho '{\"objective\": 1}'\n"
IMAGE = "opthub-bench/scale-out-nap:1"
SECOND_DAEMON_ENV = {
    "OPTHUB_BENCH_STATE": "/run/opthub-bench-scale",
    "OPTHUB_BENCH_DATA": "/var/lib/opthub-bench-scale",
    "OPTHUB_BENCH_BRIDGE": "obs0",
    "OPTHUB_BENCH_SUBNET": "172.31.249.1/24",
}
DEADLINE = 600.0


def _drain(
    aws: AwsStack, workdir: Path, client: docker.DockerClient, hosts: list[str | None], *,
    trials: int, workers: int,
) -> list[str]:  # fmt: skip
    match = str(uuid.uuid4())
    folder = workdir / f"hosts-{len(hosts)}"
    folder.mkdir()
    config = write_config(
        folder, aws, {match: match_entry(IMAGE)}, log_level="INFO", workers=workers
    )
    pool = RunnerPool(folder, client)
    try:
        processes = [
            pool.start("evaluator", config, env={"DOCKER_HOST": h} if h else {}) for h in hosts
        ]
        time.sleep(3)  # the runners are up and polling: the burst is what is measured
        sent = _burst(aws, match, trials)
        wait_for(lambda: len(scan_results(aws, "Evaluation")) >= trials, DEADLINE,
                 f"{trials} results", interval=0.2)  # fmt: skip
        drained = time.monotonic() - sent
        for process in processes:
            process.signal(signal.SIGTERM)
        for process in processes:
            process.wait(60)
        per_trial = Counter(item["TrialNo"] for item in scan_results(aws, "Evaluation"))
        taken = [process.log().count("evaluation Success") for process in processes]
    finally:
        pool.cleanup()
    once = len(per_trial) == trials and set(per_trial.values()) == {1}
    return [
        f"{len(hosts)} host(s), workers {workers}: {trials} one-second jobs drained in"
        f" {drained:.1f} s ({trials / drained:.2f} jobs/s); jobs per host {taken};"
        f" one result per trial: {'yes' if once else 'NO'}"
    ]


def _burst(aws: AwsStack, match: str, trials: int) -> float:
    """Every trial's solution, then every message at once; returns when they were sent."""
    refs = [TrialRef(match, f"p-{n % 8}", f"{n:04d}") for n in range(1, trials + 1)]
    for ref in refs:
        put_solution(aws.clients.dynamodb, aws.table_name, ref, [1])
    sent = time.monotonic()
    for ref in refs:
        send_job(aws.clients.sqs, aws.evaluator_queue_url, ref)
    return sent


@contextlib.contextmanager
def _second_daemon() -> Iterator[str]:
    started = second_dockerd("start", SECOND_DAEMON_ENV)
    if started.returncode != 0:
        raise SystemExit(f"scale_out: the second dockerd did not start: {started.stderr.strip()}")
    try:
        yield started.stdout.strip().splitlines()[-1]
    finally:
        second_dockerd("stop", SECOND_DAEMON_ENV)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=48)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("scale_out: a second Docker daemon needs root", file=sys.stderr)
        return 2
    first = docker.from_env()
    lines: list[str] = []
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory() as scratch:
        second_host = stack.enter_context(_second_daemon())
        second = docker.DockerClient(base_url=second_host)
        for client in (first, second):
            build_busybox_image(client, IMAGE, NAP)
        server = stack.enter_context(emulator("moto").start())
        layouts: list[list[str | None]] = [[None], [None, second_host]]
        for hosts in layouts:
            with stack_on(server) as aws:
                lines += _drain(
                    aws, Path(scratch), first, hosts, trials=args.trials, workers=args.workers
                )
        with contextlib.suppress(docker.errors.APIError):
            first.api.remove_image(IMAGE)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
