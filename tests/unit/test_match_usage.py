"""What the trials used, from the executor's figures to the log line, metrics, page and status.

Driven through the real seams without Docker: the stub executor behind the
``ObservedExecutor``, the monitor's own observers, its real HTTP server on a
free loopback port, and ``status``'s client reading it.
"""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from datetime import datetime, timezone

import pytest

from opthub_runner_admin.config.schema import Config
from opthub_runner_admin.executor import Execution, RunSpec, TrialUsage
from opthub_runner_admin.executor.stub import ProgramInput, ProgramOutput, StubExecutor
from opthub_runner_admin.host.resources import HostResources
from opthub_runner_admin.jobs.outcome import Done
from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.observe.executor import ObservedExecutor
from opthub_runner_admin.observe.logs import JsonFormatter
from opthub_runner_admin.observe.match_usage import (
    MatchUsageBoard,
    Spread,
    read_usage_document,
    usage_document,
)
from opthub_runner_admin.observe.monitor import Monitor
from opthub_runner_admin.observe.usage import ContainerUsage
from opthub_runner_admin.observe.usage_client import runner_usage_lines
from opthub_runner_admin.observe.usage_suggestions import MIN_TRIALS, Suggestion, suggest
from opthub_runner_admin.observe.usage_view import usage_lines
from opthub_runner_admin.platform_side.contract import job_body
from opthub_runner_admin.queue import Message
from tests.unit.test_observe import samples as _samples

MATCH = "3b7c0b1e-0000-4000-8000-0000000000c1"
MIB = 1024 * 1024
GIB = 1024 * MIB
NOW = datetime(2026, 12, 7, tzinfo=timezone.utc)


def _message(trial: str = "0001", match: str = MATCH) -> Message:
    ref = TrialRef(match, "p-1", trial)
    return Message(message_id=f"m-{trial}", body=job_body(ref), receipt="r", receive_count=1,
                   received_at=0.0)  # fmt: skip


def _execution(usage: TrialUsage, *, killed: bool = False, timed_out: bool = False) -> Execution:
    return Execution(
        exit_code=None if timed_out else (137 if killed else 0),
        stdout="{}\n",
        stderr="",
        timed_out=timed_out,
        started_at=NOW,
        finished_at=NOW,
        oom_killed=killed,
        memory_limit=256 * MIB,
        usage=usage,
    )


def _monitor() -> Monitor:
    config = Config(region_name="r", table_name="t", metrics_port=0, timeout=600)
    return Monitor(mode="evaluator", config=config, stats=lambda: None)


def _run_job(monitor: Monitor, executor: StubExecutor, trial: str, image: str = "img") -> None:
    """What the worker and a job do, in one thread: start, run the container, finish."""
    message = _message(trial)
    monitor.events.job_started(message)
    observed = ObservedExecutor(executor=executor, events=monitor.events)
    observed.run(RunSpec(image=image, stdin_lines=["[1]"], timeout=600.0), threading.Event())
    monitor.events.job_finished(message, Done("evaluation Success"), 0.5)


def test_the_job_line_carries_the_figures_in_text_and_json(
    caplog: pytest.LogCaptureFixture,
) -> None:
    usage = TrialUsage(wall_seconds=1.25, peak_memory=64 * MIB, cpu_seconds=1.0)
    monitor = _monitor()
    caplog.set_level(logging.INFO, logger="opthub_runner_admin.observe.logs")
    _run_job(monitor, StubExecutor(answers=[_execution(usage)]), "0001")
    (record,) = [r for r in caplog.records if getattr(r, "event", "") == "job"]
    assert record.getMessage().endswith("; used peak 64.0 MiB, CPU 1.00 s, wall 1.25 s")
    entry = json.loads(JsonFormatter().format(record))
    assert (entry["peak_memory_bytes"], entry["cpu_s"], entry["wall_s"]) == (64 * MIB, 1.0, 1.25)
    assert "usage_note" not in entry


def test_an_unmeasured_or_prestarted_run_says_so_in_its_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    warm = TrialUsage(wall_seconds=0.5, peak_memory=MIB, cpu_seconds=0.01, from_start=True)
    remote = TrialUsage(wall_seconds=0.5, not_measured="not measured: Docker is reached over tcp")
    monitor = _monitor()
    caplog.set_level(logging.INFO, logger="opthub_runner_admin.observe.logs")
    executor = StubExecutor(answers=[_execution(warm), _execution(remote)])
    _run_job(monitor, executor, "0001")
    _run_job(monitor, executor, "0002")
    first, second = [r for r in caplog.records if getattr(r, "event", "") == "job"]
    assert "(from the container's start: it was started ahead of its job)" in first.getMessage()
    assert json.loads(JsonFormatter().format(first))["usage_from_start"] is True
    assert second.getMessage().endswith("wall 0.50 s; not measured: Docker is reached over tcp")
    entry = json.loads(JsonFormatter().format(second))
    assert entry["usage_note"] == "not measured: Docker is reached over tcp"
    assert "peak_memory_bytes" not in entry and "cpu_s" not in entry


def test_the_stubs_own_figures_reach_the_line(caplog: pytest.LogCaptureFixture) -> None:
    def busy(given: ProgramInput, out: ProgramOutput) -> None:
        out.stdout = str(sum(range(200_000))) + "\n"

    monitor = _monitor()
    caplog.set_level(logging.INFO, logger="opthub_runner_admin.observe.logs")
    _run_job(monitor, StubExecutor(programs={"busy": busy}), "0001", image="busy")
    (record,) = [r for r in caplog.records if getattr(r, "event", "") == "job"]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["cpu_s"] > 0 and entry["wall_s"] >= 0
    assert entry["usage_note"].startswith("peak memory not measured: the stub executor")


def test_metrics_count_each_match_s_figures_kills_and_timeouts() -> None:
    monitor = _monitor()
    executor = StubExecutor(
        answers=[
            _execution(TrialUsage(wall_seconds=1.0, peak_memory=100 * MIB, cpu_seconds=0.5)),
            _execution(
                TrialUsage(wall_seconds=2.0, peak_memory=256 * MIB, cpu_seconds=1.5), killed=True
            ),
            _execution(
                TrialUsage(wall_seconds=600.0, peak_memory=MIB, cpu_seconds=0.1), timed_out=True
            ),
        ]
    )
    for trial in ("0001", "0002", "0003"):
        _run_job(monitor, executor, trial)
    values = _samples(monitor.metrics.exposition().decode())
    labels = f"match={MATCH},mode=evaluator"
    assert values[f"opthub_runner_trial_peak_memory_bytes_count{{{labels}}}"] == 3
    assert values[f"opthub_runner_trial_peak_memory_bytes_sum{{{labels}}}"] == 357 * MIB
    assert values[f"opthub_runner_trial_cpu_seconds_sum{{{labels}}}"] == pytest.approx(2.1)
    assert values[f"opthub_runner_trial_wall_seconds_sum{{{labels}}}"] == pytest.approx(603.0)
    assert values[f"opthub_runner_trial_memory_kills_total{{{labels}}}"] == 1
    assert values[f"opthub_runner_trial_timeouts_total{{{labels}}}"] == 1


def test_per_match_spread_counts_and_limits() -> None:
    board = MatchUsageBoard()
    for n in range(1, 101):  # peaks 1..100 MiB, CPU n/100 s, wall n/10 s
        usage = TrialUsage(wall_seconds=n / 10, peak_memory=n * MIB, cpu_seconds=n / 100)
        board.record(MATCH, ContainerUsage(usage, 256 * MIB, n == 100, False, 600.0))
    board.record(
        "other",
        ContainerUsage(TrialUsage(1.0, not_measured="not measured: x"), None, False, True, 60.0),
    )
    ours, other = sorted(board.snapshot(), key=lambda m: m.match != MATCH)
    assert (ours.trials, ours.measured, ours.memory_kills, ours.timeouts) == (100, 100, 1, 0)
    assert ours.peak_memory == Spread(p50=50 * MIB, p95=95 * MIB, p99=99 * MIB, max=100 * MIB)
    assert ours.wall_seconds is not None and ours.wall_seconds.max == pytest.approx(10.0)
    assert ours.cores_per_trial == pytest.approx(0.1)
    assert (ours.memory_limit, ours.timeout) == (256 * MIB, 600.0)
    assert (other.trials, other.measured, other.timeouts) == (1, 0, 1)
    assert other.peak_memory is None and other.not_measured == "not measured: x"


def _board_of(count: int, *, peak: int, wall: float, cpu: float) -> MatchUsageBoard:
    board = MatchUsageBoard()
    for _ in range(count):
        usage = TrialUsage(wall_seconds=wall, peak_memory=peak, cpu_seconds=cpu)
        board.record(MATCH, ContainerUsage(usage, 4 * GIB, False, False, 43200.0))
    return board


def test_a_suggestion_needs_enough_trials() -> None:
    (usage,) = _board_of(MIN_TRIALS - 1, peak=100 * MIB, wall=3.0, cpu=1.0).snapshot()
    said = suggest(usage, HostResources(memory=8 * GIB, cores=2))
    assert (
        said == f"match {MATCH}: {MIN_TRIALS - 1} of {MIN_TRIALS} measured trials needed"
        " before a suggestion"
    )


def test_the_suggestion_shows_its_arithmetic() -> None:
    (usage,) = _board_of(MIN_TRIALS, peak=100 * MIB, wall=12.3, cpu=6.15).snapshot()
    said = suggest(usage, HostResources(memory=8 * GIB, cores=2))
    assert isinstance(said, Suggestion)
    # 1.5 x 100 MiB = 150 MiB -> 192 MiB; 2 x 12.3 s = 24.6 s -> 30 s;
    # memory 8 GiB x 0.8 / 192 MiB = 34, cores 2 / 0.5 = 4: 4 workers.
    assert (said.memory, said.timeout, said.workers) == (192 * MIB, 30, 4)
    assert said.lines == (
        "memory: 1.5 x p99 100 MiB = 150 MiB, rounded up to 192 MiB (memory: 192m)",
        "timeout: 2 x slowest 12.3 s = 24.6 s, rounded up to 30 s (timeout: 30)",
        "workers: memory 8 GiB x 0.8 / 192 MiB = 34; cores 2 / 0.50 busy per trial = 4: 4"
        " (workers: 4)",
    )


def test_status_reads_a_running_runners_figures_over_http() -> None:
    monitor = _monitor()
    executor = StubExecutor(
        answers=[
            _execution(TrialUsage(wall_seconds=1.0, peak_memory=64 * MIB, cpu_seconds=0.5))
            for _ in range(MIN_TRIALS)
        ]
    )
    for n in range(MIN_TRIALS):
        _run_job(monitor, executor, f"{n:04d}")
    monitor.start()
    try:
        assert monitor.server is not None
        host, port = monitor.server.address
        lines = runner_usage_lines(host, port)
        with urllib.request.urlopen(f"http://{host}:{port}/", timeout=10) as answer:
            page = answer.read().decode()
    finally:
        monitor.stop()
    assert lines[0] == f"what the trials used (the evaluator at http://{host}:{port}/usage.json):"
    assert (
        f"  match {MATCH}: {MIN_TRIALS} trials ({MIN_TRIALS} measured), 0 killed for memory,"
        " 0 timed out" in lines
    )
    assert "    peak memory p50 64 MiB, p95 64 MiB, max 64 MiB (limit 256 MiB)" in lines
    assert any(
        line.strip().startswith("memory: 1.5 x p99 64 MiB = 96 MiB, rounded up to 128 MiB")
        for line in lines
    )
    assert "What the trials used" in page and "rounded up to 128 MiB" in page


def test_status_without_a_runner_says_what_to_do_in_one_line() -> None:
    (line,) = runner_usage_lines("127.0.0.1", 9)  # the discard port: nothing answers there
    assert line.startswith(
        "what the trials used: no runner answers on http://127.0.0.1:9/usage.json"
    )
    assert line.endswith("start the runner with this config's metrics_port, then run status again")
    (unset,) = runner_usage_lines("127.0.0.1", None)
    assert unset.startswith("what the trials used: set metrics_port in the config")
    (picked,) = runner_usage_lines("127.0.0.1", 0)
    assert picked.startswith("what the trials used: metrics_port is 0")


def test_the_document_reads_back_as_it_was_served() -> None:
    board = _board_of(3, peak=5 * MIB, wall=1.0, cpu=0.2)
    host = HostResources(memory=GIB, cores=2)
    document = read_usage_document(usage_document("scorer", host, board.snapshot()))
    assert (document.mode, document.host, document.matches) == ("scorer", host, board.snapshot())
    assert usage_lines(document.matches, host) == usage_lines(board.snapshot(), host)
