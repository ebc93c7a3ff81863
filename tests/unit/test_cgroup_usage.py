"""The cgroup files of a container's figures, on fake cgroup trees of both versions.

This machine's Docker may run either version; the layout of the other one is
held here: cgroup v2's ``memory.peak`` and ``cpu.stat`` (``usage_usec``), v1's
``memory.max_usage_in_bytes`` and ``cpuacct.usage`` (nanoseconds) in
hierarchies of their own, each under Docker's cgroupfs and systemd names and
under a daemon's own ``--cgroup-parent``. Reading goes through the same code
as on the real tree (open, pread); a removed folder ends the watch with the
last reading standing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from opthub_runner_admin.executor.docker.cgroup_layout import CgroupLayout
from opthub_runner_admin.executor.docker.cgroups import (
    Figures,
    UsageMeter,
    UsageWatch,
    finish,
    remote_reason,
)

ID = "0123456789abcdef" * 4
MIB = 1024 * 1024


def _v2(root: Path, folder: str, *, peak: int | None, usec: int) -> Path:
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    cgroup = root / folder
    cgroup.mkdir(parents=True)
    if peak is not None:
        (cgroup / "memory.peak").write_text(f"{peak}\n")
    (cgroup / "memory.current").write_text(f"{MIB}\n")
    (cgroup / "cpu.stat").write_text(
        f"usage_usec {usec}\nuser_usec {usec // 2}\nsystem_usec {usec // 2}\n"
    )
    return cgroup


def _v1(root: Path, folder: str, *, peak: int, ns: int, cpu_dir: str = "cpuacct") -> None:
    memory = root / "memory" / folder
    memory.mkdir(parents=True)
    (memory / "memory.max_usage_in_bytes").write_text(f"{peak}\n")
    cpu = root / cpu_dir / folder
    cpu.mkdir(parents=True)
    (cpu / "cpuacct.usage").write_text(f"{ns}\n")


@pytest.mark.parametrize("folder", [f"docker/{ID}", f"system.slice/docker-{ID}.scope"])
def test_cgroup_v2_figures_are_memory_peak_and_usage_usec(tmp_path: Path, folder: str) -> None:
    _v2(tmp_path, folder, peak=64 * MIB, usec=1_250_000)
    layout = CgroupLayout(root=tmp_path)
    assert layout.version == 2
    files = layout.files(ID)
    assert files is not None and files.memory.endswith(f"{folder}/memory.peak")
    figures = finish(UsageMeter(layout=layout).start(ID))
    assert figures == Figures(64 * MIB, 1.25, "")


def test_cgroup_v2_without_memory_peak_takes_the_highest_memory_current(tmp_path: Path) -> None:
    _v2(tmp_path, f"docker/{ID}", peak=None, usec=10)
    figures = finish(UsageMeter(layout=CgroupLayout(root=tmp_path)).start(ID))
    assert figures.peak_memory == MIB
    assert "memory.current" in figures.not_measured


@pytest.mark.parametrize("cpu_dir", ["cpuacct", "cpu,cpuacct"])
@pytest.mark.parametrize("folder", [f"docker/{ID}", f"system.slice/docker-{ID}.scope"])
def test_cgroup_v1_figures_are_max_usage_and_cpuacct_usage(
    tmp_path: Path, folder: str, cpu_dir: str
) -> None:
    _v1(tmp_path, folder, peak=3 * MIB, ns=2_500_000_000, cpu_dir=cpu_dir)
    layout = CgroupLayout(root=tmp_path)
    assert layout.version == 1
    assert finish(UsageMeter(layout=layout).start(ID)) == Figures(3 * MIB, 2.5, "")


def test_cgroup_v2_memory_kills_are_memory_events_oom_kill(tmp_path: Path) -> None:
    cgroup = _v2(tmp_path, f"docker/{ID}", peak=32 * MIB, usec=1)
    (cgroup / "memory.events").write_text("low 0\nhigh 0\nmax 57\noom 1\noom_kill 1\n")
    figures = finish(UsageMeter(layout=CgroupLayout(root=tmp_path)).start(ID))
    assert figures == Figures(32 * MIB, 1e-6, "", memory_kills=1)


def test_cgroup_v1_memory_kills_are_memory_oom_control_oom_kill(tmp_path: Path) -> None:
    _v1(tmp_path, f"docker/{ID}", peak=MIB, ns=1)
    control = tmp_path / "memory" / "docker" / ID / "memory.oom_control"
    control.write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert finish(UsageMeter(layout=CgroupLayout(root=tmp_path)).start(ID)).memory_kills == 2


def test_a_kernel_without_the_kill_count_leaves_it_unread(tmp_path: Path) -> None:
    # Before Linux 4.13 memory.oom_control has no oom_kill line; the figures still stand.
    _v1(tmp_path, f"docker/{ID}", peak=MIB, ns=1)
    control = tmp_path / "memory" / "docker" / ID / "memory.oom_control"
    control.write_text("oom_kill_disable 0\nunder_oom 0\n")
    assert finish(UsageMeter(layout=CgroupLayout(root=tmp_path)).start(ID)) == Figures(
        MIB, 1e-9, ""
    )


def test_a_daemons_own_cgroup_parent_is_found_and_remembered(tmp_path: Path) -> None:
    _v1(tmp_path, f"opthub-bench/{ID}", peak=MIB, ns=1)
    layout = CgroupLayout(root=tmp_path)
    assert layout.files(ID) is not None
    other = "f" * 64
    _v1(tmp_path, f"opthub-bench/{other}", peak=MIB, ns=1)
    # Remembered: found under the learned parent without searching (the search is gone).
    shutil.rmtree(tmp_path / "memory" / "opthub-bench" / ID)
    found = layout.files(other)
    assert found is not None and f"opthub-bench/{other}" in found.memory


def test_another_daemons_default_folders_do_not_hide_this_daemons_parent(
    tmp_path: Path,
) -> None:
    # The host's own Docker (docker/...) beside a daemon started with --cgroup-parent
    # (a second daemon, as the suite's): its first container must still be found.
    _v1(tmp_path, f"docker/{'e' * 64}", peak=MIB, ns=1)
    _v1(tmp_path, f"opthub-bench/{ID}", peak=2 * MIB, ns=1)
    meter = UsageMeter(layout=CgroupLayout(root=tmp_path))
    assert finish(meter.start(ID)).peak_memory == 2 * MIB


def test_no_cgroup_of_the_container_says_so(tmp_path: Path) -> None:
    _v2(tmp_path, "elsewhere/someone-else", peak=MIB, usec=1)
    figures = finish(UsageMeter(layout=CgroupLayout(root=tmp_path)).start(ID))
    assert figures.peak_memory is None and figures.cpu_seconds is None
    assert figures.not_measured.startswith("not measured: no cgroup of the container")


def test_the_last_reading_stands_when_the_cgroup_goes(tmp_path: Path) -> None:
    cgroup = _v2(tmp_path, f"docker/{ID}", peak=8 * MIB, usec=500_000)
    files = CgroupLayout(root=tmp_path).files(ID)
    assert files is not None
    watch = UsageWatch(files=files).start()
    shutil.rmtree(cgroup)  # the files stay open; a real cgroup's then fail (ENODEV)
    assert watch.finish() == Figures(8 * MIB, 0.5, "")


def test_a_container_gone_before_its_first_reading_is_not_measured(tmp_path: Path) -> None:
    cgroup = _v2(tmp_path, f"docker/{ID}", peak=MIB, usec=1)
    files = CgroupLayout(root=tmp_path).files(ID)
    assert files is not None
    shutil.rmtree(cgroup)
    figures = UsageWatch(files=files).start().finish()
    assert figures.peak_memory is None
    assert figures.not_measured == "not measured: the container ended before its first reading"


@pytest.mark.parametrize(
    ("url", "how"),
    [
        ("http://10.0.0.5:2375", "http"),
        ("https://docker.example:2376", "https"),
        ("http+docker://ssh", "ssh"),
    ],
)
def test_a_remote_daemon_is_not_measured_and_says_why(tmp_path: Path, url: str, how: str) -> None:
    _v2(tmp_path, f"docker/{ID}", peak=MIB, usec=1)
    reason = remote_reason(url)
    assert reason is not None and f"reached over {how}," in reason
    figures = finish(UsageMeter.for_daemon(url, layout=CgroupLayout(root=tmp_path)).start(ID))
    assert figures == Figures(None, None, reason)


def test_the_local_unix_socket_is_measured() -> None:
    assert remote_reason("http+docker://localhost") is None


def test_once_the_layout_is_known_a_missing_cgroup_has_ended(tmp_path: Path) -> None:
    _v1(tmp_path, f"docker/{ID}", peak=MIB, ns=1)
    meter = UsageMeter(layout=CgroupLayout(root=tmp_path))
    assert finish(meter.start(ID)).peak_memory == MIB
    figures = finish(meter.start("e" * 64))
    assert figures.not_measured == "not measured: the container ended before its first reading"


def test_in_dockers_own_layout_a_missing_cgroup_has_ended(tmp_path: Path) -> None:
    _v2(tmp_path, f"system.slice/docker-{'e' * 64}.scope", peak=MIB, usec=1)
    figures = finish(UsageMeter(layout=CgroupLayout(root=tmp_path)).start(ID))
    assert figures.not_measured == "not measured: the container ended before its first reading"


def test_the_main_process_s_exit_ends_the_watch_with_a_reading_then(tmp_path: Path) -> None:
    import subprocess

    cgroup = _v2(tmp_path, f"docker/{ID}", peak=MIB, usec=1)
    main = subprocess.Popen(["sleep", "30"])
    (cgroup / "cgroup.procs").write_text(f"{main.pid}\n")
    files = CgroupLayout(root=tmp_path).files(ID)
    assert files is not None
    watch = UsageWatch(files=files).start()
    (cgroup / "memory.peak").write_text(f"{2 * MIB}\n")  # grown before the end
    main.kill()
    main.wait()
    thread = watch._thread
    assert thread is not None
    # The pidfd fires at the exit: the watch ends by itself (a file tree never goes away,
    # so without the pidfd it would read on until finish), after one more reading.
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert watch.finish() == Figures(2 * MIB, 1e-6, "")
