"""Jobs per second of the runner, with its DEFAULT configuration, against Docker's own CLI.

All in one run, each figure beside the bare loop measured in the same run:

- trivial image (container start-up dominates), M jobs: the runner with one
  worker against a bare sequential ``docker run --rm -i IMAGE`` loop fed the
  same stdin, and with four workers against the same loop under ``xargs -P4``;
- one-second image, M jobs: the runner with four workers against one;
- the runner with four workers against the ``xargs -P4`` loop whose
  containers are confined as the runner's are by default (``--memory``,
  ``--pids-limit``, ``--cap-drop ALL``, ...): what the confinement costs Docker;
- three matches whose jobs alternate (round robin), four workers, against
  one match; with the containers Docker created for them (``docker events``
  of the runner's pid label): what starting containers ahead wasted;
- ``network: none`` against the default bridge, one worker (and the bare
  loop with ``--network none``);
- where the CPU of a trivial job goes with four workers, in the measured span:
  the machine's busy time a job for the bare ``xargs -P4`` and for the
  runner, and of the runner's, the AWS emulator's and the runner process's;
- the pickup latency of an idle runner (message sent -> its ``StartedAt``);
- what reading each trial's usage costs (``measure_usage``, on by default):
  the runner with one and with four workers against itself with
  ``measure_usage: false``, trivial image, and the runner process's CPU a job
  with four workers either way (``--usage-only``: only these);
- optionally (``--memory``), the runner's own resident memory (VmRSS of its
  process, not the emulator's) at ``workers: 4`` after 200 and 2,000 jobs, feeding
  jobs just ahead of it and deleting finished items (moto's
  TransactWriteItems copies the whole table: a growing table would measure
  moto, not us).

The runner is ``opthub-runner evaluator`` as a subprocess on a local AWS
emulator, measured at steady state: from the first container start (the
earliest ``StartedAt``) to the last result written (the latest
``CreatedAt``), so process start-up is not counted. Its configuration sets
only what it must (endpoint, table, queue, matches file) and ``workers``.

The emulator (``--emulator``) runs on the same cores as the runner and
Docker, where AWS would take none of them. MiniStack is the default because
it takes the least of them: about 6 ms of CPU a trivial job, against about
35 ms for moto, whose share alone is some 10% of a job at four workers on 2
cores. ``--emulator moto`` measures with moto.

With ``--docker-host`` (for example the second daemon of
``scripts/second-dockerd.sh``) and ``--runtime crun`` the same is measured
on that daemon with that runtime.

Run (from the repository root, after scripts/setup.sh):

    .venv/bin/python -m benchmarks.throughput
    .venv/bin/python -m benchmarks.throughput --memory            # + RSS after 200, 2,000 jobs
    .venv/bin/python -m benchmarks.throughput --memory-only --memory-marks 200 600
    .venv/bin/python -m benchmarks.throughput --emulator moto
    .venv/bin/python -m benchmarks.throughput --usage-only --repeat 5  # measure_usage's cost

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
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import yaml

from opthub_runner_admin.demo.images import build_busybox_image
from opthub_runner_admin.executor.docker.reaping import LABEL_PID, LABEL_RUNNER
from opthub_runner_admin.executor.limits import ContainerLimits
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.contract import (
    create_queue,
    create_table,
    job_body,
    put_solution,
)
from opthub_runner_admin.platform_side.emulators import EMULATORS, LocalServer, emulator

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


def bare_parallel(target: Target, image: str, jobs: int, *options: str, parallel: int = 4) -> float:
    """Jobs per second of ``docker run --rm -i`` with ``xargs -P``."""
    run = shlex.join([*target.docker_cli(), *target.run_args(), *options, image])
    script = f"printf %s {shlex.quote(STDIN)} | {run} >/dev/null"
    began = time.monotonic()
    subprocess.run(
        ["xargs", f"-P{parallel}", "-I{}", "sh", "-c", script],
        input="\n".join(str(i) for i in range(jobs)).encode(),
        check=True,
    )
    return jobs / (time.monotonic() - began)


def isolation_flags(limits: ContainerLimits) -> list[str]:
    """The ``docker run`` flags that confine a container as the runner's ``limits`` do.

    The bare loop measured with them shows what the confinement itself costs
    Docker, apart from the runner.
    """
    flags = ["--cap-drop", "ALL", "--network", limits.network]
    flags += ["--log-opt", f"max-size={limits.log_max_size}"]
    flags += ["--log-opt", f"max-file={limits.log_max_files}"]
    if limits.memory is not None:
        swap = limits.memory if limits.memory_swap is None else limits.memory_swap
        flags += ["--memory", str(limits.memory), "--memory-swap", str(swap)]
    if limits.cpus is not None:
        flags += ["--cpus", str(limits.cpus)]
    if limits.pids_limit is not None:
        flags += ["--pids-limit", str(limits.pids_limit)]
    if limits.nofile is not None:
        flags += ["--ulimit", f"nofile={limits.nofile}:{limits.nofile}"]
    if limits.no_new_privileges:
        flags += ["--security-opt", "no-new-privileges"]
    if limits.read_only:
        flags += ["--read-only", "--tmpfs", f"/tmp:rw,size={limits.tmpfs_size},mode=1777"]
    if limits.user is not None:
        flags += ["--user", limits.user]
    return flags


class Stack:
    """An AWS emulator with the table and a queue, and the platform's side of it."""

    def __init__(self, server: LocalServer, workdir: Path) -> None:
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


#: Seconds between looks at the results. Each look is a query the emulator answers on
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


class CpuMeter:
    """CPU time of the whole machine and of chosen processes, sampled to be read over a span.

    Where a figure is CPU-bound, it says where the CPU of a job went: the
    machine's busy time (``/proc/stat``: every process, Docker's and the
    kernel's included) and that of the AWS emulator and the runner process.
    """

    INTERVAL = 0.1

    def __init__(self) -> None:
        self._pids: dict[str, int] = {}
        self._samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="cpu-meter", daemon=True)

    def __enter__(self) -> CpuMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def watch(self, name: str, pid: int) -> None:
        self._pids[name] = pid

    def _sample(self) -> None:
        while not self._stop.wait(self.INTERVAL):
            seconds = {"machine": _machine_busy()}
            for name, pid in list(self._pids.items()):
                with contextlib.suppress(OSError):
                    seconds[name] = _process_cpu(pid)
            self._samples.append((time.time(), seconds))

    def per_job(self, began: float, ended: float, jobs: int) -> dict[str, float]:
        """Milliseconds of CPU a job, by name, over the samples within [began, ended]."""
        inside = [seconds for moment, seconds in self._samples if began <= moment <= ended]
        if len(inside) < 2:
            return {}
        first, last = inside[0], inside[-1]
        # Scaled from the sampled stretch to the whole span.
        moments = [moment for moment, _ in self._samples if began <= moment <= ended]
        scale = (ended - began) / (moments[-1] - moments[0])
        return {
            name: (last[name] - first[name]) * scale * 1000 / jobs for name in last if name in first
        }


def _machine_busy() -> float:
    fields = [int(field) for field in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _process_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclasses.dataclass
class Round:
    """One measurement of the runner."""

    jobs_per_second: float
    #: Containers the runner's Docker created (``docker events`` of its pid label).
    containers: int
    #: Milliseconds of CPU a job in the measured span, by name (with a ``CpuMeter``).
    cpu: dict[str, float] = dataclasses.field(default_factory=dict)


def runner_steady(
    stack: Stack,
    target: Target,
    image: str,
    jobs: int,
    workers: int,
    *,
    matches: int = 1,
    meter: CpuMeter | None = None,
    **extra: Any,
) -> Round:
    """Jobs per second of the runner from the first container start to the last result."""
    stack.new_round(image, matches)
    config = stack.config(target, **({"workers": workers} if workers > 1 else {}), **extra)
    with _container_creations(target) as creations, runners(config, target) as process:
        if meter is not None:
            meter.watch("runner", process.pid)
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
    cpu = meter.per_job(first, last, jobs) if meter is not None else {}
    return Round(jobs / (last - first), containers, cpu)


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
        return (
            f"    {self.name}: {value:.2f} vs {self.base_name}: {base:.2f} jobs/s"
            f" = {value / base:.2f}x"
        )

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


@dataclasses.dataclass
class Tally:
    """What the rounds measured so far: the pairs, the containers and the CPU a job."""

    jobs: int
    sleepy_jobs: int
    one: Pair = dataclasses.field(
        default_factory=lambda: Pair("trivial, runner workers 1", "bare seq loop", ">= 1.25x")
    )
    four: Pair = dataclasses.field(
        default_factory=lambda: Pair("trivial, runner workers 4", "bare xargs -P4", ">= 1.0x")
    )
    confined: Pair = dataclasses.field(
        default_factory=lambda: Pair(
            "trivial, runner workers 4",
            "bare xargs -P4 confined as the runner's containers",
            "reported",
        )
    )
    slow: Pair = dataclasses.field(init=False)
    mixed: Pair = dataclasses.field(
        default_factory=lambda: Pair(
            "trivial, 3 matches round robin, workers 4", "one match", ">= 0.95x"
        )
    )
    none: Pair = dataclasses.field(
        default_factory=lambda: Pair("trivial, network none, workers 1", "bridge", "reported")
    )
    bare_none: Pair = dataclasses.field(
        default_factory=lambda: Pair("bare seq loop --network none", "bridge", "reported")
    )
    usage_one: Pair = dataclasses.field(
        default_factory=lambda: Pair(
            "trivial, workers 1, usage measured", "measure_usage: false", ">= 0.97x"
        )
    )
    usage_four: Pair = dataclasses.field(
        default_factory=lambda: Pair(
            "trivial, workers 4, usage measured", "measure_usage: false", ">= 0.97x"
        )
    )
    #: Only the pairs of ``measure_usage`` (``--usage-only``).
    usage_only: bool = False
    #: Containers Docker created per round, for one match and for three in turn.
    created: dict[str, list[int]] = dataclasses.field(
        default_factory=lambda: {"one match": [], "3 matches round robin": []}
    )
    #: Milliseconds of CPU a job per round, trivial image with 4 workers, by name.
    cpu: dict[str, list[float]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.slow = Pair(f"1 s image ({self.sleepy_jobs} jobs), workers 4", "workers 1", ">= 3.6x")

    @property
    def pairs(self) -> list[Pair]:
        if self.usage_only:
            return [self.usage_one, self.usage_four]
        return [
            self.one,
            self.four,
            self.confined,
            self.slow,
            self.mixed,
            self.none,
            self.bare_none,
            self.usage_one,
            self.usage_four,
        ]

    def lines(self) -> list[str]:
        lines = [pair.line() for pair in self.pairs]
        lines.append(
            "  the runner process's CPU a job, trivial, 4 workers (median):"
            f" usage measured {self._cpu('runner')} ms, measure_usage: false"
            f" {self._cpu('runner, measure_usage false')} ms"
        )
        if self.usage_only:
            return lines
        for name, counts in self.created.items():
            lines.append(
                f"  containers created, {name}, workers 4: {statistics.median(counts):.0f}"
                f" for {self.jobs} jobs (median; {counts})"
            )
        lines.append(
            "  CPU a job in the span, trivial, 4 workers (median):"
            f" bare xargs -P4: machine {self._cpu('bare machine')} ms;"
            f" runner: machine {self._cpu('machine')} ms, of which the AWS emulator"
            f" {self._cpu('emulator')} ms and the runner process {self._cpu('runner')} ms"
        )
        return lines

    def _cpu(self, name: str) -> str:
        found = self.cpu.get(name)
        return f"{statistics.median(found):.0f}" if found else "?"


def measure(stack: Stack, target: Target, args: argparse.Namespace) -> list[str]:
    """Every figure of the module docstring, each beside its base; returns the report lines.

    Each pair is measured ``args.repeat`` times, the rounds interleaved, and
    the median ratio is reported with its spread: on a busy 2-core host one
    pair alone moves by 10%.
    """
    tally = Tally(jobs=args.jobs, sleepy_jobs=args.sleepy_jobs, usage_only=args.usage_only)
    with CpuMeter() as meter:
        if stack.server.pid is not None:
            meter.watch("emulator", stack.server.pid)
        for round_ in range(1, args.repeat + 1):
            print(f"round {round_} of {args.repeat} ({_load()})", flush=True)
            if args.usage_only:
                _usage_round(stack, target, tally, meter, round_)
            else:
                _round(stack, target, tally, meter)
            for pair in tally.pairs:
                print(pair.last(), flush=True)
    if args.usage_only:
        return tally.lines()
    latency = pickup_latency(stack, target, TRIVIAL[0])
    return [
        *tally.lines(),
        f"  pickup latency, idle runner (median of 5): {latency * 1000:.0f} ms (target < 100 ms)",
    ]


def _round(stack: Stack, target: Target, tally: Tally, meter: CpuMeter) -> None:
    """One round of every pair, each measured once."""
    trivial, sleepy, jobs = TRIVIAL[0], SLEEPY[0], tally.jobs
    seq = bare_sequential(target, trivial, jobs)
    w1 = runner_steady(stack, target, trivial, jobs, 1)
    tally.one.add(w1.jobs_per_second, seq)
    began = time.time()
    p4 = bare_parallel(target, trivial, jobs)
    bare_cpu = meter.per_job(began, time.time(), jobs)
    w4 = runner_steady(stack, target, trivial, jobs, 4, meter=meter)
    tally.four.add(w4.jobs_per_second, p4)
    confined = bare_parallel(target, trivial, jobs, *isolation_flags(ContainerLimits()))
    tally.confined.add(w4.jobs_per_second, confined)
    for name, value in [*w4.cpu.items(), ("bare machine", bare_cpu.get("machine"))]:
        if value is not None:
            tally.cpu.setdefault(name, []).append(value)
    s1 = runner_steady(stack, target, sleepy, tally.sleepy_jobs, 1)
    s4 = runner_steady(stack, target, sleepy, tally.sleepy_jobs, 4)
    tally.slow.add(s4.jobs_per_second, s1.jobs_per_second)
    rr = runner_steady(stack, target, trivial, jobs, 4, matches=3)
    tally.mixed.add(rr.jobs_per_second, w4.jobs_per_second)
    tally.created["one match"].append(w4.containers)
    tally.created["3 matches round robin"].append(rr.containers)
    isolated = runner_steady(stack, target, trivial, jobs, 1, network="none")
    tally.none.add(isolated.jobs_per_second, w1.jobs_per_second)
    tally.bare_none.add(bare_sequential(target, trivial, jobs, "--network", "none"), seq)
    off1 = runner_steady(stack, target, trivial, jobs, 1, measure_usage=False)
    tally.usage_one.add(w1.jobs_per_second, off1.jobs_per_second)
    off4 = _unmeasured_four(stack, target, tally, meter)
    tally.usage_four.add(w4.jobs_per_second, off4.jobs_per_second)


def _unmeasured_four(stack: Stack, target: Target, tally: Tally, meter: CpuMeter) -> Round:
    """Four workers with ``measure_usage: false``; the runner's CPU a job kept apart."""
    off = runner_steady(stack, target, TRIVIAL[0], tally.jobs, 4, meter=meter, measure_usage=False)
    if "runner" in off.cpu:
        tally.cpu.setdefault("runner, measure_usage false", []).append(off.cpu["runner"])
    return off


def _usage_round(stack: Stack, target: Target, tally: Tally, meter: CpuMeter, round_: int) -> None:
    """``measure_usage`` on against off, one and four workers; which goes first alternates."""
    trivial, jobs = TRIVIAL[0], tally.jobs
    for workers, pair in ((1, tally.usage_one), (4, tally.usage_four)):
        runs: dict[bool, Round] = {}
        for measured in (True, False) if round_ % 2 else (False, True):
            if workers == 4 and not measured:
                runs[measured] = _unmeasured_four(stack, target, tally, meter)
                continue
            watched = meter if workers == 4 else None
            runs[measured] = runner_steady(stack, target, trivial, jobs, workers, meter=watched)
            if watched is not None and "runner" in runs[measured].cpu:
                tally.cpu.setdefault("runner", []).append(runs[measured].cpu["runner"])
        pair.add(runs[True].jobs_per_second, runs[False].jobs_per_second)


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
    parser.add_argument(
        "--emulator",
        choices=EMULATORS,
        default="ministack",
        help="the local stand-in for AWS, on the same cores (see the module docstring)",
    )
    parser.add_argument("--memory", action="store_true", help="also RSS after 200 and 2,000 jobs")
    parser.add_argument("--memory-marks", type=int, nargs="+", default=[200, 2000])
    parser.add_argument("--memory-workers", type=int, default=4)
    parser.add_argument(
        "--memory-only", action="store_true", help="only the memory figure (implies --memory)"
    )
    parser.add_argument(
        "--usage-only", action="store_true", help="only measure_usage on against off"
    )
    args = parser.parse_args(argv)
    target = Target(args.docker_host, args.runtime)
    client = (
        docker.DockerClient(base_url=args.docker_host) if args.docker_host else docker.from_env()
    )
    for tag, script in (TRIVIAL, SLEEPY):
        build_busybox_image(client, tag, script)
    where = f"{args.docker_host or 'default daemon'}, runtime {args.runtime or 'default'}"
    print(
        f"throughput on {where}, AWS emulated by {args.emulator},"
        f" the runner's default configuration; {_load()}",
        flush=True,
    )
    lines: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="opthub-bench-") as tmp,
        emulator(args.emulator) as server,
    ):
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
