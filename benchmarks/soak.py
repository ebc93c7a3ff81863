"""A fault soak: many trials through several real runners while faults strike at random.

N trials (solutions of a few participants) go through R evaluator runners and R
scorer runners of W workers each, every one a real ``opthub-runner`` process,
sharing one evaluator queue and one scorer queue (standard or FIFO, each with
a dead-letter queue) on a local AWS emulator (moto or MiniStack). This script
plays the platform: it stores the solutions, sends the evaluator messages, and
sends a scorer message for each successful evaluation it sees in the table,
as the platform's stream does. Meanwhile it injects faults, drawn from a seeded
random generator and counted by kind:

- ``kill``: SIGKILL of a runner, started again;
- ``freeze``: a runner stopped (SIGSTOP) past its visibility window, then woken;
- ``drain``: SIGTERM of a runner (it finishes its jobs), started again;
- ``aws-pause``: the emulator stopped (SIGSTOP) for a few seconds;
- ``container-kill``: ``docker kill`` of a running job's container from outside;
- ``daemon-restart``: a second Docker daemon (``scripts/second-dockerd.sh``, with
  its own state, data root, bridge and subnet; never the machine's own daemon),
  used by half of the runners, stopped and started again.

At the end it drains every runner and checks the table against what the trials
must give: one evaluation per trial with the sphere's value, one score per
successful evaluation equal to the best so far of the participant's successful
trials. It reports the trials, the faults by kind, the results lost, doubled
and wrong, the participant failures (Failed items: every solution is valid, so
each one was caused by a fault), the containers left, and the messages left in
each queue and its dead-letter queue.

Run (from the repository root, after scripts/setup.sh; root for the second daemon):

    .venv/bin/python -m benchmarks.soak --mode standard --emulator moto
    .venv/bin/python -m benchmarks.soak --mode fifo --emulator ministack --trials 100 --seed 7

Timings depend on the machine and its load; the counts must not.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker
import docker.errors
from botocore.exceptions import BotoCoreError, ClientError

from opthub_runner_admin.demo.images import BEST_SO_FAR_SCRIPT, SPHERE_SCRIPT, build_busybox_image
from opthub_runner_admin.executor.docker import LABEL_PID, LABEL_RUNNER
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.contract import (
    create_queue,
    create_table,
    dead_letter_queue_name,
    put_solution,
    send_job,
)
from opthub_runner_admin.platform_side.emulators import EMULATORS, LocalServer, emulator
from opthub_runner_admin.platform_side.runners import RunnerPool, RunnerProcess
from opthub_runner_admin.platform_side.second_daemon import second_dockerd
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts, scan_results

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

#: Every kind of fault, in the order the report lists them.
KINDS = ("kill", "freeze", "drain", "aws-pause", "container-kill", "daemon-restart")
#: The problem image: the sphere after a pause, so that faults meet jobs in flight.
PROBLEM_TAG = "opthub-soak/slow-sphere:{seconds}"
INDICATOR = ("opthub-soak/best-so-far:1", BEST_SO_FAR_SCRIPT)
#: The soak's own second daemon: names no other user of the script picks.
SECOND_DAEMON_ENV = {
    "OPTHUB_BENCH_STATE": "/run/opthub-soak-d2",
    "OPTHUB_BENCH_DATA": "/var/lib/opthub-soak-d2",
    "OPTHUB_BENCH_BRIDGE": "osk0",
    "OPTHUB_BENCH_SUBNET": "172.31.247.1/24",
}
#: Receives before a message goes to its dead-letter queue (a realistic redrive policy).
MAX_RECEIVES = 10


@dataclass(frozen=True)
class SoakSettings:
    """What one soak run does; the defaults are the figures the README quotes."""

    mode: str = "standard"
    emulator: str = "moto"
    trials: int = 200
    runners: int = 2
    workers: int = 2
    faults: int = 20
    seed: int = 1
    kinds: tuple[str, ...] = KINDS
    participants: int = 4
    #: Seconds each evaluation's container waits before it answers.
    job_seconds: float = 1.0
    #: The runners' ``visibility_timeout`` (their heartbeat window).
    visibility_timeout: int = 5
    #: Seconds between two faults are drawn from this range.
    fault_gap: tuple[float, float] = (1.0, 4.0)
    #: Seconds the whole run may take once the trials are sent.
    deadline: float = 1200.0

    def command(self) -> str:
        """The command that reruns these settings."""
        kinds = "" if self.kinds == KINDS else f" --kinds {','.join(self.kinds)}"
        return (
            f".venv/bin/python -m benchmarks.soak --mode {self.mode} --emulator {self.emulator}"
            f" --trials {self.trials} --runners {self.runners} --workers {self.workers}"
            f" --faults {self.faults} --seed {self.seed}{kinds}"
        )


@dataclass
class SoakReport:
    """What a soak run left; ``clean`` when the runner kept every promise."""

    settings: SoakSettings
    faults: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    doubled: int = 0
    wrong: int = 0
    participant_failures: int = 0
    #: Successful evaluations whose scorer message the platform had not sent when the run
    #: ended (it stops at the deadline): not scored, but not lost by a runner either.
    not_yet_scored: int = 0
    containers_left: int = 0
    messages_left: dict[str, int] = field(default_factory=dict)
    #: Runners that exited without being told to (each was started again).
    unexpected_exits: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return (
            self.lost == self.doubled == self.wrong == self.participant_failures == 0
            and self.not_yet_scored == 0
            and self.containers_left == 0
            and not any(self.messages_left.values())
        )

    def lines(self) -> list[str]:
        s = self.settings
        faults = ", ".join(f"{kind} {self.faults[kind]}" for kind in s.kinds)
        messages = ", ".join(f"{name} {count}" for name, count in self.messages_left.items())
        return [
            f"soak: {s.mode} queues on {s.emulator}, {s.runners} evaluator and {s.runners} "
            f"scorer runners of {s.workers} workers, seed {s.seed}",
            f"trials: {s.trials} ({s.participants} participants), in {self.seconds:.0f} s",
            f"faults: {sum(self.faults.values())} ({faults})",
            f"results lost: {self.lost}, doubled: {self.doubled}, wrong: {self.wrong}",
            f"evaluations not yet scored (no scorer message sent before the end):"
            f" {self.not_yet_scored}",
            f"participant failures caused by a fault: {self.participant_failures}",
            f"containers left: {self.containers_left}",
            f"messages left: {messages}",
            f"runner exits nobody asked for: {self.unexpected_exits}",
            *(f"note: {note}" for note in self.notes),
            f"rerun: {s.command()}",
        ]


@dataclass
class Slot:
    """One runner's place in the fleet: its role and daemon, and its current process."""

    role: str
    docker_host: str | None
    process: RunnerProcess | None = None


class Fleet:
    """The runner processes, each started again when a fault or a crash ends it."""

    def __init__(self, *, pools: dict[str | None, RunnerPool], config: Path) -> None:
        self._pools = pools
        self._config = config
        self.slots: list[Slot] = []
        #: Runners that exited without being told to: their exit code and last log line.
        self.exits: list[str] = []

    def add(self, role: str, docker_host: str | None) -> None:
        slot = Slot(role, docker_host)
        self.slots.append(slot)
        self.start(slot)

    def start(self, slot: Slot) -> None:
        env = {"DOCKER_HOST": slot.docker_host} if slot.docker_host else {}
        slot.process = self._pools[slot.docker_host].start(slot.role, self._config, env)

    def pids(self) -> set[int]:
        return {p.pid for pool in self._pools.values() for p in pool.started}

    def restart_the_fallen(self) -> None:
        """Start again every runner that exited on its own (an operator's unit would)."""
        for slot in self.slots:
            if slot.process is not None and slot.process.exited():
                lines = slot.process.log().strip().splitlines() or [""]
                # The runner's one line saying why, else its last line.
                why = next((line for line in reversed(lines) if "Error" in line), lines[-1])
                self.exits.append(f"{slot.role} exited {slot.process.returncode}: {why}")
                self.start(slot)

    def drain(self, timeout: float = 120) -> None:
        """SIGTERM every runner and wait for it to finish its jobs and exit."""
        live = [s.process for s in self.slots if s.process and s.process.returncode is None]
        for process in live:
            with contextlib.suppress(ProcessLookupError):
                process.signal(signal.SIGTERM)
        for process in live:
            process.wait(timeout)


class Platform(threading.Thread):
    """Plays the platform's stream: a scorer message for each successful evaluation."""

    def __init__(self, *, stack: AwsStack, send: Callable[[TrialRef], None]) -> None:
        super().__init__(daemon=True)
        self._stack = stack
        self._send = send
        self._sent: set[TrialRef] = set()
        self.stop = threading.Event()

    def sent(self) -> frozenset[TrialRef]:
        """The trials whose scorer message was sent; call once the thread has ended."""
        return frozenset(self._sent)

    def run(self) -> None:
        while not self.stop.wait(0.5):
            try:
                found = scan_results(self._stack, "Evaluation")
            except (ClientError, BotoCoreError):
                continue  # the emulator is paused: look again
            for item in found:
                ref = _ref(item)
                if item["Status"] == "Success" and ref not in self._sent:
                    try:
                        self._send(ref)
                    except (ClientError, BotoCoreError):
                        break  # sent on a later round
                    self._sent.add(ref)


def _ref(item: dict[str, Any]) -> TrialRef:
    match = str(item["MatchID"]).removeprefix("Match#")
    return TrialRef(match, str(item["ParticipantID"]), str(item["TrialNo"]))


class Faults:
    """Draws and injects the faults; counts each one that struck."""

    def __init__(
        self,
        *,
        settings: SoakSettings,
        fleet: Fleet,
        server: LocalServer,
        dockers: dict[str | None, docker.DockerClient],
        second_daemon: SecondDaemon | None,
    ) -> None:
        self._settings = settings
        self._fleet = fleet
        self._server = server
        self._dockers = dockers
        self._second = second_daemon
        self._random = random.Random(settings.seed)
        self.count: Counter[str] = Counter()
        kinds = [k for k in settings.kinds if k != "daemon-restart" or second_daemon]
        self._kinds = kinds

    def left(self) -> bool:
        """Whether faults remain to be injected."""
        return sum(self.count.values()) < self._settings.faults

    def gap(self) -> float:
        return self._random.uniform(*self._settings.fault_gap)

    def strike(self) -> None:
        """Inject one fault of a kind drawn at random (another one if no target is found)."""
        for _ in range(5):
            kind = self._random.choice(self._kinds)
            if getattr(self, "_" + kind.replace("-", "_"))():
                self.count[kind] += 1
                return

    def _victim(self) -> Slot:
        return self._random.choice(self._fleet.slots)

    def _kill(self) -> bool:
        slot = self._victim()
        assert slot.process is not None
        slot.process.kill()
        self._fleet.start(slot)
        return True

    def _freeze(self) -> bool:
        slot = self._victim()
        assert slot.process is not None
        slot.process.signal(signal.SIGSTOP)
        time.sleep(self._settings.visibility_timeout + 3)
        slot.process.signal(signal.SIGCONT)
        return True

    def _drain(self) -> bool:
        slot = self._victim()
        assert slot.process is not None
        slot.process.signal(signal.SIGTERM)
        slot.process.wait(120)
        self._fleet.start(slot)
        return True

    def _aws_pause(self) -> bool:
        pid = self._server.pid
        if pid is None:
            return False
        os.kill(pid, signal.SIGSTOP)
        time.sleep(self._random.uniform(2, 5))
        os.kill(pid, signal.SIGCONT)
        return True

    def _container_kill(self) -> bool:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            running = [
                (client, info["Id"])
                for client in self._dockers.values()
                for info in _containers(client, self._fleet.pids(), running=True)
            ]
            if running:
                client, container = self._random.choice(running)
                with contextlib.suppress(docker.errors.APIError):
                    client.api.kill(container)
                    return True
            time.sleep(0.2)
        return False

    def _daemon_restart(self) -> bool:
        if self._second is None:
            return False
        self._second.restart()
        return True


class SecondDaemon:
    """The soak's own second Docker daemon (``scripts/second-dockerd.sh``)."""

    def __init__(self) -> None:
        self.host = ""

    @staticmethod
    def possible() -> str | None:
        """Why a second daemon cannot run here, or None."""
        if os.geteuid() != 0:
            return "a second Docker daemon needs root"
        if shutil.which("dockerd") is None:
            return "dockerd is not installed"
        return None

    def _script(self, action: str) -> str:
        # OPTHUB_BENCH_* set in the environment override the soak's names (two soaks at once).
        env = {key: os.environ.get(key, value) for key, value in SECOND_DAEMON_ENV.items()}
        done = second_dockerd(action, env)
        if done.returncode != 0:
            raise RuntimeError(f"second-dockerd.sh {action} failed: {done.stderr.strip()}")
        return done.stdout.strip()

    def start(self) -> str:
        self.host = self._script("start").splitlines()[-1]
        return self.host

    def restart(self) -> None:
        self._script("stop")
        self._script("start")

    def stop(self) -> None:
        self._script("stop")


def _containers(
    client: docker.DockerClient, pids: set[int], *, running: bool = False
) -> list[dict[str, Any]]:
    """Containers of the soak's runners on one daemon (by the runner's pid label)."""
    filters: dict[str, Any] = {"label": [f"{LABEL_RUNNER}=1"]}
    if running:
        filters["status"] = "running"
    try:
        found: list[dict[str, Any]] = client.api.containers(all=True, filters=filters)
    except docker.errors.DockerException:
        return []  # the daemon is restarting
    return [c for c in found if c.get("Labels", {}).get(LABEL_PID, "") in {str(p) for p in pids}]


# --- the stack -----------------------------------------------------------------------


def _queue(sqs: SQSClient, name: str, fifo: bool) -> tuple[str, str]:
    """A queue and its dead-letter queue (both FIFO or both standard): (url, dlq url)."""
    url = create_queue(sqs, name, fifo=fifo, dead_letter_max_receives=MAX_RECEIVES)
    dlq = sqs.get_queue_url(QueueName=dead_letter_queue_name(name, fifo=fifo))["QueueUrl"]
    return url, dlq


def _sender(sqs: SQSClient, url: str, fifo: bool) -> Callable[[TrialRef], None]:
    """Sends a job as the platform does: FIFO messages grouped by participant."""

    def send(ref: TrialRef) -> None:
        send_job(sqs, url, ref, group=ref.participant_id if fifo else None)

    return send


@dataclass(frozen=True)
class Trial:
    ref: TrialRef
    variable: list[int]

    @property
    def objective(self) -> int:
        return sum(x * x for x in self.variable)


def _trials(settings: SoakSettings, match: str) -> list[Trial]:
    draw = random.Random(settings.seed * 7919 + 1)
    trials = []
    for n in range(settings.trials):
        participant = f"p-{n % settings.participants}"
        trial_no = f"{n // settings.participants + 1:04d}"
        variable = [draw.randint(-30, 30) for _ in range(3)]
        trials.append(Trial(TrialRef(match, participant, trial_no), variable))
    return trials


# --- the run -------------------------------------------------------------------------


def run_soak(
    settings: SoakSettings, workdir: Path, docker_client: docker.DockerClient
) -> SoakReport:
    """Run one soak in ``workdir`` on the machine's daemon (and the soak's second one)."""
    report = SoakReport(settings)
    second: SecondDaemon | None = None
    if "daemon-restart" in settings.kinds:
        why_not = SecondDaemon.possible()
        if why_not:
            report.notes.append(f"daemon-restart not injected: {why_not}")
        else:
            second = SecondDaemon()
    with contextlib.ExitStack() as cleanup:
        server = cleanup.enter_context(emulator(settings.emulator))
        dockers: dict[str | None, docker.DockerClient] = {None: docker_client}
        if second is not None:
            host = second.start()
            cleanup.callback(second.stop)
            dockers[host] = docker.DockerClient(base_url=host)
            cleanup.callback(dockers[host].close)
        stack, dlqs = _stack(server, settings)
        match = str(uuid.uuid4())
        config = write_config(
            workdir,
            stack,
            {match: match_entry(_build_images(dockers, settings), INDICATOR[0])},
            visibility_timeout=settings.visibility_timeout,
            workers=settings.workers,
            timeout=120,
            defer_seconds=1,
            # The scorer's patience stays at the default's five minutes.
            max_deferrals=300,
            log_level="INFO",
        )
        pools = {host: RunnerPool(workdir, client) for host, client in dockers.items()}
        for pool in pools.values():
            cleanup.callback(pool.cleanup)
        fleet = Fleet(pools=pools, config=config)
        hosts = list(dockers)
        for n in range(settings.runners):
            for role in ("evaluator", "scorer"):
                fleet.add(role, hosts[n % len(hosts)])
        fifo = settings.mode == "fifo"
        platform = Platform(
            stack=stack, send=_sender(stack.clients.sqs, stack.scorer_queue_url, fifo)
        )
        trials = _trials(settings, match)
        started = time.monotonic()
        send = _sender(stack.clients.sqs, stack.evaluator_queue_url, fifo)
        for trial in trials:
            put_solution(stack.clients.dynamodb, stack.table_name, trial.ref, trial.variable)
        # A quarter of the trials is sent only once every fault has struck, so that the
        # faults always meet work in progress, however fast the runners are.
        held = len(trials) - len(trials) // 4 if settings.faults else len(trials)
        for trial in trials[:held]:
            send(trial.ref)
        platform.start()
        cleanup.callback(platform.stop.set)
        faults = Faults(
            settings=settings, fleet=fleet, server=server, dockers=dockers, second_daemon=second
        )
        later = [trial.ref for trial in trials[held:]]
        if not _run_until_done(
            stack,
            trials,
            fleet,
            faults,
            deadline=started + settings.deadline,
            later=later,
            send=send,
        ):
            report.notes.append(
                f"the deadline ({settings.deadline:.0f} s) passed first: results counted lost "
                "may still be on their way (see the messages left)"
            )
        if sum(faults.count.values()) < settings.faults:
            report.notes.append("the trials were done before every fault was injected")
        platform.stop.set()
        platform.join(timeout=60)
        fleet.drain()
        report.seconds = time.monotonic() - started
        report.faults = faults.count
        report.unexpected_exits = len(fleet.exits)
        report.notes.extend(f"runner exit nobody asked for: {line}" for line in fleet.exits)
        check_results(
            report,
            trials=trials,
            evaluations=_results(stack, "Evaluation"),
            scores=_results(stack, "Score"),
            sent=platform.sent(),
        )
        _count_leftovers(report, stack, dlqs, dockers, fleet.pids())
    return report


def _build_images(dockers: dict[str | None, docker.DockerClient], settings: SoakSettings) -> str:
    """Build both images on every daemon; return the problem image's tag."""
    problem = PROBLEM_TAG.format(seconds=settings.job_seconds)
    for client in dockers.values():
        build_busybox_image(client, problem, f"sleep {settings.job_seconds}\n{SPHERE_SCRIPT}")
        build_busybox_image(client, *INDICATOR)
    return problem


def _run_until_done(
    stack: AwsStack,
    trials: list[Trial],
    fleet: Fleet,
    faults: Faults,
    *,
    deadline: float,
    later: list[TrialRef],
    send: Callable[[TrialRef], object],
) -> bool:
    """Strike faults at random gaps until the trials are done, then let the queues empty.

    The ``later`` trials are sent once no fault is left to strike. Returns
    whether the trials were done before the deadline.
    """
    next_fault = time.monotonic() + faults.gap()
    while not (finished := _finished(stack, trials)) and time.monotonic() < deadline:
        fleet.restart_the_fallen()
        if faults.left() and time.monotonic() >= next_fault:
            faults.strike()
            next_fault = time.monotonic() + faults.gap()
        if later and not faults.left():
            for ref in later:
                send(ref)
            later.clear()
        time.sleep(0.5)
    _settle(stack, deadline)
    return finished


def _count_leftovers(
    report: SoakReport,
    stack: AwsStack,
    dlqs: tuple[str, str],
    dockers: dict[str | None, docker.DockerClient],
    pids: set[int],
) -> None:
    """The soak's containers still on a daemon, and the messages still in each queue."""
    for host, client in dockers.items():
        for info in _containers(client, pids):
            report.containers_left += 1
            daemon = "the second daemon" if host else "the machine's daemon"
            report.notes.append(f"container left on {daemon}: {info.get('Status', '?')}")
    report.messages_left = {
        "evaluator queue": sum(queue_counts(stack, stack.evaluator_queue_url)),
        "evaluator dead letters": sum(queue_counts(stack, dlqs[0])),
        "scorer queue": sum(queue_counts(stack, stack.scorer_queue_url)),
        "scorer dead letters": sum(queue_counts(stack, dlqs[1])),
    }


def _stack(server: LocalServer, settings: SoakSettings) -> tuple[AwsStack, tuple[str, str]]:
    clients = server.clients()
    suffix = uuid.uuid4().hex[:8]
    table = f"opthub-soak-{suffix}"
    create_table(clients.dynamodb, table)
    fifo = settings.mode == "fifo"
    evaluator, evaluator_dlq = _queue(clients.sqs, f"evaluator-{suffix}", fifo)
    scorer, scorer_dlq = _queue(clients.sqs, f"scorer-{suffix}", fifo)
    stack = AwsStack(
        clients=clients,
        endpoint_url=server.endpoint_url,
        table_name=table,
        evaluator_queue_url=evaluator,
        scorer_queue_url=scorer,
        emulator=server.name,
    )
    return stack, (evaluator_dlq, scorer_dlq)


def _results(stack: AwsStack, resource_type: str) -> dict[TrialRef, list[dict[str, Any]]]:
    found: dict[TrialRef, list[dict[str, Any]]] = {}
    for item in scan_results(stack, resource_type):
        found.setdefault(_ref(item), []).append(item)
    return found


def _finished(stack: AwsStack, trials: list[Trial]) -> bool:
    """Every trial evaluated, and every successful evaluation scored."""
    try:
        evaluations = _results(stack, "Evaluation")
        scores = _results(stack, "Score")
    except (ClientError, BotoCoreError):
        return False
    for trial in trials:
        done = evaluations.get(trial.ref)
        if not done:
            return False
        if any(e["Status"] == "Success" for e in done) and not scores.get(trial.ref):
            return False
    return True


def _settle(stack: AwsStack, deadline: float) -> None:
    """Wait (bounded) for both queues to empty: the last deletes may still be on their way."""
    until = min(deadline, time.monotonic() + 60)
    while time.monotonic() < until:
        if not any(
            sum(queue_counts(stack, url))
            for url in (stack.evaluator_queue_url, stack.scorer_queue_url)
        ):
            return
        time.sleep(1)


def check_results(
    report: SoakReport,
    *,
    trials: list[Trial],
    evaluations: dict[TrialRef, list[dict[str, Any]]],
    scores: dict[TrialRef, list[dict[str, Any]]],
    sent: frozenset[TrialRef],
) -> None:
    """Count lost, doubled, wrong results and participant failures against the trials.

    A missing score counts as lost only if its scorer message was sent: the platform
    stops at the deadline, and an evaluation written after its last look was never
    given to a scorer.
    """
    best: dict[str, int] = {}
    for trial in sorted(trials, key=lambda t: (t.ref.participant_id, t.ref.trial_no)):
        evaluated = evaluations.get(trial.ref, [])
        if not evaluated:
            report.lost += 1
            continue
        if len(evaluated) > 1:
            report.doubled += 1
        evaluation = evaluated[0]
        if evaluation["Status"] != "Success":
            report.participant_failures += 1
            report.notes.append(f"evaluation failed: {evaluation.get('ErrorMessage')!r}")
            continue
        if evaluation["Objective"] != Decimal(trial.objective):
            report.wrong += 1
        participant = trial.ref.participant_id
        best[participant] = min(best.get(participant, trial.objective), trial.objective)
        scored = scores.get(trial.ref, [])
        if not scored:
            if trial.ref in sent:
                report.lost += 1
            else:
                report.not_yet_scored += 1
            continue
        if len(scored) > 1:
            report.doubled += 1
        if scored[0]["Status"] != "Success":
            report.participant_failures += 1
            report.notes.append(f"score failed: {scored[0].get('ErrorMessage')!r}")
        elif scored[0]["Value"] != Decimal(best[participant]):
            report.wrong += 1


# --- the command ---------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    defaults = SoakSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("standard", "fifo"), default=defaults.mode)
    parser.add_argument("--emulator", choices=EMULATORS, default=defaults.emulator)
    parser.add_argument("--trials", type=int, default=defaults.trials)
    parser.add_argument("--runners", type=int, default=defaults.runners)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--faults", type=int, default=defaults.faults)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--kinds",
        default=",".join(KINDS),
        help=f"comma-separated fault kinds (default: all of {', '.join(KINDS)})",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        print(f"soak: unknown fault kinds {', '.join(unknown)}", file=sys.stderr)
        return 2
    settings = SoakSettings(
        mode=args.mode,
        emulator=args.emulator,
        trials=args.trials,
        runners=args.runners,
        workers=args.workers,
        faults=args.faults,
        seed=args.seed,
        kinds=kinds,
    )
    client = docker.from_env()
    with _workdir() as workdir:
        report = run_soak(settings, workdir, client)
    print("\n".join(report.lines()))
    return 0 if report.clean else 1


@contextlib.contextmanager
def _workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="opthub-soak-") as name:
        yield Path(name)


if __name__ == "__main__":
    sys.exit(main())
