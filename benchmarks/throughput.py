"""Jobs per second of the runner against the floor Docker's own CLI sets, in one run.

For M jobs of two workloads (a trivial image: container start-up dominates;
an image that waits one second: the container's work dominates) it measures

- a bare loop of ``docker run --rm -i IMAGE`` fed the same stdin, sequential
  and with 4 in parallel (``xargs -P4``);
- the real runner (``opthub-runner evaluator`` as a subprocess, on a moto
  server) with ``prestart: true`` and each ``--workers`` value, and with
  ``prestart: false`` and one worker, at steady state: from the first
  container start (the earliest ``StartedAt``) to the last result written
  (the latest ``CreatedAt``), so process start-up is not counted;
- the pickup latency of an idle runner (message sent -> its ``StartedAt``);
- optionally (``--memory``), the runner's resident memory after 200 and
  2,000 jobs, feeding jobs just ahead of it and deleting finished items
  (moto's TransactWriteItems copies the whole table: a growing table would
  measure moto, not us).

With ``--docker-host`` (for example the second daemon of
``scripts/second-dockerd.sh``) and ``--runtime crun`` the same is measured
on that daemon with that runtime. Workers above 1 use the ``workers`` key when
this version has it, else that many runner processes sharing the queue.

Run (from the repository root, after scripts/setup.sh):

    .venv/bin/python -m benchmarks.throughput --jobs 40
    .venv/bin/python -m benchmarks.throughput --jobs 40 --docker-host \\
        unix:///run/opthub-bench/docker.sock --runtime crun
    .venv/bin/python -m benchmarks.throughput --jobs 40 --memory

Figures depend on the machine and its load; compare within one run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import yaml

from opthub_runner_admin.config import Config
from opthub_runner_admin.demo.images import build_busybox_image
from opthub_runner_admin.demo.stack import (
    MotoServer,
    create_queue,
    create_table,
    job_body,
    put_solution,
)
from opthub_runner_admin.model import TrialRef

TRIVIAL = ("opthub-bench/trivial:latest", "IFS= read -r line\necho '{\"objective\": 1}'\n")
SLEEPY = ("opthub-bench/sleep1:latest", "IFS= read -r line\nsleep 1\necho '{\"objective\": 1}'\n")
STDIN = "[1.0, 2.0]\n"
TABLE = "opthub-bench"
PARTICIPANT = "p-bench"


@dataclasses.dataclass
class Target:
    docker_host: str | None
    runtime: str | None

    def docker_cli(self) -> list[str]:
        return ["docker", *(["-H", self.docker_host] if self.docker_host else [])]

    def run_args(self) -> list[str]:
        return ["run", "--rm", "-i", *(["--runtime", self.runtime] if self.runtime else [])]

    def env(self) -> dict[str, str]:
        return {**os.environ, **({"DOCKER_HOST": self.docker_host} if self.docker_host else {})}


def bare_sequential(target: Target, image: str, jobs: int) -> float:
    """Jobs per second of ``docker run --rm -i`` one after the other."""
    command = [*target.docker_cli(), *target.run_args(), image]
    began = time.monotonic()
    for _ in range(jobs):
        subprocess.run(command, input=STDIN.encode(), stdout=subprocess.DEVNULL, check=True)
    return jobs / (time.monotonic() - began)


def bare_parallel(target: Target, image: str, jobs: int, parallel: int = 4) -> float:
    """Jobs per second of ``docker run --rm -i`` with ``xargs -P``."""
    run = shlex.join([*target.docker_cli(), *target.run_args(), image])
    script = f"printf %s {shlex.quote(STDIN)} | {run} >/dev/null"
    began = time.monotonic()
    subprocess.run(
        ["xargs", f"-P{parallel}", "-I{}", "sh", "-c", script],
        input="\n".join(str(i) for i in range(jobs)).encode(),
        check=True,
    )
    return jobs / (time.monotonic() - began)


class Stack:
    """A moto server with the table and a queue, and the platform's side of it."""

    def __init__(self, server: MotoServer, workdir: Path) -> None:
        self.server = server
        self.clients = server.clients()
        self.workdir = workdir
        create_table(self.clients.dynamodb, TABLE)
        self.queue_url = ""
        self.match_id = ""

    def new_round(self, image: str) -> None:
        """A fresh queue and match for one measurement."""
        self.queue_url = create_queue(self.clients.sqs, f"bench-{uuid.uuid4().hex[:8]}")
        self.match_id = str(uuid.uuid4())
        matches = {
            self.match_id: {
                "problem": {"image": image, "environment": {}},
                "indicator": {"image": image, "environment": {}},
            }
        }
        (self.workdir / "matches.yml").write_text(yaml.safe_dump(matches))

    def submit(self, first: int, count: int) -> None:
        for n in range(first, first + count):
            ref = TrialRef(self.match_id, PARTICIPANT, str(n))
            put_solution(self.clients.dynamodb, TABLE, ref, [1.0, 2.0])
            self.clients.sqs.send_message(QueueUrl=self.queue_url, MessageBody=job_body(ref))

    def results(self) -> list[dict[str, Any]]:
        pages = self.clients.dynamodb.get_paginator("query").paginate(
            TableName=TABLE,
            KeyConditionExpression="ID = :id AND begins_with(Trial, :s)",
            ExpressionAttributeValues={
                ":id": {"S": f"Evaluations#Match#{self.match_id}#{PARTICIPANT}"},
                ":s": {"S": "Success#"},
            },
        )
        return [item for page in pages for item in page["Items"]]

    def delete_results(self, items: Sequence[dict[str, Any]]) -> None:
        """Drop finished trials (result, flag, solution) so the table stays small."""
        for item in items:
            trial = item["TrialNo"]["S"]
            keys = [
                {"ID": item["ID"], "Trial": item["Trial"]},
                {"ID": item["ID"], "Trial": {"S": trial}},
                {
                    "ID": {"S": f"Solutions#Match#{self.match_id}#{PARTICIPANT}"},
                    "Trial": {"S": trial},
                },
            ]
            for key in keys:
                self.clients.dynamodb.delete_item(TableName=TABLE, Key=key)

    def config(self, target: Target, workers: int, *, prestart: bool = True) -> Path:
        settings: dict[str, Any] = {
            "endpoint_url": self.server.endpoint_url,
            "region_name": "ap-northeast-1",
            "access_key_id": "testing",
            "secret_access_key": "testing",
            "table_name": TABLE,
            "evaluator_queue_url": self.queue_url,
            "matches_file": "matches.yml",
            "interval": 1,
            "timeout": 60,
            "log_level": "INFO",  # the "ready" line tells when a runner takes jobs
            "prestart": prestart,
        }
        if target.runtime:
            settings["runtime"] = target.runtime
        if workers > 1 and _has_workers_key():
            settings["workers"] = workers
        path = self.workdir / "config.yml"
        path.write_text(yaml.safe_dump(settings))
        return path


def _has_workers_key() -> bool:
    return "workers" in {f.name for f in dataclasses.fields(Config)}


@contextlib.contextmanager
def runners(config: Path, target: Target, workers: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The runner (or ``workers`` runners when there is no ``workers`` key), stopped on exit."""
    count = 1 if workers == 1 or _has_workers_key() else workers
    executable = Path(sys.executable).with_name("opthub-runner")
    log = (config.parent / "runner.log").open("wb")  # one round at a time
    processes = [
        subprocess.Popen(
            [str(executable), "evaluator", "--config", str(config)],
            env=target.env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        for _ in range(count)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


#: Seconds between looks at the results. Each look is a query the moto server answers on
#: the same 2 cores as the runner; it ends no measured span (those are the items' own
#: timestamps), so looking often only takes CPU from the runner that the bare loop keeps.
RESULTS_POLL = 1.0


def _wait_for(stack: Stack, count: int, processes: Sequence[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + 60 + count * 5
    while len(stack.results()) < count:
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            raise RuntimeError(
                f"the runner did not finish {count} jobs; its log:\n"
                + (stack.workdir / "runner.log").read_text(errors="replace")[-3000:]
            )
        time.sleep(RESULTS_POLL)


def _wait_until_ready(stack: Stack, processes: Sequence[subprocess.Popen[bytes]]) -> None:
    """Until every runner process logged that it is ready (so start-up skew is not measured)."""
    log = stack.workdir / "runner.log"
    deadline = time.monotonic() + 120
    while log.read_text(errors="replace").count(" ready on ") < len(processes):
        if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
            raise RuntimeError(f"the runners did not start; their log:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def runner_steady(
    stack: Stack, target: Target, image: str, jobs: int, workers: int, *, prestart: bool = True
) -> float:
    """Jobs per second of the runner from the first container start to the last result."""
    stack.new_round(image)
    config = stack.config(target, workers, prestart=prestart)
    with runners(config, target, workers) as processes:
        _wait_until_ready(stack, processes)
        stack.submit(1, jobs)
        _wait_for(stack, jobs, processes)
    items = stack.results()
    # The next measurement starts on an empty table: moto's TransactWriteItems copies
    # the whole table, so the items of earlier rounds would slow the later ones.
    stack.delete_results(items)
    first = min(_moment(item["StartedAt"]["S"]) for item in items)
    last = max(_moment(item["CreatedAt"]["S"]) for item in items)
    return jobs / (last - first)


def pickup_latency(
    stack: Stack, target: Target, image: str, *, prestart: bool, samples: int = 5
) -> float:
    """Median seconds from sending a message to an idle runner to its job's start.

    The job's start (``StartedAt``) is its container's start, or with
    ``prestart`` the moment its input reaches the container started ahead.
    """
    stack.new_round(image)
    latencies = []
    config = stack.config(target, 1, prestart=prestart)
    with runners(config, target, 1) as processes:
        stack.submit(1, 1)  # warm up: process start, first container
        _wait_for(stack, 1, processes)
        for n in range(2, samples + 2):
            time.sleep(2.5)  # idle: the runner is in a long poll
            sent = time.time()
            stack.submit(n, 1)
            _wait_for(stack, n, processes)
            item = next(i for i in stack.results() if i["TrialNo"]["S"] == str(n))
            latencies.append(_moment(item["StartedAt"]["S"]) - sent)
    stack.delete_results(stack.results())
    return statistics.median(latencies)


def resident_memory(stack: Stack, target: Target, image: str, marks: Sequence[int]) -> list[int]:
    """The runner's RSS (kB) after each number of jobs in ``marks``."""
    stack.new_round(image)
    found: list[int] = []
    submitted = done = 0
    with runners(stack.config(target, 1), target, 1) as processes:
        pid = processes[0].pid
        while len(found) < len(marks):
            if submitted - done < 3:
                stack.submit(submitted + 1, 3)
                submitted += 3
            items = stack.results()
            if items:
                stack.delete_results(items)
                done += len(items)
            if done >= marks[len(found)]:
                found.append(_rss_kb(pid))
                print(f"  RSS after {done} jobs: {found[-1] / 1024:.1f} MiB", flush=True)
            if processes[0].poll() is not None:
                raise RuntimeError("the runner exited")
            time.sleep(0.05)
    return found


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def measure_throughput(
    stack: Stack, target: Target, args: argparse.Namespace, figures: dict[str, float]
) -> None:
    """Bare loops and the runner, for both workloads; figures in jobs per second."""
    for label, (image, _), jobs in (
        ("trivial", TRIVIAL, args.jobs),
        ("sleep1", SLEEPY, args.sleepy_jobs),
    ):
        figures[f"{label} bare seq"] = bare_sequential(target, image, jobs)
        figures[f"{label} bare P4"] = bare_parallel(target, image, jobs)
        figures[f"{label} runner w1 no prestart"] = runner_steady(
            stack, target, image, jobs, 1, prestart=False
        )
        for workers in args.workers:
            figures[f"{label} runner w{workers}"] = runner_steady(
                stack, target, image, jobs, workers
            )
        for name in [k for k in figures if k.startswith(label)]:
            print(f"  {name:30s} {figures[name]:6.2f} jobs/s", flush=True)


def print_ratios(figures: dict[str, float], workers_list: Sequence[int]) -> None:
    print("ratios:")
    for label in ("trivial", "sleep1"):
        cold = figures[f"{label} runner w1 no prestart"] / figures[f"{label} bare seq"]
        print(f"  {label} runner w1 without prestart / bare seq: {cold:.2f}x")
        for workers in workers_list:
            runner = figures[f"{label} runner w{workers}"]
            base = "seq" if workers == 1 else "P4"
            ratio = runner / figures[f"{label} bare {base}"]
            print(f"  {label} runner w{workers} / bare {base}: {ratio:.2f}x")
        if len(workers_list) > 1:
            hi, lo = max(workers_list), min(workers_list)
            print(
                f"  {label} runner w{hi} / w{lo}: "
                f"{figures[f'{label} runner w{hi}'] / figures[f'{label} runner w{lo}']:.2f}x"
            )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40, help="jobs per measurement (M)")
    parser.add_argument(
        "--sleepy-jobs", type=int, help="jobs of the 1 s image (default: as --jobs)"
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    parser.add_argument(
        "--docker-host", help="another daemon, e.g. unix:///run/opthub-bench/docker.sock"
    )
    parser.add_argument("--runtime", help="OCI runtime for both the bare loop and the runner")
    parser.add_argument("--memory", action="store_true", help="also RSS after 200 and 2,000 jobs")
    parser.add_argument("--memory-marks", type=int, nargs="+", default=[200, 2000])
    parser.add_argument(
        "--memory-only", action="store_true", help="only the memory figure (implies --memory)"
    )
    args = parser.parse_args(argv)
    if args.sleepy_jobs is None:
        # The same M for both: with few jobs a round of four, its cold first
        # containers and its last stragglers weigh on the figure.
        args.sleepy_jobs = args.jobs
    target = Target(args.docker_host, args.runtime)
    client = (
        docker.DockerClient(base_url=args.docker_host) if args.docker_host else docker.from_env()
    )
    for tag, script in (TRIVIAL, SLEEPY):
        build_busybox_image(client, tag, script)
    where = f"{args.docker_host or 'default daemon'}, runtime {args.runtime or 'default'}"
    print(
        f"throughput on {where}; workers={args.workers}; "
        f"workers key {'present' if _has_workers_key() else 'absent: N runner processes'}"
    )
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="opthub-bench-") as tmp, MotoServer() as server:
        stack = Stack(server, Path(tmp))
        if not args.memory_only:
            measure_throughput(stack, target, args, figures)
            for prestart in (False, True):
                latency = pickup_latency(stack, target, TRIVIAL[0], prestart=prestart)
                print(
                    f"  pickup latency, idle runner, prestart {str(prestart).lower()}"
                    f" (median of 5): {latency * 1000:.0f} ms"
                )
        if args.memory or args.memory_only:
            rss = resident_memory(stack, target, TRIVIAL[0], args.memory_marks)
            print(
                f"  RSS growth {args.memory_marks[0]} -> {args.memory_marks[-1]} jobs: "
                f"{(rss[-1] / rss[0] - 1) * 100:+.1f}%"
            )
    if figures:
        print_ratios(figures, args.workers)
    print(
        "reproduce: .venv/bin/python -m benchmarks.throughput "
        + shlex.join(sys.argv[1:] if argv is None else list(argv))
    )


if __name__ == "__main__":
    main()
