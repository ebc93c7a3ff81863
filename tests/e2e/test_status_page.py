"""The status page in a real headless Chromium, against a running runner with a job in flight.

The runner is the real CLI in a subprocess (moto server, real Docker). One
trial fails with the match's private value on its stderr; one names a match
nobody knows (an administrator's error: it goes back to the queue for 60 s);
another sleeps in its container while Chromium loads the page. The queue has
a dead-letter queue holding one message. The screenshot is saved in the
test's tmp dir (its path is printed) and the DOM is asserted on: the queue's
tiles, the two inline SVG charts, the table per match, the retried row's
reason, and that nothing is loaded from elsewhere (the page works offline).
"""

from __future__ import annotations

import dataclasses
import html
import re
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import docker
import pytest

from opthub_runner_admin.model import TrialRef
from opthub_runner_admin.platform_side.config_files import write_config
from opthub_runner_admin.platform_side.contract import (
    dead_letter_queue_name,
    put_solution,
    send_job,
)
from opthub_runner_admin.platform_side.runners import RunnerPool, wait_for
from opthub_runner_admin.platform_side.stack import AwsStack
from tests.support.docker_fixtures import TEST_IMAGE_PREFIX, ImageFactory
from tests.unit.test_observe import MATCH, base_url, get, submit

SECRET = "s3cr3t-value-4711"
#: [0] fails and shows its private environment on stderr; anything else sleeps.
SCRIPT = r"""
read line
case "$line" in
  "[0]") echo "token is $PRIVATE_TOKEN" >&2; exit 1 ;;
esac
sleep 120
echo '{"objective": 1}'
"""
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture
def runners(tmp_path: Path, docker_client: docker.DockerClient) -> Iterator[RunnerPool]:
    pool = RunnerPool(tmp_path, docker_client)
    try:
        yield pool
    finally:
        pool.cleanup()


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is required (scripts/setup.sh installs Debian's chromium)")
    return found


def browse(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    profile = tmp_path / "chromium-profile"
    return subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )


class Tables(HTMLParser):
    """The text of each cell of each table (by id), and the tags seen inside cells."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {}
        self.tags_in_cells: list[str] = []
        self.meta_refresh = False
        #: Every tag seen with its attributes, for the charts and what the page loads.
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self._table = ""
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.tags.append((tag, values))
        if tag == "meta" and values.get("http-equiv") == "refresh":
            self.meta_refresh = True
        if tag == "table":
            self._table = values.get("id") or ""
            self.rows[self._table] = []
        elif tag == "tr":
            self.rows[self._table].append([])
        elif tag == "td":
            self._cell = []
        elif self._cell is not None and tag != "span":  # the page's own markup in numbers
            self.tags_in_cells.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[self._table][-1].append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def test_status_page_in_headless_chromium_shows_a_job_in_flight(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    runners: RunnerPool,
    capsys: pytest.CaptureFixture[str],
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}status-page:latest", SCRIPT)
    matches = {
        MATCH: {
            "problem": {"image": image, "environment": {"PRIVATE_TOKEN": SECRET}},
            "indicator": {"image": image},
        }
    }
    # A queue with a dead-letter queue, one message already dead-lettered there.
    queue = aws.new_queue("status-page", dead_letter_max_receives=10)
    dlq = aws.clients.sqs.get_queue_url(QueueName=dead_letter_queue_name(queue.rsplit("/", 1)[-1]))[
        "QueueUrl"
    ]
    aws.clients.sqs.send_message(QueueUrl=dlq, MessageBody='{"TrialNo": "dead"}')
    stack = dataclasses.replace(aws, evaluator_queue_url=queue)
    config = write_config(
        tmp_path, stack, matches, metrics_port=0, log_level="INFO", timeout=300, status_interval=1
    )
    participant = "p<i>obs</i>"
    failing = submit(stack, "0001", [0], participant=participant)
    process = runners.start("evaluator", config)
    url = base_url(process)
    wait_for(lambda: "failed" in get(url + "/")[1], 90, "the failed trial on the page")
    unknown = TrialRef("no-such-match", participant, "0003")
    put_solution(aws.clients.dynamodb, aws.table_name, unknown, [1])
    send_job(aws.clients.sqs, queue, unknown)
    wait_for(lambda: "retried" in get(url + "/")[1], 90, "the retried trial on the page")
    slow = submit(stack, "0002", [5], participant=participant)
    wait_for(lambda: image in get(url + "/")[1], 90, "the slow trial's container in flight")
    wait_for(lambda: get(url + "/")[1].count("<circle") >= 2, 30, "two samples of the queue")

    screenshot = tmp_path / "status-page.png"
    shot = browse(tmp_path, url + "/", f"--screenshot={screenshot}", "--window-size=1280,1400")
    dom = browse(tmp_path, url + "/", "--dump-dom")
    with capsys.disabled():
        print(f"\nstatus page screenshot: {screenshot}")

    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.stat().st_size > 1000
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = Tables()
    page.feed(dom.stdout)
    in_flight = page.rows["in-flight"][1:]  # after the header row
    assert [row[:4] for row in in_flight] == [[participant, slow.trial_no, MATCH, image]]
    assert in_flight[0][4].endswith(("s", "min"))
    recent = page.rows["recent"][1:]
    assert [row[:3] for row in recent] == [
        [participant, unknown.trial_no, "retried"],
        [participant, failing.trial_no, "failed"],
    ]
    # The retried row says why, and when the message really comes back (not the 5 s backoff).
    assert "no-such-match" in recent[0][5] and recent[0][5].endswith("(back in 60 s)")
    assert "stdout is empty; exit code 1" in recent[1][5]
    assert "token is [redacted]" in recent[1][5]
    # One row per match that finished a trial: done, failed, median, last failure (redacted).
    [match_row] = page.rows["matches"][1:]
    assert match_row[:3] == [MATCH, "0", "1"]
    assert match_row[3].endswith(" s")
    assert "token is [redacted]" in match_row[4]
    # The queue as every runner sees it: the slow trial in flight, the retried copy
    # waiting out its 60 s, the dead letter counted.
    assert _tiles(dom.stdout) == {
        "visible": "0",
        "in-flight": "1",
        "delayed": "1",
        "oldest": "unknown",  # moto publishes no CloudWatch metric (see test_fleet_cli)
        "left-before-deletion": "unknown",  # so the time before SQS deletes it is unknown too
        "dead-letters": "1",
    }
    _check_charts_and_sources(page)
    assert SECRET not in dom.stdout
    assert page.tags_in_cells == []  # the participant id's <i> stayed text
    assert html.escape(participant) in get(url + "/")[1]
    assert page.meta_refresh


def _check_charts_and_sources(page: Tables) -> None:
    # Two charts drawn by the server: bars of jobs per minute, the depth as a line.
    svgs = [attrs for tag, attrs in page.tags if tag == "svg"]
    assert len(svgs) == 2
    assert any(tag == "rect" and attrs.get("class") == "bar" for tag, attrs in page.tags)
    assert any(tag == "polyline" and attrs.get("class") == "visible" for tag, attrs in page.tags)
    # Nothing from elsewhere: no script at all, every link and source on the page's own server.
    assert not any(tag == "script" for tag, _ in page.tags)
    for tag, attrs in page.tags:
        for name in ("src", "href"):
            target = attrs.get(name) or ""
            assert not target.startswith(("http:", "https:", "//")), (tag, target)


def _tiles(document: str) -> dict[str, str]:
    """The queue's tiles: id (without ``q-``) -> value."""
    found = re.findall(r'id="q-([a-z-]+)"><span class="value">([^<]*)</span>', document)
    return dict(found)
