"""``pause`` and ``resume`` select like ``stop``; a runner's pid file carries its state."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from opthub_runner_admin.host import pidfiles
from opthub_runner_admin.model import RunnerScope


def cli(runtime: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", *args],
        env={**os.environ, "XDG_RUNTIME_DIR": str(runtime)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_pause_with_nothing_running(tmp_path: Path) -> None:
    for verb in ("pause", "resume"):
        result = cli(tmp_path / "run", verb)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "No running opthub-runner found on this machine."


def test_pause_asks_which_competition_when_several_run(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    folder = runtime / "opthub-runner"
    folder.mkdir(parents=True)
    sleepers = [
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "opthub-runner"])
        for _ in range(2)
    ]
    try:
        for process, table in zip(sleepers, ("table-a", "table-b"), strict=True):
            (folder / f"evaluator-{process.pid}.pid").write_text(
                f"{process.pid}\nqueue=https://sqs.example/1/{table}\ntable={table}\n"
            )
        result = cli(runtime, "pause")
        assert result.returncode == 2
        assert result.stderr.strip() == (
            "Error: runners of 2 tables run on this machine (table-a, table-b): pass --config"
            " with the config.yml of the competition to pause, or --all to pause them all"
        )
        assert all(process.poll() is None for process in sleepers)  # nobody was signalled
    finally:
        for process in sleepers:
            process.kill()
            process.wait()


def test_a_runner_of_an_earlier_version_is_not_signalled(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    folder = runtime / "opthub-runner"
    folder.mkdir(parents=True)
    older = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "opthub-runner"])
    try:
        # What a runner before pause wrote: no state line (SIGUSR1 would end it).
        (folder / f"evaluator-{older.pid}.pid").write_text(
            f"{older.pid}\nqueue=https://sqs.example/1/q\ntable=t\n"
        )
        result = cli(runtime, "pause")
        assert result.returncode == 1
        assert result.stderr.strip() == (
            f"Error: evaluator (pid {older.pid}, queue https://sqs.example/1/q, table t) is of"
            " an earlier version, which has no pause (the signal would end it): nothing was"
            " signalled; stop it and start it again to pause it"
        )
        assert older.poll() is None
    finally:
        older.kill()
        older.wait()


CHILD = """
import sys
from pathlib import Path
from opthub_runner_admin.host import pidfiles
from opthub_runner_admin.model import RunnerScope
scope = RunnerScope(queue_url="https://sqs.example/1/q", table_name="t")
with pidfiles.registered("scorer", scope, folder=Path(sys.argv[1])) as path:
    for line in sys.stdin:
        pidfiles.write_state(path, scope, line.strip())
        print("written", flush=True)
"""


def test_the_pid_file_says_what_the_runner_does(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path), "opthub-runner"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None and process.stdout is not None
    seen = []
    try:
        for state in ("paused, login needed", ""):
            process.stdin.write(f"{state}\n")
            process.stdin.flush()
            assert process.stdout.readline() == "written\n"
            seen.append(pidfiles.running(folder=tmp_path))
    finally:
        process.stdin.close()
        process.wait(10)
    scope = RunnerScope(queue_url="https://sqs.example/1/q", table_name="t")
    assert [[(r.pid, r.scope, r.state) for r in found] for found in seen] == [
        [(process.pid, scope, "paused, login needed")],
        [(process.pid, scope, "")],
    ]
    assert pidfiles.running(folder=tmp_path) == []  # removed at the end
