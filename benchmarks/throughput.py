"""Jobs per second of the runner, with its DEFAULT configuration, against Docker's own CLI.

All in one run, each figure beside the bare loop measured in the same run:

- trivial image (container start-up dominates), M jobs: the runner with one
  worker against a bare sequential ``docker run --rm -i IMAGE`` loop fed the
  same stdin, and with four workers against the same loop under ``xargs -P4``;
- one-second image, M jobs: the runner with four workers against one;
- three matches whose jobs alternate (round robin), four workers, against
  one match; with the containers Docker created for them (``docker events``
  of the runner's pid label): what starting containers ahead wasted;
- ``network: none`` against the default bridge, one worker (and the bare
  loop with ``--network none``);
- the pickup latency of an idle runner (message sent -> its ``StartedAt``);
- optionally (``--memory``), the runner's own resident memory (VmRSS of its
  process, not moto's) at ``workers: 4`` after 200 and 2,000 jobs, feeding
  jobs just ahead of it and deleting finished items (moto's
  TransactWriteItems copies the whole table: a growing table would measure
  moto, not us).

The runner is ``opthub-runner evaluator`` as a subprocess on a moto server,
measured at steady state: from the first container start (the earliest
``StartedAt``) to the last result written (the latest ``CreatedAt``), so
process start-up is not counted. Its configuration sets only what it must
(endpoint, table, queue, matches file) and ``workers``.

With ``--docker-host`` (for example the second daemon of
``scripts/second-dockerd.sh``) and ``--runtime crun`` the same is measured
on that daemon with that runtime.

Run (from the repository root, after scripts/setup.sh):

    .venv/bin/python -m benchmarks.throughput
    .venv/bin/python -m benchmarks.throughput --memory            # + RSS after 200, 2,000 jobs
    .venv/bin/python -m benchmarks.throughput --memory-only --memory-marks 200 600

Every pair is measured ``--repeat`` times (3 by default), the rounds interleaved,
and the median ratio is reported with its spread. Figures depend on the machine
and its load (printed first and last); compare within one run.
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

from opthub_runner_admin.demo.images import build_busybox_image
from opthub_runner_admin.demo.stack import (
    MotoServer,
    create_queue,
    create_table,
    job_body,
    put_solution,
)
from opthub_runner_admin.executor.docker.reaping import LABEL_PID, LABEL_RUNNER
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


def bare_sequential(target: Target, image: str, jobs: int, *options: str) -> float:
    """Jobs per second of ``docker run --rm -i`` one after the other."""
    command = [*target.docker_cli(), *target.run_args(), *options, image]
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
        self.match_ids: list[str] = []

    def new_round(self, image: str, matches: int = 1) -> None:
        """A fresh queue and ``matches`` matches (one image, environments apart)."""
        self.queue_url = create_queue(self.clients.sqs, f"bench-{uuid.uuid4().hex[:8]}")
        self.match_ids = [str(uuid.uuid4()) for _ in range(matches)]
        self.match_id = self.match_ids[0]
        entries = {
            match_id: {
                "problem": {"image": image, "environment": {"MATCH": str(n)}},
                "indicator": {"image": image, "environment": {}},
            }
            for n, match_id in enumerate(self.match_ids)
        }
        (self.workdir / "matches.yml").write_text(yaml.safe_dump(entries))

    def submit(self, first: int, count: int) -> None:
        """Trials ``first``.. of the matches in turn (round robin)."""
        for n in range(first, first + count):
            match_id = self.match_ids[n % len(self.match_ids)]
            ref = TrialRef(match_id, PARTICIPANT, str(n))
            put_solution(self.clients.dynamodb, TABLE, ref, [1.0, 2.0])
            self.clients.sqs.send_message(QueueUrl=self.queue_url, MessageBody=job_body(ref))

    def results(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        for match_id in self.match_ids:
            pages = self.clients.dynamodb.get_paginator("query").paginate(
                TableName=TABLE,
                KeyConditionExpression="ID = :id AND begins_with(Trial, :s)",
                ExpressionAttributeValues={
                    ":id": {"S": f"Evaluations#Match#{match_id}#{PARTICIPANT}"},
                    ":s": {"S": "Success#"},
                },
            )
            found += [item for page in pages for item in page["Items"]]
        return found

    def delete_results(self, items: Sequence[dict[str, Any]]) -> None:
        """Drop finished trials (result, flag, solution) so the table stays small."""
        for item in items:
            trial = item["TrialNo"]["S"]
            keys = [
                {"ID": item["ID"], "Trial": item["Trial"]},
                {"ID": item["ID"], "Trial": {"S": trial}},
                {
                    "ID": {"S": item["ID"]["S"].replace("Evaluations#", "Solutions#", 1)},
                    "Trial": {"S": trial},
                },
            ]
            for key in keys:
                self.clients.dynamodb.delete_item(TableName=TABLE, Key=key)

    def config(self, target: Target, **extra: Any) -> Path:
        """The runner's configuration: defaults but for what it must know, and ``extra``."""
        settings: dict[str, Any] = {
            "endpoint_url": self.server.endpoint_url,
            "region_name": "ap-northeast-1",
            "access_key_id": "testing",
            "secret_access_key": "testing",
            "table_name": TABLE,
            "evaluator_queue_url": self.queue_url,
            "matches_file": "matches.yml",
            "log_level": "INFO",  # the "ready" line tells when a runner takes jobs
            **extra,
        }
        if target.runtime:
            settings["runtime"] = target.runtime
        path = self.workdir / "config.yml"
        path.write_text(yaml.safe_dump(settings))
        return path


@contextlib.contextmanager
def runners(config: Path, target: Target) -> Iterator[subprocess.Popen[bytes]]:
    """The runner process, stopped on exit."""
    executable = Path(sys.executable).with_name("opthub-runner")
    log = (config.parent / "runner.log").open("wb")  # one round at a time
    process = subprocess.Popen(
        [str(executable), "evaluator", "--config", str(config)],
        env=target.env(),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
    )
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


#: Seconds between looks at the results. Each look is a query the moto server answers on
#: the same 2 cores as the runner; it ends no measured span (those are the items' own
#: timestamps), so looking often only takes CPU from the runner that the bare loop keeps.
RESULTS_POLL = 1.0


def _wait_for(stack: Stack, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60 + count * 5
    while len(stack.results()) < count:
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(
                f"the runner did not finish {count} jobs; its log:\n"
                + (stack.workdir / "runner.log").read_text(errors="replace")[-3000:]
            )
        time.sleep(RESULTS_POLL)


def _wait_until_ready(stack: Stack, process: subprocess.Popen[bytes]) -> None:
    """Until the runner logged that it is ready (so its start-up is not measured)."""
    log = stack.workdir / "runner.log"
    deadline = time.monotonic() + 120
    while " ready on " not in log.read_text(errors="replace"):
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError(f"the runners did not start; their log:\n{log.read_text()[-3000:]}")
        time.sleep(0.1)


def _moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclasses.dataclass
class Round:
    """One measurement of the runner."""

    jobs_per_second: float
    #: Containers the runner's Docker created (``docker events`` of its pid label).
    containers: int


def runner_steady(
    stack: Stack,
    target: Target,
    image: str,
    jobs: int,
    workers: int,
    *,
    matches: int = 1,
    **extra: Any,
) -> Round:
    """Jobs per second of the runner from the first container start to the last result."""
    stack.new_round(image, matches)
    config = stack.config(target, **({"workers": workers} if workers > 1 else {}), **extra)
    with _container_creations(target) as creations, runners(config, target) as process:
        _wait_until_ready(stack, process)
        stack.submit(1, jobs)
        _wait_for(stack, jobs, process)
    containers = creations.count(str(process.pid))
    items = stack.results()
    # The next measurement starts on an empty table: moto's TransactWriteItems copies
    # the whole table, so the items of earlier rounds would slow the later ones.
    stack.delete_results(items)
    first = min(_moment(item["StartedAt"]["S"]) for item in items)
    last = max(_moment(item["CreatedAt"]["S"]) for item in items)
    return Round(jobs / (last - first), containers)


@contextlib.contextmanager
def _container_creations(target: Target) -> Iterator[list[str]]:
    """The runner pids of the containers created meanwhile, as ``docker events`` reports them.

    Listened to live: the daemon keeps only its last 256 events, fewer than a
    busy host makes in one round.
    """
    pids: list[str] = []
    listener = subprocess.Popen(
        [
            *target.docker_cli(),
            "events",
            "--filter",
            "type=container",
            "--filter",
            "event=create",
            "--filter",
            f"label={LABEL_RUNNER}=1",
            "--format",
            f'{{{{index .Actor.Attributes "{LABEL_PID}"}}}}',
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield pids
    finally:
        time.sleep(1)  # the last events on their way
        listener.terminate()
        out, _ = listener.communicate(timeout=30)
        pids += out.split()


def pickup_latency(stack: Stack, target: Target, image: str, *, samples: int = 5) -> float:
    """Median seconds from sending a message to an idle runner to its job's start.

    The job's start (``StartedAt``) is the moment its input reaches its
    container (started ahead, by default).
    """
    stack.new_round(image)
    latencies = []
    config = stack.config(target)
    with runners(config, target) as process:
        stack.submit(1, 1)  # warm up: process start, first container
        _wait_for(stack, 1, process)
        for n in range(2, samples + 2):
            time.sleep(2.5)  # idle: the runner is in a long poll
            sent = time.time()
            stack.submit(n, 1)
            _wait_for(stack, n, process)
            item = next(i for i in stack.results() if i["TrialNo"]["S"] == str(n))
            latencies.append(_moment(item["StartedAt"]["S"]) - sent)
    stack.delete_results(stack.results())
    return statistics.median(latencies)


def resident_memory(
    stack: Stack, target: Target, image: str, marks: Sequence[int], workers: int
) -> list[int]:
    """The runner's own RSS (kB, its process's VmRSS) after each number of jobs in ``marks``."""
    stack.new_round(image)
    found: list[int] = []
    submitted = done = 0
    ahead = 2 * workers  # just ahead: the queue never runs dry, moto's tables stay small
    with runners(stack.config(target, workers=workers), target) as process:
        while len(found) < len(marks):
            if submitted - done < ahead:
                stack.submit(submitted + 1, ahead)
                submitted += ahead
            items = stack.results()
            if items:
                stack.delete_results(items)
                done += len(items)
            if done >= marks[len(found)]:
                found.append(_rss_kb(process.pid))
                print(f"  RSS after {done} jobs: {found[-1] / 1024:.1f} MiB", flush=True)
            if process.poll() is not None:
                raise RuntimeError("the runner exited")
            time.sleep(0.05)
    return found


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


@dataclasses.dataclass
class Pair:
    """One figure and its base, measured ``repeat`` times side by side."""

    name: str
    base_name: str
    target: str
    values: list[float] = dataclasses.field(default_factory=list)
    bases: list[float] = dataclasses.field(default_factory=list)

    def add(self, value: float, base: float) -> None:
        self.values.append(value)
        self.bases.append(base)

    def last(self) -> str:
        """The latest round alone."""
        value, base = self.values[-1], self.bases[-1]
        return f"    {self.name}: {value:.2f} vs {base:.2f} jobs/s = {value / base:.2f}x"

    def line(self) -> str:
        ratios = [value / base for value, base in zip(self.values, self.bases, strict=True)]
        spread = (
            f"; {len(ratios)} pairs from {min(ratios):.2f}x to {max(ratios):.2f}x"
            if len(ratios) > 1
            else ""
        )
        return (
            f"  {self.name}: {statistics.median(self.values):.2f} jobs/s vs {self.base_name}:"
            f" {statistics.median(self.bases):.2f} jobs/s = {statistics.median(ratios):.2f}x"
            f" (median{spread}; target {self.target})"
        )


def measure(stack: Stack, target: Target, args: argparse.Namespace) -> list[str]:
    """Every figure of the module docstring, each beside its base; returns the report lines.

    Each pair is measured ``args.repeat`` times, the rounds interleaved, and
    the median ratio is reported with its spread: on a busy 2-core host one
    pair alone moves by 10%.
    """
    trivial, sleepy, jobs = TRIVIAL[0], SLEEPY[0], args.jobs
    one = Pair("trivial, runner workers 1", "bare seq loop", ">= 1.25x")
    four = Pair("trivial, runner workers 4", "bare xargs -P4", ">= 1.0x")
    slow = Pair(f"1 s image ({args.sleepy_jobs} jobs), workers 4", "workers 1", ">= 3.6x")
    mixed = Pair("trivial, 3 matches round robin, workers 4", "one match", ">= 0.95x")
    none = Pair("trivial, network none, workers 1", "bridge", "reported")
    bare_none = Pair("bare seq loop --network none", "bridge", "reported")
    created: dict[str, list[int]] = {"one match": [], "3 matches round robin": []}
    for round_ in range(1, args.repeat + 1):
        print(f"round {round_} of {args.repeat} ({_load()})", flush=True)
        seq = bare_sequential(target, trivial, jobs)
        w1 = runner_steady(stack, target, trivial, jobs, 1)
        one.add(w1.jobs_per_second, seq)
        p4 = bare_parallel(target, trivial, jobs)
        w4 = runner_steady(stack, target, trivial, jobs, 4)
        four.add(w4.jobs_per_second, p4)
        s1 = runner_steady(stack, target, sleepy, args.sleepy_jobs, 1)
        s4 = runner_steady(stack, target, sleepy, args.sleepy_jobs, 4)
        slow.add(s4.jobs_per_second, s1.jobs_per_second)
        rr = runner_steady(stack, target, trivial, jobs, 4, matches=3)
        mixed.add(rr.jobs_per_second, w4.jobs_per_second)
        created["one match"].append(w4.containers)
        created["3 matches round robin"].append(rr.containers)
        isolated = runner_steady(stack, target, trivial, jobs, 1, network="none")
        none.add(isolated.jobs_per_second, w1.jobs_per_second)
        bare_none.add(bare_sequential(target, trivial, jobs, "--network", "none"), seq)
        for pair in (one, four, slow, mixed, none, bare_none):
            print(pair.last(), flush=True)
    lines = [pair.line() for pair in (one, four, slow, mixed, none, bare_none)]
    for name, counts in created.items():
        lines.append(
            f"  containers created, {name}, workers 4: {statistics.median(counts):.0f}"
            f" for {jobs} jobs (median; {counts})"
        )
    latency = pickup_latency(stack, target, trivial)
    lines.append(
        f"  pickup latency, idle runner (median of 5): {latency * 1000:.0f} ms (target < 100 ms)"
    )
    return lines


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} CPUs"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=40, help="jobs per measurement (M)")
    parser.add_argument("--sleepy-jobs", type=int, default=40, help="jobs of the 1 s image")
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of every pair, interleaved (median kept)"
    )
    parser.add_argument(
        "--docker-host", help="another daemon, e.g. unix:///run/opthub-bench/docker.sock"
    )
    parser.add_argument("--runtime", help="OCI runtime for both the bare loop and the runner")
    parser.add_argument("--memory", action="store_true", help="also RSS after 200 and 2,000 jobs")
    parser.add_argument("--memory-marks", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--memory-workers", type=int, default=4)
    parser.add_argument(
        "--memory-only", action="store_true", help="only the memory figure (implies --memory)"
    )
    args = parser.parse_args(argv)
    target = Target(args.docker_host, args.runtime)
    client = (
        docker.DockerClient(base_url=args.docker_host) if args.docker_host else docker.from_env()
    )
    for tag, script in (TRIVIAL, SLEEPY):
        build_busybox_image(client, tag, script)
    where = f"{args.docker_host or 'default daemon'}, runtime {args.runtime or 'default'}"
    print(f"throughput on {where}, the runner's default configuration; {_load()}", flush=True)
    lines: list[str] = []
    with tempfile.TemporaryDirectory(prefix="opthub-bench-") as tmp, MotoServer() as server:
        stack = Stack(server, Path(tmp))
        if not args.memory_only:
            lines += measure(stack, target, args)
        if args.memory or args.memory_only:
            rss = resident_memory(stack, target, TRIVIAL[0], args.memory_marks, args.memory_workers)
            lines.append(
                f"  runner RSS, workers {args.memory_workers}:"
                f" {rss[0] / 1024:.1f} MiB after {args.memory_marks[0]} jobs,"
                f" {rss[-1] / 1024:.1f} MiB after {args.memory_marks[-1]}:"
                f" {(rss[-1] / rss[0] - 1) * 100:+.1f}% (target within 10%)"
            )
    print(f"summary ({_load()} at the end):")
    for line in lines:
        print(line)
    given = shlex.join(sys.argv[1:] if argv is None else list(argv))
    print(f"reproduce: .venv/bin/python -m benchmarks.throughput {given}".rstrip())


if __name__ == "__main__":
    main()
