"""``opthub-runner try``: real images on the real Docker daemon, the real CLI as a subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support.docker_fixtures import TEST_IMAGE_PREFIX, ImageFactory

#: Prints the objective from $SCALE times the first number, reporting its stderr too.
ENV_SCRIPT = r"""
read line
echo "scale is $SCALE" >&2
echo "{\"objective\": $SCALE}"
"""
CRASH_SCRIPT = r"""
echo "Traceback: boom in the image" >&2
exit 3
"""
SLOW_SCRIPT = r"""
sleep 30
echo '{"objective": 1}'
"""
#: Holds ~20 MiB in memory for a few seconds, then answers.
HUNGRY_SCRIPT = r"""
read line
x=$(head -c 20000000 /dev/zero | tr '\0' a)
sleep 2
echo '{"objective": 1}'
"""


def run_try(
    *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "opthub_runner_admin.cli", "try", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback (most recent call last)" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_problem_success_prints_result_participant_view_and_details(sphere_image: str) -> None:
    result = run_try("problem", sphere_image, "--solution", "[1, 2]")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert 'result: {"objective": 5, "constraint": null, "info": {}, "feasible": null}' in lines
    assert "participant sees: Success" in lines
    assert "  exit code: 0" in lines
    assert any(line.startswith("  duration: ") for line in lines)
    assert any(line.startswith("  peak memory: ") for line in lines)
    # Its CPU time from the container's cgroup, or why not (a run ended before its first reading).
    (cpu,) = [line for line in lines if line.startswith("  CPU time: ")]
    assert re.fullmatch(r"  CPU time: (\d+\.\d\d s|not measured: .+)", cpu), cpu


def test_solution_from_a_file_and_from_stdin(sphere_image: str, tmp_path: Path) -> None:
    path = tmp_path / "solution.json"
    path.write_text("[3, 4]")

    from_file = run_try("problem", sphere_image, "--solution-file", str(path))
    from_stdin = run_try("problem", sphere_image, stdin="[2]")

    assert '"objective": 25' in from_file.stdout
    assert '"objective": 4' in from_stdin.stdout


def test_an_image_reported_error_fails_with_its_text(sphere_image: str) -> None:
    result = run_try("problem", sphere_image, "--solution", '"not numbers"')

    assert result.returncode == 1
    assert "participant sees: Failed: expected a JSON array of numbers" in result.stdout
    assert "the problem program reported an error" in result.stdout


def test_a_crash_shows_the_participant_the_short_text_and_the_admin_the_stderr(
    image_factory: ImageFactory,
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}try-crash:latest", CRASH_SCRIPT)

    result = run_try("problem", image, "--solution", "[1]")

    assert result.returncode == 1
    participant = next(
        line for line in result.stdout.splitlines() if line.startswith("participant")
    )
    assert participant == (
        "participant sees: Failed: The evaluation failed: the problem program printed no"
        " result. Check that the solution has the format the problem expects."
    )
    assert "boom" not in participant
    assert "  exit code: 3" in result.stdout
    assert "Traceback: boom in the image" in result.stdout


def test_the_configured_timeout_applies(image_factory: ImageFactory, tmp_path: Path) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}try-slow:latest", SLOW_SCRIPT)
    config = tmp_path / "config.yml"
    config.write_text(yaml.safe_dump({"region_name": "r", "table_name": "t", "timeout": 1}))

    result = run_try("problem", image, "--config", str(config), "--solution", "[1]")

    assert result.returncode == 1
    assert "(timeout 1 s)" in result.stdout
    assert "participant sees: Failed: The evaluation timed out" in result.stdout
    assert "exit code: none (killed at the timeout)" in result.stdout


def test_environment_from_flags_and_from_a_match(
    image_factory: ImageFactory, tmp_path: Path
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}try-env:latest", ENV_SCRIPT)
    match_id = "3b7c0b1e-0000-4000-8000-000000000001"
    (tmp_path / "matches.yml").write_text(
        yaml.safe_dump(
            {
                match_id: {
                    "problem": {"image": image, "environment": {"SCALE": 7}},
                    "indicator": {"image": image},
                }
            }
        )
    )
    config = tmp_path / "config.yml"
    config.write_text(
        yaml.safe_dump({"region_name": "r", "table_name": "t", "matches_file": "matches.yml"})
    )

    flagged = run_try("problem", image, "-e", "SCALE=2", "--solution", "[1]")
    from_match = run_try(
        "problem", image, "--config", str(config), "--match", match_id, "--solution", "[1]"
    )
    overridden = run_try(
        "problem", image, "--config", str(config), "--match", f"Match#{match_id}",
        "-e", "SCALE=9", "--solution", "[1]",
    )  # fmt: skip

    assert '"objective": 2' in flagged.stdout
    assert '"objective": 7' in from_match.stdout
    assert "scale is 7" in from_match.stdout
    assert '"objective": 9' in overridden.stdout


def test_indicator_with_history_file(best_so_far_image: str, tmp_path: Path) -> None:
    history = tmp_path / "history.json"
    earlier = {"trial_no": "1", "objective": 2.0, "constraint": None, "info": {}}
    history.write_text(json.dumps([{**earlier, "feasible": None, "score": 2.0}]))

    better = run_try(
        "indicator", best_so_far_image, "--current", '{"objective": 1.5}',
        "--history", str(history),
    )  # fmt: skip
    worse = run_try(
        "indicator", best_so_far_image, "--current", '{"objective": 3}',
        "--history", str(history),
    )  # fmt: skip

    assert better.returncode == 0, better.stderr
    assert 'result: {"score": 1.5}' in better.stdout
    assert 'result: {"score": 2' in worse.stdout


def test_peak_memory_is_reported_for_a_container_that_lives_long_enough(
    image_factory: ImageFactory,
) -> None:
    image = image_factory(f"{TEST_IMAGE_PREFIX}try-hungry:latest", HUNGRY_SCRIPT)

    result = run_try("problem", image, "--solution", "[1]")

    assert result.returncode == 0, result.stderr
    peak = next(line for line in result.stdout.splitlines() if "peak memory" in line)
    mib = float(peak.split(":")[1].split()[0])
    assert mib >= 10, peak


def test_peak_memory_is_reported_for_a_short_run_too(sphere_image: str) -> None:
    # The sphere script ends in milliseconds, before any docker stats sample: the figure
    # is the kernel's own peak in the container's cgroup, where this machine can read it.
    local = any(
        Path(folder).is_dir()
        for folder in ("/sys/fs/cgroup/memory/docker", "/sys/fs/cgroup/docker")
    ) or any(Path("/sys/fs/cgroup/system.slice").glob("docker-*.scope"))
    result = run_try("problem", sphere_image, "--solution", "[1, 2]")

    assert result.returncode == 0, result.stderr
    peak = next(line for line in result.stdout.splitlines() if "peak memory" in line)
    if local:
        assert re.fullmatch(
            r"  peak memory: \d+\.\d MiB \(the container's own"
            r" (memory\.peak|memory\.max_usage_in_bytes)\)",
            peak,
        ), peak
    else:  # Docker elsewhere (Docker Desktop, a remote host): the output says why not
        assert "this machine cannot read the container's cgroup" in peak, peak


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--solution", "[1,"], "the solution is not JSON"),
        (["--solution", "[1]", "--solution-file", "x.json"], "not both"),
        (["--solution", "[1]", "--match", "m"], "--match needs a config"),
        (["--solution", "[1]", "-e", "NOEQUALS"], "-e expects KEY=VALUE"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    sphere_image: str, args: list[str], expected: str
) -> None:
    result = run_try("problem", sphere_image, *args)

    assert result.returncode == 2
    assert expected in result.stderr
    assert_one_line_error(result)


def test_bad_current_for_an_indicator(best_so_far_image: str) -> None:
    result = run_try("indicator", best_so_far_image, "--current", "[1]")

    assert result.returncode == 2
    assert "--current must be an evaluation object" in result.stderr


def test_a_missing_image_cannot_run(docker_client: object) -> None:
    result = run_try("problem", f"{TEST_IMAGE_PREFIX}no-such-image:never", "--solution", "[1]")

    assert result.returncode == 3
    assert "the image could not be run" in result.stderr
    assert "is not available" in result.stderr
    assert_one_line_error(result)


def test_docker_unreachable_cannot_run(tmp_path: Path) -> None:
    dead = tmp_path / "dead.sock"
    result = run_try(
        "problem", "any:latest", "--solution", "[1]", env={"DOCKER_HOST": f"unix://{dead}"}
    )

    assert result.returncode == 3
    assert "Unable to communicate with Docker" in result.stderr
    assert_one_line_error(result)
