"""What a season on one box needs of the pure parts: Docker's watch, the disk watch, durations.

The daemon's own behaviour (restarts, a full data root) is in
``tests/faults/test_docker_restarts.py`` and ``tests/docker/test_small_disk.py``.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from opthub_runner_admin.config.loading import parse_config
from opthub_runner_admin.errors import ConfigError, FatalError
from opthub_runner_admin.executor.docker.daemon_watch import DaemonWatch, wait_for_docker
from opthub_runner_admin.executor.docker.image_cleanup import PulledImages
from opthub_runner_admin.host.disk import DiskSpace, disk_space
from opthub_runner_admin.observe.board import StatusBoard
from opthub_runner_admin.observe.disk import DiskWatch
from opthub_runner_admin.observe.events import Fanout
from opthub_runner_admin.observe.metrics import RunnerMetrics
from opthub_runner_admin.observe.server import health_check
from opthub_runner_admin.observe.status import status_line
from opthub_runner_admin.settings.durations import parse_duration

GIB = 1024**3


def test_the_watch_says_once_that_docker_is_away_and_cleans_up_once_it_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    answers = threading.Event()
    back = threading.Event()
    states: list[bool] = []

    def ping() -> None:
        if not answers.is_set():
            raise ConnectionError("refused")

    watch = DaemonWatch(ping=ping, on_back=back.set, on_change=states.append, first_pause=0.01)
    with caplog.at_level(logging.WARNING):
        watch.lost("connection refused")
        watch.lost("connection refused again")  # said once
        assert not watch.up
        assert not watch.wait_up(0.1)
        answers.set()
        assert watch.wait_up(10)
        assert back.wait(10)
    watch.close()
    assert states == [False, True]
    said = [r.getMessage() for r in caplog.records]
    assert sum("Docker is not answering" in line for line in said) == 1
    assert sum("Docker answers again" in line for line in said) == 1


def test_a_starting_runner_waits_for_docker_then_gives_the_published_error() -> None:
    attempts: list[float] = []
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    def never() -> object:
        attempts.append(now[0])
        raise FatalError("Unable to communicate with Docker. (gone)")

    with pytest.raises(FatalError, match="Unable to communicate with Docker"):
        wait_for_docker(never, patience=30, sleep=sleep, clock=lambda: now[0])
    assert len(attempts) > 3 and attempts[-1] <= 30

    calls = iter([FatalError("Unable to communicate with Docker."), "client"])

    def second_time() -> object:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert wait_for_docker(second_time, patience=30, sleep=sleep, clock=lambda: now[0]) == "client"

    def refused() -> object:
        attempts.append(now[0])
        raise FatalError("Unable to communicate with Docker. (Permission denied)")

    before = len(attempts)
    with pytest.raises(FatalError):
        wait_for_docker(refused, patience=30, sleep=sleep, clock=lambda: now[0])
    assert len(attempts) == before + 1  # waiting cannot mend a permission


def test_the_disk_watch_shows_every_disk_and_warns_once_while_low(
    caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    free = {"docker": 1 * GIB, "state": 50 * GIB}

    def read(name: str, path: Path) -> DiskSpace:
        return DiskSpace(name=name, path=path, free=free[name], size=100 * GIB)

    board, metrics = StatusBoard(slow_after=600), RunnerMetrics(mode="evaluator")
    watch = DiskWatch(
        paths={"docker": tmp_path / "docker", "state": tmp_path / "state"},
        events=Fanout(observers=[board, metrics]),
        warn_below=5 * GIB,
        read=read,
    )
    with caplog.at_level(logging.WARNING):
        watch.sample()
        watch.sample()
        free["docker"] = 10 * GIB
        watch.sample()  # above again: the next fall warns again
        free["docker"] = 2 * GIB
        watch.sample()
    warnings = [r.getMessage() for r in caplog.records if "disk_warning_below" in r.getMessage()]
    assert len(warnings) == 2 and all("docker (" in line for line in warnings)
    exposition = metrics.exposition().decode()
    assert _value(exposition, 'opthub_runner_disk_free_bytes{mode="evaluator",path="docker"}') == (
        2 * GIB
    )
    assert _value(exposition, 'opthub_runner_disk_size_bytes{mode="evaluator",path="state"}') == (
        100 * GIB
    )
    line = status_line("evaluator", board.snapshot())
    assert "disk docker 2.0 GiB free, state 50.0 GiB free" in line


def test_docker_down_shows_in_the_status_line_the_metric_and_health() -> None:
    board, metrics = StatusBoard(slow_after=600), RunnerMetrics(mode="scorer")
    events = Fanout(observers=[board, metrics])
    assert 'opthub_runner_docker_up{mode="scorer"} 1.0' in metrics.exposition().decode()
    events.docker_state(False)
    snapshot = board.snapshot()
    assert "DOCKER DOWN" in status_line("scorer", snapshot)
    assert 'opthub_runner_docker_up{mode="scorer"} 0.0' in metrics.exposition().decode()
    problem = health_check(stall_after=300, job_limit=600)(snapshot)
    assert problem is not None and "Docker does not answer" in problem
    events.docker_state(True)
    assert "DOCKER DOWN" not in status_line("scorer", board.snapshot())
    assert 'opthub_runner_docker_up{mode="scorer"} 1.0' in metrics.exposition().decode()


def test_disk_space_reads_the_file_system_of_the_nearest_existing_folder(tmp_path: Path) -> None:
    space = disk_space("state", tmp_path / "not" / "yet")
    assert space is not None and 0 < space.free <= space.size
    assert space.path == tmp_path / "not" / "yet"


def test_durations_and_the_new_keys() -> None:
    assert parse_duration("7d") == 7 * 86400
    assert parse_duration("12h") == 43200
    assert parse_duration(90) == 90
    config = parse_config(
        "region_name: r\ntable_name: t\nimage_cleanup_after: 2w\ndisk_warning_below: 1g\n"
    ).config
    assert config.image_cleanup_after == 14 * 86400
    assert config.disk_warning_below == GIB
    assert parse_config("region_name: r\ntable_name: t\n").config.image_cleanup_after is None
    with pytest.raises(ConfigError, match="image_cleanup_after"):
        parse_config("region_name: r\ntable_name: t\nimage_cleanup_after: soon\n")
    with pytest.raises(ConfigError, match="image_cleanup_after"):
        parse_config("region_name: r\ntable_name: t\nimage_cleanup_after: 5m\n")


def test_the_record_keeps_only_pulled_images_and_their_last_use(tmp_path: Path) -> None:
    now = [1000.0]
    record = PulledImages(path=tmp_path / "pulled.json", clock=lambda: now[0])
    record.pulled("reg/a:1")
    record.used("built/locally:1")  # never pulled: never recorded, never removed
    now[0] = 5000.0
    record.used("reg/a:1")
    other = PulledImages(path=tmp_path / "pulled.json", clock=lambda: now[0])  # another runner
    assert other.tags() == ["reg/a:1"]
    assert other.unused_since(4000.0) == []
    assert other.unused_since(6000.0) == ["reg/a:1"]
    other.forget("reg/a:1")
    assert record.tags() == []


def _value(exposition: str, series: str) -> float:
    [line] = [line for line in exposition.splitlines() if line.startswith(series + " ")]
    return float(line.split()[-1])
