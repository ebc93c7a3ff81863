"""Holds and the login where an operator looks: status line, /healthz, the page, the metrics."""

from __future__ import annotations

import logging
import time

import pytest

from opthub_runner_admin.auth.login_state import login_state
from opthub_runner_admin.config.schema import Config
from opthub_runner_admin.observe.holds import LOGIN_NEEDED, PAUSED, Hold
from opthub_runner_admin.observe.long_pause import LongPauseWarning
from opthub_runner_admin.observe.monitor import Monitor
from opthub_runner_admin.observe.status import status_line
from opthub_runner_admin.worker.hold import Holds

from .test_observe import Clock, get, samples

DAY = 86400.0
LABEL = "{mode=evaluator}"


def test_a_pause_is_healthy_a_login_needed_is_not_and_both_are_shown() -> None:
    clock = Clock()
    config = Config(
        region_name="r", table_name="t", metrics_port=0, health_stall_seconds=60, timeout=600
    )
    monitor = Monitor(mode="evaluator", config=config, stats=lambda: None, clock=clock)
    holds = Holds(name="evaluator", events=monitor.events)
    given = time.time() - 3 * DAY
    monitor.events.login_changed(login_state("admin", given, 30 * DAY))
    monitor.start()
    try:
        assert monitor.server is not None
        base = f"http://127.0.0.1:{monitor.server.address[1]}"
        before = samples(get(f"{base}/metrics")[1])
        holds.hold(PAUSED, "opthub-runner resume takes jobs again")
        clock.now += 600  # no poll for far longer than the stall time: paused on purpose
        paused_health = get(f"{base}/healthz")
        paused_metrics = samples(get(f"{base}/metrics")[1])
        paused_line = status_line("evaluator", monitor.board.snapshot())
        holds.release(PAUSED)
        monitor.events.polled()
        holds.hold(LOGIN_NEEDED, "the OptHub login of admin has ended")
        monitor.events.login_changed(login_state("admin", given, 30 * DAY, needed="ended"))
        login_health = get(f"{base}/healthz")
        login_metrics = samples(get(f"{base}/metrics")[1])
        page = get(f"{base}/")[1]
    finally:
        monitor.stop()

    assert before[f"opthub_runner_paused{LABEL}"] == 0
    assert before[f"opthub_runner_login_needed{LABEL}"] == 0
    assert 3 * DAY <= before[f"opthub_runner_login_age_seconds{LABEL}"] < 3 * DAY + 60
    assert 27 * DAY - 60 < before[f"opthub_runner_login_remaining_seconds{LABEL}"] <= 27 * DAY

    assert paused_health[0] == 200
    assert paused_health[1].startswith("ok (PAUSED for ")
    assert paused_metrics[f"opthub_runner_paused{LABEL}"] == 1
    assert "; PAUSED for " in paused_line and "opthub-runner resume" in paused_line

    assert login_health == (
        503,
        "unhealthy: not ready: the OptHub login of admin has ended\n",
    )
    assert login_metrics[f"opthub_runner_paused{LABEL}"] == 0
    assert login_metrics[f"opthub_runner_login_needed{LABEL}"] == 1
    assert login_metrics[f"opthub_runner_login_remaining_seconds{LABEL}"] == 0
    assert 'id="hold-login-needed"' in page and "LOGIN NEEDED for" in page
    assert 'id="login" class="login alert"' in page
    assert "logged in as admin · password given 3.0 days ago" in page


def test_a_long_pause_is_warned_of_once_per_period(caplog: pytest.LogCaptureFixture) -> None:
    warning = LongPauseWarning(mode="scorer", after=3600)
    pause = {PAUSED: Hold(PAUSED, "maintenance", since=1000.0)}
    login = {LOGIN_NEEDED: Hold(LOGIN_NEEDED, "ended", since=0.0)}

    with caplog.at_level(logging.WARNING):
        said = [
            warning.check(pause, 1000.0 + 3599),  # not yet
            warning.check(pause, 1000.0 + 3600),  # an hour: warned
            warning.check(pause, 1000.0 + 5000),  # the same period: not again
            warning.check(pause, 1000.0 + 7300),  # two hours: again
            warning.check(login, 1000.0 + 99999),  # no pause: nothing
            warning.check({PAUSED: Hold(PAUSED, "next", since=9000.0)}, 9000.0 + 3600),
        ]

    assert said == [False, True, False, True, False, True]
    lines = [r.getMessage() for r in caplog.records if r.name.endswith("long_pause")]
    assert len(lines) == 3
    assert lines[0].startswith("scorer: paused for 60 min: SQS deletes a message once")
