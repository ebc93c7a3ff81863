"""The Spot interruption watch against a real IMDSv2 server: drain at once, hand back in time."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone

import pytest

from opthub_runner_admin.errors import TransientError
from opthub_runner_admin.executor import Cancelled
from opthub_runner_admin.host.instance_metadata import InstanceMetadata
from opthub_runner_admin.jobs.outcome import Done, JobContext, Outcome
from opthub_runner_admin.platform_side.runners import wait_for
from opthub_runner_admin.queue import Message
from opthub_runner_admin.queue.memory import MemoryQueue
from opthub_runner_admin.runner.spot_watch import SpotWatch
from tests.support.instance_metadata import MetadataServer, metadata_server
from tests.unit.test_worker import Recorder, run_in_thread, worker_for

__all__ = ["metadata_server"]  # the fixture, for pytest


def _cancellable(message: Message, ctx: JobContext) -> Outcome:
    if ctx.cancel.wait(30):
        raise Cancelled("stopped")
    return Done("ok")


def test_the_server_refuses_a_read_without_a_token(metadata_server: MetadataServer) -> None:
    # IMDSv2 only: the client must take a token first, as the real service demands.
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{metadata_server.url}/latest/meta-data/instance-id", timeout=2)
    assert refused.value.code == 401
    metadata = InstanceMetadata(base_url=metadata_server.url)
    assert metadata.instance_id() == metadata_server.instance_id
    assert metadata.spot_notice() is None  # 404: no interruption
    when = datetime(2026, 12, 7, 1, 2, 3, tzinfo=timezone.utc)
    metadata_server.announce(when)
    notice = metadata.spot_notice()
    assert notice is not None and notice.action == "terminate" and notice.time == when


def test_no_metadata_service_is_one_clear_error() -> None:
    metadata = InstanceMetadata(base_url="http://127.0.0.1:9", timeout=0.5)
    with pytest.raises(TransientError, match="is this an EC2 instance"):
        metadata.spot_notice()


def test_a_notice_drains_at_once_and_hands_back_before_the_instance_goes(
    metadata_server: MetadataServer,
) -> None:
    queue = MemoryQueue()
    queue.send("first")
    queue.send("second")
    handler = Recorder(_cancellable)
    worker = worker_for(queue, handler, visibility_window=60)
    watch = SpotWatch(
        source=InstanceMetadata(base_url=metadata_server.url),
        worker=worker,
        check_seconds=0.1,
        margin=30,
    )
    thread = run_in_thread(worker)
    assert handler.started.wait(10)
    watch.start()
    # The instance goes in 31 s: the jobs may run 1 s more, then they are handed back.
    metadata_server.announce(datetime.now(timezone.utc) + timedelta(seconds=31))
    try:
        thread.join(15)
        assert not thread.is_alive(), "the runner did not drain on the notice"
    finally:
        watch.close()
    assert watch.notice is not None
    assert len(handler.seen) == 1  # no second message taken after the notice
    assert worker.stats.cancelled == 1 and worker.stats.done == 0
    assert queue.visible_count() == 2  # handed back at once, the other never taken


def test_a_job_that_ends_in_time_is_not_cut(metadata_server: MetadataServer) -> None:
    queue = MemoryQueue()
    queue.send("short")
    release = threading.Event()
    handler = Recorder(lambda m, c: Done("ok") if release.wait(10) else Done("late"))
    worker = worker_for(queue, handler)
    watch = SpotWatch(
        source=InstanceMetadata(base_url=metadata_server.url), worker=worker, check_seconds=0.1
    )
    thread = run_in_thread(worker)
    assert handler.started.wait(10)
    watch.start()
    metadata_server.announce(datetime.now(timezone.utc) + timedelta(minutes=2))
    try:
        wait_for(lambda: watch.notice, 10, "the watch to read the notice")
        assert worker.stopping  # drained at once: no new message will be taken
        release.set()
        thread.join(15)
        assert not thread.is_alive()
    finally:
        watch.close()
    assert worker.stats.done == 1 and worker.stats.cancelled == 0
    assert queue.visible_count() == 0 and queue.in_flight_count() == 0
