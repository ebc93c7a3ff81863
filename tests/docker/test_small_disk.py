"""A small Docker data root: its free space is shown, and a full one triggers the image clean-up.

A second daemon of the test's own (``scripts/second-dockerd.sh``, never the
machine's shared one) keeps its images and containers on a tmpfs of 256 MB:
its ``DockerRootDir`` is that tmpfs, the disk watch reads its size and warns
once under the threshold. Then images pulled from a loopback registry are
recorded as pulled long ago; with the tmpfs filled, the next pull meets "no
space left on device": the clean-up removes, by tag, the old image no
container uses, keeps the one a container uses, and the job fails as the
administrator's error (handed back to the queue), not the participant's.

Needs root (a daemon, a mount); skipped otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from opthub_runner_admin.demo.images import build_busybox_image
from opthub_runner_admin.errors import AdminError
from opthub_runner_admin.executor import ImageNotAvailable, RunSpec
from opthub_runner_admin.executor.docker import DockerExecutor, ImagePolicy
from opthub_runner_admin.executor.docker.data_root import docker_data_root
from opthub_runner_admin.executor.docker.image_cleanup import ImageCleanup, PulledImages
from opthub_runner_admin.host.disk import disk_space
from opthub_runner_admin.observe.disk import DiskWatch
from opthub_runner_admin.observe.metrics import RunnerMetrics
from opthub_runner_admin.platform_side.second_daemon import second_dockerd
from opthub_runner_admin.runner.disks import disk_report
from tests.support.registry import LoopbackRegistry, serve

DATA = Path("/var/lib/opthub-test-smalldisk")
SIZE = 256 * 1024**2
DAEMON_ENV = {
    "OPTHUB_BENCH_STATE": "/run/opthub-test-smalldisk",
    "OPTHUB_BENCH_DATA": str(DATA),
    "OPTHUB_BENCH_BRIDGE": "osd0",
    "OPTHUB_BENCH_SUBNET": "172.31.242.1/24",
}
ANSWER = "IFS= read -r line\necho '{\"objective\": 1}'\n"
DAY = 86400.0
#: Bytes left free on the filled disk: room for Docker's own bookkeeping, not for a layer.
ROOM = 1024**2
#: The new image's own layer: larger than that room (random text does not compress away).
BIG_LAYER = 4 * 1024**2

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_daemon(docker_client: docker.DockerClient) -> Iterator[str]:
    """DOCKER_HOST of a daemon whose data root is a 256 MB tmpfs; gone afterwards."""
    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("a second Docker daemon on a tmpfs needs root and dockerd")
    DATA.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE}", "opthub-smalldisk", str(DATA)], check=True
    )
    try:
        started = second_dockerd("start", DAEMON_ENV, timeout=120)
        assert started.returncode == 0, started.stderr
        try:
            yield started.stdout.strip().splitlines()[-1]
        finally:
            stopped = second_dockerd("stop", DAEMON_ENV, timeout=120)
            assert stopped.returncode == 0, stopped.stderr
    finally:
        subprocess.run(["umount", str(DATA)], check=False)


def test_the_small_data_root_is_shown_and_warned_about_once(
    small_daemon: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = docker.DockerClient(base_url=small_daemon)
    root = docker_data_root(client, small_daemon)
    assert root == DATA
    assert docker_data_root(client, "tcp://10.0.0.1:2375") is None  # another host's disk
    space = disk_space("docker", root)
    assert space is not None
    assert space.size == os.statvfs(DATA).f_blocks * os.statvfs(DATA).f_frsize
    assert 200 * 1024**2 < space.size <= SIZE
    metrics = RunnerMetrics(mode="evaluator")
    watch = DiskWatch(paths={"docker": root}, events=metrics, warn_below=1024**3)
    with caplog.at_level(logging.WARNING):
        watch.sample()
        watch.sample()
    warned = [r.getMessage() for r in caplog.records if "disk_warning_below" in r.getMessage()]
    assert len(warned) == 1 and str(DATA) in warned[0]
    exposition = metrics.exposition().decode()
    [line] = [
        line
        for line in exposition.splitlines()
        if line.startswith('opthub_runner_disk_size_bytes{mode="evaluator",path="docker"} ')
    ]
    assert float(line.split()[-1]) == space.size
    ok, detail = disk_report({"docker": root}, 1024**3)
    assert not ok and "under 1.0 GiB" in detail
    client.close()


@contextlib.contextmanager
def _filled(folder: Path) -> Iterator[None]:
    """Fill ``folder``'s file system but for ``ROOM`` bytes, for the block.

    Docker needs a few kilobytes to remove an image (it rewrites its list of
    tags first): a disk full to the last byte is not what a pull meets, which
    fails on a layer larger than what is left.
    """
    filler = folder / "opthub-test-filler"
    try:
        with open(filler, "wb", buffering=0) as out:
            for chunk in (1024**2, 4096, 1):  # to the last byte
                with contextlib.suppress(OSError):
                    while True:
                        out.write(b"\0" * chunk)
            out.truncate(max(0, out.tell() - ROOM))
        yield
    finally:
        filler.unlink(missing_ok=True)


def test_no_space_at_a_pull_removes_old_pulled_images_but_never_one_a_container_uses(
    small_daemon: str, tmp_path: Path
) -> None:
    client = docker.DockerClient(base_url=small_daemon)
    with contextlib.contextmanager(serve)(LoopbackRegistry()) as registry:
        pulls = {}
        padding = {"new": "# " + base64.b64encode(os.urandom(BIG_LAYER * 3 // 4)).decode() + "\n"}
        for name in ("old", "kept", "new"):
            script = f"# {name}\n{padding.get(name, '')}{ANSWER}"
            local = build_busybox_image(client, f"opthub-test/small-{name}:build", script)
            pulls[name] = registry.publish(client, local, f"small/{name}", "1")
            client.api.remove_image(local)  # by tag: only the registry has it now
        recorded_at = [0.0]
        record = PulledImages(path=tmp_path / "pulled.json", clock=lambda: recorded_at[0])
        removed: list[str] = []
        cleanup = ImageCleanup(
            api=client.api,
            record=record,
            after=7 * DAY,
            on_removed=removed.append,
            clock=lambda: 30 * DAY,
        )
        executor = DockerExecutor(
            client=client, images=ImagePolicy(pull_attempts=1), image_cleanup=cleanup
        )
        for name in ("old", "kept"):
            execution = executor.run(RunSpec(pulls[name], ["[1]"], timeout=60), threading.Event())
            assert execution.exit_code == 0, execution.stderr
        assert record.tags() == sorted([pulls["old"], pulls["kept"]])
        # A container (as a warm one would) uses the kept image.
        holder = client.api.create_container(pulls["kept"], labels={"opthub-test": "small-disk"})
        try:
            with _filled(DATA), pytest.raises(ImageNotAvailable) as failed:
                executor.run(RunSpec(pulls["new"], ["[1]"], timeout=60), threading.Event())
            assert isinstance(failed.value, AdminError)  # the job goes back: nobody's failure
            assert "no space left on device" in str(failed.value).lower()
            assert removed == [pulls["old"]]
            with pytest.raises(docker.errors.ImageNotFound):
                client.api.inspect_image(pulls["old"])
            client.api.inspect_image(pulls["kept"])  # still there: a container uses it
            assert record.tags() == [pulls["kept"]]
        finally:
            client.api.remove_container(holder, force=True)
            executor.close()
    client.close()
