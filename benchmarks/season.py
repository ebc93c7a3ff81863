"""A season in hours: many jobs through one runner, Docker restarted along the way.

One ``opthub-runner evaluator`` (the default configuration, ``workers: 4``:
containers started ahead, removed in the background) runs ``--jobs`` trivial
jobs on a local AWS emulator, on a second Docker daemon of its own
(``scripts/second-dockerd.sh`` with names no other user picks: never the
machine's own daemon), which is stopped and started again every
``--restart-every`` jobs. Jobs are fed just ahead of the runner and finished
items deleted (moto's TransactWriteItems copies the whole table: a growing
table would measure the emulator, not the runner).

The runner logs in as an administrator would under systemd (the credentials
in its environment) to a Cognito of short tokens (``platform_side/
cognito_standin.py``: access tokens of ``--token-seconds``, which the runner
refreshes at half their life) and asks the fake OptHub API
(``platform_side/opthub_api.py``) for its matches. Every
``--login-ends-every`` jobs every refresh token issued so far ends (as a
Cognito refresh token does once its validity is over): the runner must log in
again by itself, without a Failed result and without an exit.

Every ``--sample-every`` jobs it records, of the runner process alone (not
the emulator's): its resident memory (VmRSS), open files (``/proc/PID/fd``)
and threads; the containers carrying its labels on the daemon; the files in
the daemon's ``containers/`` folder and in the runner's own folders (its
state, cache and config folder). The report gives the RSS's slope over the
first half of the samples and over the second: bounded structures fill in the
first (an hour of finish times, the last 2,000 trials of each match), so a
second half as steep as the first is growth that does not stop. It also
counts the runner's exits nobody asked for (it is started again, as systemd
would, and the exit reported), the Failed results (every solution is valid:
each one is a fault's), and what is left after its clean stop.

Run as root (for the second daemon), from the repository root:

    .venv/bin/python -m benchmarks.season --jobs 20000 --workers 4 --restart-every 2000

Figures depend on the machine and its load; the counts must not.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import yaml

from benchmarks.memory_trace import TRACE_DIR_ENV
from benchmarks.throughput import TRIVIAL, Stack, Target
from opthub_runner_admin.demo.images import build_busybox_image
from opthub_runner_admin.executor.docker.reaping import LABEL_RUNNER
from opthub_runner_admin.platform_side.cognito_standin import REGION, CognitoStandIn
from opthub_runner_admin.platform_side.emulators import EMULATORS, emulator
from opthub_runner_admin.platform_side.opthub_api import FakeMatch, OpthubApiServer
from opthub_runner_admin.platform_side.second_daemon import second_dockerd

#: Seconds a sample waits for the traced runner's snapshot (``--trace-memory``).
SNAPSHOT_PATIENCE = 300.0

#: The season's own second daemon: names no other user of the script picks.
DAEMON_ENV = {
    "OPTHUB_BENCH_STATE": "/run/opthub-season",
    "OPTHUB_BENCH_DATA": "/var/lib/opthub-season",
    "OPTHUB_BENCH_BRIDGE": "osn0",
    "OPTHUB_BENCH_SUBNET": "172.31.244.1/24",
}


@dataclass(frozen=True)
class Sample:
    jobs: int
    seconds: float
    rss_kib: int
    open_files: int
    threads: int
    containers: int
    daemon_files: int
    runner_files: int

    def line(self) -> str:
        return (
            f"  after {self.jobs:>6} jobs ({self.seconds:>6.0f} s): RSS {self.rss_kib / 1024:.1f}"
            f" MiB, {self.open_files} open files, {self.threads} threads,"
            f" {self.containers} containers, {self.daemon_files} entries in the daemon's"
            f" containers/, {self.runner_files} files of the runner"
        )


@dataclass
class Season:
    samples: list[Sample] = field(default_factory=list)
    restarts: int = 0
    exits: list[str] = field(default_factory=list)
    failed: int = 0
    failures: list[str] = field(default_factory=list)
    left_after_stop: int = -1
    #: Stopped (SIGINT, SIGTERM) before every job was done.
    interrupted: bool = False
    #: Times every refresh token was made to end.
    login_ends: int = 0
    #: The stand-in's counts at the end: password logins, refreshes, refused refreshes.
    logins: int = 0
    refreshes: int = 0
    refused_refreshes: int = 0
    #: getMatch requests the API answered, and those without the login's bearer token.
    api_requests: int = 0
    api_without_token: int = 0
    #: The runner's log lines that say it waited for a login (it never should: the
    #: credentials are in its environment).
    login_waits: int = 0


@dataclass
class Login:
    """OptHub's side of the login: Cognito of short tokens, the API, and when the login ends."""

    cognito: CognitoStandIn
    api: OpthubApiServer
    every: int
    next_end: int = 0

    def __post_init__(self) -> None:
        self.next_end = self.every

    def end_when_due(self, done: int, season: Season) -> None:
        if self.every and self.next_end <= done:
            self.cognito.end_refresh_tokens()
            season.login_ends += 1
            print(f"  every refresh token ended after {done} jobs", flush=True)
            self.next_end += self.every

    def count(self, season: Season) -> None:
        season.logins = self.cognito.counts.logins
        season.refreshes = self.cognito.counts.refreshes
        season.refused_refreshes = self.cognito.counts.refused_refreshes
        asked = [r for r in self.api.requests if "getMatch" in r.query]
        season.api_requests = len(asked)
        season.api_without_token = sum(
            1 for r in asked if not (r.authorization or "").startswith("Bearer ")
        )


@contextlib.contextmanager
def opthub_side(
    upstream: str, stack: Stack, image: str, args: argparse.Namespace
) -> Iterator[Login]:
    """Cognito in front of the emulator (SQS and DynamoDB passed on); the API with the matches."""
    cognito = CognitoStandIn(upstream=upstream, token_seconds=args.token_seconds)
    api = OpthubApiServer()
    for n, match_id in enumerate(stack.match_ids):
        api.add_match(
            match_id,
            FakeMatch(problem_image=image, indicator_image=image, problem_public={"MATCH": str(n)}),
        )
    cognito.start()
    api.start()
    try:
        yield Login(cognito=cognito, api=api, every=args.login_ends_every)
    finally:
        api.stop()
        cognito.stop()


def with_login(config: Path, login: Login) -> Path:
    """The benchmark's config, its matches asked of the API with the login instead of a file."""
    settings = yaml.safe_load(config.read_text())
    settings.pop("matches_file", None)
    settings.update(
        endpoint_url=login.cognito.endpoint_url,
        api_url=login.api.url,
        cognito_region=REGION,
        cognito_user_pool_id=login.cognito.user_pool_id,
        cognito_client_id=login.cognito.client_id,
    )
    config.write_text(yaml.safe_dump(settings))
    return config


_WANTED = ("VmRSS", "Threads")


def _proc(pid: int) -> tuple[int, int, int]:
    """(VmRSS in KiB, open files, threads) of process ``pid``."""
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    values = dict(line.split(":", 1) for line in status if ":" in line)
    number = {key: int(value.split()[0]) for key, value in values.items() if key in _WANTED}
    return number["VmRSS"], len(os.listdir(f"/proc/{pid}/fd")), number["Threads"]


def _files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _containers(client: docker.DockerClient) -> int:
    try:
        return len(client.api.containers(all=True, filters={"label": [f"{LABEL_RUNNER}=1"]}))
    except docker.errors.DockerException:
        return -1


def _results(stack: Stack) -> list[dict[str, Any]]:
    """Every result item (Success and Failed) of the round's matches."""
    found: list[dict[str, Any]] = []
    for match_id in stack.match_ids:
        for status in ("Success#", "Failed#"):
            pages = stack.clients.dynamodb.get_paginator("query").paginate(
                TableName="opthub-bench",
                KeyConditionExpression="ID = :id AND begins_with(Trial, :s)",
                ExpressionAttributeValues={
                    ":id": {"S": f"Evaluations#Match#{match_id}#p-bench"},
                    ":s": {"S": status},
                },
            )
            found += [item for page in pages for item in page["Items"]]
    return found


class RunnerProcess:
    """The runner, started again when it exits on its own (as systemd's Restart= would)."""

    def __init__(
        self,
        config: Path,
        target: Target,
        home: Path,
        env: dict[str, str],
        trace: Path | None = None,
    ) -> None:
        self._config = config
        self._target = target
        self._home = home
        self._env = env
        self._trace = trace
        self._starts = 0
        self.process = self._start()

    def _start(self) -> subprocess.Popen[bytes]:
        self._starts += 1
        command = [str(Path(sys.executable).with_name("opthub-runner"))]
        env = {
            **self._target.env(),
            **self._env,
            "HOME": str(self._home),
            "XDG_STATE_HOME": str(self._home / "state"),
            "XDG_CACHE_HOME": str(self._home / "cache"),
        }
        env.pop("XDG_RUNTIME_DIR", None)
        if self._trace is not None:
            command = [sys.executable, "-m", "benchmarks.memory_trace"]
            env[TRACE_DIR_ENV] = str(self._trace)
            env["PYTHONPATH"] = str(Path(__file__).resolve().parent.parent)
        log = (self._config.parent / f"runner-{self._starts}.log").open("wb")
        return subprocess.Popen(
            [*command, "evaluator", "--config", str(self._config)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )

    def ask_for_snapshot(self, jobs: int) -> None:
        """With ``--trace-memory``: the traced runner dumps a snapshot named by ``jobs``.

        Waited for (a snapshot takes seconds): samples closer together than that
        would else overtake each other, and the last would meet the runner's stop.
        """
        if self._trace is None:
            return
        # Renamed into place: the traced runner never reads a request half written.
        (self._trace / "request.new").write_text(str(jobs))
        (self._trace / "request.new").replace(self._trace / "request")
        deadline = time.monotonic() + SNAPSHOT_PATIENCE
        while (self._trace / "request").exists() and time.monotonic() < deadline:
            if self.process.poll() is not None:
                return  # exited: revive() reports it
            time.sleep(0.2)

    def log_tail(self) -> str:
        path = self._config.parent / f"runner-{self._starts}.log"
        lines = path.read_text(errors="replace").strip().splitlines() or [""]
        return next((line for line in reversed(lines) if "Error" in line), lines[-1])

    def revive(self) -> str | None:
        """Start it again if it exited; the exit and its line, or None."""
        code = self.process.poll()
        if code is None:
            return None
        why = f"exit {code}: {self.log_tail()}"
        self.process = self._start()
        return why

    def count_in_logs(self, text: str) -> int:
        """Lines holding ``text`` in the logs of every start so far."""
        logs = (self._config.parent / f"runner-{n}.log" for n in range(1, self._starts + 1))
        return sum(log.read_text(errors="replace").count(text) for log in logs)

    def stop(self) -> int:
        self.process.terminate()
        try:
            return self.process.wait(120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


def _daemon(action: str) -> str:
    env = {key: os.environ.get(key, value) for key, value in DAEMON_ENV.items()}
    done = second_dockerd(action, env)
    if done.returncode != 0:
        raise RuntimeError(f"second-dockerd.sh {action} failed: {done.stderr.strip()}")
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def run_season(args: argparse.Namespace, workdir: Path) -> Season:
    season = Season()
    host = _daemon("start")
    data_root = Path(os.environ.get("OPTHUB_BENCH_DATA", DAEMON_ENV["OPTHUB_BENCH_DATA"]))
    try:
        client = docker.DockerClient(base_url=host)
        build_busybox_image(client, *TRIVIAL)
        target = Target(host, None)
        with emulator(args.emulator) as server:
            stack = Stack(server, workdir)
            stack.new_round(TRIVIAL[0])
            with opthub_side(server.endpoint_url, stack, TRIVIAL[0], args) as login:
                _run_runner(
                    args=args,
                    season=season,
                    stack=stack,
                    login=login,
                    target=target,
                    client=client,
                    data_root=data_root,
                    workdir=workdir,
                )
        client.close()
    finally:
        _daemon("stop")
    return season


def _run_runner(
    *,
    args: argparse.Namespace,
    season: Season,
    stack: Stack,
    login: Login,
    target: Target,
    client: docker.DockerClient,
    data_root: Path,
    workdir: Path,
) -> None:
    config = with_login(
        stack.config(target, workers=args.workers, match_cache_seconds=args.match_cache_seconds),
        login,
    )
    home = workdir / "home"
    home.mkdir()
    credentials = {
        "OPTHUB_USERNAME": login.cognito.username,
        "OPTHUB_PASSWORD": login.cognito.password,
    }
    runner = RunnerProcess(config, target, home, credentials, args.trace_memory)
    try:
        _loop(
            args=args,
            season=season,
            stack=stack,
            runner=runner,
            login=login,
            sample=lambda done, seconds: _sample(
                done=done,
                seconds=seconds,
                runner=runner,
                client=client,
                data_root=data_root,
                home=home,
            ),
        )
    except KeyboardInterrupt:
        season.interrupted = True
    code = runner.stop()
    if code != 0:
        season.exits.append(f"exit {code} at the clean stop: {runner.log_tail()}")
    season.left_after_stop = _containers(client)
    login.count(season)
    season.login_waits = runner.count_in_logs("no new job is taken (")


def _sample(
    *,
    done: int,
    seconds: float,
    runner: RunnerProcess,
    client: docker.DockerClient,
    data_root: Path,
    home: Path,
) -> Sample:
    rss, fds, threads = _proc(runner.process.pid)
    runner.ask_for_snapshot(done)
    return Sample(
        jobs=done,
        seconds=seconds,
        rss_kib=rss,
        open_files=fds,
        threads=threads,
        containers=_containers(client),
        daemon_files=len(os.listdir(data_root / "containers")),
        runner_files=_files(home),
    )


def _loop(
    *,
    args: argparse.Namespace,
    season: Season,
    stack: Stack,
    runner: RunnerProcess,
    login: Login,
    sample: Callable[[int, float], Sample],
) -> None:
    """Feed the jobs just ahead, delete what is done, restart Docker, end the login, sample."""
    began = time.monotonic()
    submitted = done = 0
    ahead = 3 * args.workers
    next_sample, next_restart = args.sample_every, args.restart_every
    while done < args.jobs:
        if submitted - done < ahead and submitted < args.jobs:
            count = min(ahead, args.jobs - submitted)
            stack.submit(submitted + 1, count)
            submitted += count
        items = _results(stack)
        for item in items:
            if item["Trial"]["S"].startswith("Failed#"):
                season.failed += 1
                season.failures.append(str(item.get("ErrorMessage", {}).get("S")))
        if items:
            stack.delete_results(items)
            done += len(items)
        if done >= next_sample:
            season.samples.append(sample(done, time.monotonic() - began))
            print(season.samples[-1].line(), flush=True)
            next_sample += args.sample_every
        if next_restart <= done < args.jobs:
            _daemon("stop")
            time.sleep(args.outage)
            _daemon("start")
            season.restarts += 1
            print(f"  Docker restarted after {done} jobs", flush=True)
            next_restart += args.restart_every
        if done < args.jobs:
            login.end_when_due(done, season)
        exit_ = runner.revive()
        if exit_ is not None:
            season.exits.append(exit_)
            print(f"  runner exit nobody asked for: {exit_}", flush=True)
        time.sleep(0.2)  # each look is queries the emulator answers on the same cores


def rss_slopes(samples: Sequence[Sample]) -> str:
    """The RSS's rise per 1,000 jobs over the first half of ``samples`` and over the second."""
    middle = samples[(len(samples) - 1) // 2]
    halves = ((samples[0], middle), (middle, samples[-1]))
    slopes = [
        (end.rss_kib - start.rss_kib) / 1024 / max(end.jobs - start.jobs, 1) * 1000
        for start, end in halves
    ]
    return (
        f"{slopes[0]:+.2f} MiB from {samples[0].jobs} to {middle.jobs} jobs,"
        f" {slopes[1]:+.2f} MiB from {middle.jobs} to {samples[-1].jobs}"
    )


def report(season: Season, args: argparse.Namespace, given: str) -> list[str]:
    lines = [f"season: {args.jobs} jobs, workers {args.workers}, AWS emulated by {args.emulator}"]
    if season.interrupted:
        done = season.samples[-1].jobs if season.samples else 0
        lines.append(f"  INTERRUPTED: stopped after about {done} jobs (the samples so far)")
    lines += [sample.line() for sample in season.samples]
    if len(season.samples) >= 2:
        first, last = season.samples[0], season.samples[-1]
        growth = (last.rss_kib / first.rss_kib - 1) * 100
        lines.append(
            f"  first to last sample: RSS {growth:+.1f}%, open files {first.open_files} ->"
            f" {last.open_files}, threads {first.threads} -> {last.threads}, containers"
            f" {first.containers} -> {last.containers}, daemon entries {first.daemon_files} ->"
            f" {last.daemon_files}, runner files {first.runner_files} -> {last.runner_files}"
        )
        lines.append(f"  RSS per 1,000 jobs: {rss_slopes(season.samples)}")
        rate = (last.jobs - first.jobs) / max(last.seconds - first.seconds, 1e-9)
        lines.append(f"  jobs/s from the first sample to the last: {rate:.2f}")
    lines.append(f"  Docker restarts: {season.restarts}")
    lines.append(
        f"  login: access tokens of {args.token_seconds} s, matches asked again after"
        f" {args.match_cache_seconds} s; every refresh token ended {season.login_ends} times,"
        f" met by the runner {season.refused_refreshes} times (a refused refresh);"
        f" {season.logins} password logins (the start and one after each end met),"
        f" {season.refreshes} refreshes; {season.api_requests} getMatch requests,"
        f" {season.api_without_token} without a token; waited for a login"
        f" {season.login_waits} times"
    )
    lines.append(f"  runner exits nobody asked for: {len(season.exits)}")
    lines += [f"    {line}" for line in season.exits]
    lines.append(f"  participant failures (Failed results): {season.failed}")
    lines += [f"    {line}" for line in sorted(set(season.failures))[:5]]
    lines.append(f"  containers left after the clean stop: {season.left_after_stop}")
    lines.append(f"reproduce: .venv/bin/python -m benchmarks.season {given}".rstrip())
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--restart-every", type=int, default=4000, help="jobs between restarts")
    parser.add_argument("--outage", type=float, default=3.0, help="seconds Docker stays down")
    parser.add_argument("--sample-every", type=int, default=1000)
    parser.add_argument("--token-seconds", type=int, default=120, help="life of the access tokens")
    parser.add_argument(
        "--match-cache-seconds",
        type=int,
        default=300,
        help="the runner's match_cache_seconds (300, its default: each ask uses the login)",
    )
    parser.add_argument(
        "--login-ends-every",
        type=int,
        default=5000,
        help="jobs between the login's ends (0: never)",
    )
    parser.add_argument("--emulator", choices=EMULATORS, default="ministack")
    parser.add_argument(
        "--trace-memory",
        type=Path,
        metavar="DIR",
        help="run the runner under tracemalloc, a snapshot in DIR at each sample"
        " (benchmarks/memory_trace.py; its RSS is then not a season's figure)",
    )
    args = parser.parse_args(argv)
    if args.trace_memory is not None:
        args.trace_memory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        print("season: the second Docker daemon needs root", file=sys.stderr)
        return 2
    # SIGTERM as SIGINT: the runner is stopped cleanly and the figures so far reported.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with tempfile.TemporaryDirectory(prefix="opthub-season-") as tmp:
        season = run_season(args, Path(tmp))
    given = shlex.join(sys.argv[1:] if argv is None else list(argv))
    print("\n".join(report(season, args, given)), flush=True)
    # Each end the runner met (a refused refresh) is followed by one login from the environment.
    logged_in_again = (
        season.refused_refreshes <= season.login_ends
        and season.logins == 1 + season.refused_refreshes
    )
    clean = (
        not season.exits
        and not season.failed
        and season.left_after_stop == 0
        and logged_in_again
        and not season.api_without_token
        and not season.login_waits
    )
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
