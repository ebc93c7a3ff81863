"""Isolation settings without a daemon: config keys, Docker's host config, messages, redaction.

The real containers are in ``test_isolation_docker.py``; these pin what the
operator writes and what Docker is asked for, and the job-level decisions
(memory message, solution bound, redaction) through the in-memory seams.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

from opthub_runner_admin.config.loading import parse_config
from opthub_runner_admin.errors import ConfigError
from opthub_runner_admin.executor import Execution
from opthub_runner_admin.executor.limits import (
    ContainerLimits,
    GpuUnavailable,
    gpu_failure,
    host_config_kwargs,
)
from opthub_runner_admin.executor.stub import StubExecutor
from opthub_runner_admin.jobs.evaluate import EvaluateJob, interpret_evaluation
from opthub_runner_admin.jobs.outcome import Done, JobContext
from opthub_runner_admin.jobs.redaction import redact_failure
from opthub_runner_admin.matches import ImageSpec, MatchSpec
from opthub_runner_admin.model import Evaluation, Failure, TrialRef
from opthub_runner_admin.queue import Message
from opthub_runner_admin.runner.parts import container_limits
from opthub_runner_admin.settings.sizes import format_size, parse_size
from opthub_runner_admin.store.memory import MemoryStore
from tests.unit.test_jobs import ran

MINIMAL = "region_name: r\ntable_name: t\n"


# -- sizes ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [(1234, 1234), ("512m", 512 * 2**20), ("2g", 2 * 2**30), ("64MiB", 64 * 2**20), ("8 k", 8192)],
)
def test_sizes_read_as_docker_reads_them(text: int | str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "1.5g", "-1", "12x"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_sizes_print_for_people() -> None:
    assert [format_size(n) for n in (100, 1536, 64 * 2**20, 4 * 2**30)] == [
        "100 bytes",
        "1.5 KiB",
        "64 MiB",
        "4 GiB",
    ]


# -- config -----------------------------------------------------------------


def test_the_defaults_protect_the_host() -> None:
    config = parse_config(MINIMAL).config
    limits = container_limits(config)
    assert limits == ContainerLimits()  # the config's defaults are the executor's
    kwargs = host_config_kwargs(limits)
    assert kwargs["mem_limit"] == kwargs["memswap_limit"] == 4 * 2**30  # no swap
    assert kwargs["pids_limit"] == 1024
    (nofile,) = kwargs["ulimits"]
    assert (nofile.name, nofile.soft, nofile.hard) == ("nofile", 4096, 4096)
    assert kwargs["security_opt"] == ["no-new-privileges"]
    assert kwargs["cap_drop"] == ["ALL"]
    assert kwargs["log_config"].config == {"max-size": str(10 * 2**20), "max-file": "1"}
    assert kwargs["network_mode"] == "bridge"
    assert "read_only" not in kwargs and "device_requests" not in kwargs
    assert "nano_cpus" not in kwargs  # all CPUs: Docker refuses more CPUs than the host has
    assert config.max_solution_bytes == 2**20


def test_every_key_reaches_docker() -> None:
    config = parse_config(
        MINIMAL
        + """
memory: 512m
memory_swap: 1g
cpus: 1.5
pids_limit: 64
nofile: 256
network: none
read_only: true
tmpfs_size: 16m
user: 65534
no_new_privileges: false
cap_add: [chown, NET_BIND_SERVICE]
log_max_size: 1m
log_max_files: 3
gpus: [0, GPU-3f2c]
max_solution_bytes: 64k
"""
    ).config
    limits = container_limits(config)
    kwargs = host_config_kwargs(limits)
    assert (kwargs["mem_limit"], kwargs["memswap_limit"]) == (512 * 2**20, 2**30)
    assert kwargs["nano_cpus"] == 1_500_000_000
    assert kwargs["pids_limit"] == 64
    assert kwargs["ulimits"][0].soft == 256
    assert kwargs["network_mode"] == "none"
    assert kwargs["read_only"] is True
    assert kwargs["tmpfs"] == {"/tmp": f"rw,size={16 * 2**20},mode=1777"}
    assert "security_opt" not in kwargs
    assert kwargs["cap_add"] == ["CHOWN", "NET_BIND_SERVICE"]
    assert kwargs["log_config"].config == {"max-size": str(2**20), "max-file": "3"}
    (request,) = kwargs["device_requests"]
    assert request["DeviceIDs"] == ["0", "GPU-3f2c"] and request["Capabilities"] == [["gpu"]]
    assert limits.user == "65534"
    assert config.max_solution_bytes == 65536


def test_null_removes_a_limit_and_gpus_all_asks_for_every_gpu() -> None:
    config = parse_config(
        MINIMAL + "memory: null\npids_limit: null\nnofile: null\ngpus: all\n"
    ).config
    kwargs = host_config_kwargs(container_limits(config))
    assert not {"mem_limit", "memswap_limit", "pids_limit", "ulimits"} & set(kwargs)
    (request,) = kwargs["device_requests"]
    assert (request["Count"], request["Capabilities"]) == (-1, [["gpu"]])


@pytest.mark.parametrize(
    ("line", "named"),
    [
        ("memory: lots", "'memory' must be a size"),
        ("memory: 1m", "'memory' must be at least"),
        ("memory: 1g\nmemory_swap: 512m", "'memory_swap' is memory plus swap"),
        ("memory: null\nmemory_swap: 1g", "'memory_swap' needs 'memory'"),
        ("cpus: 0", "'cpus' must be a number of CPUs above 0"),
        ("pids_limit: 2", "'pids_limit' must be a whole number of at least 8"),
        ("nofile: many", "'nofile' must be a whole number"),
        ("network: host", "'network' must be one of bridge, none"),
        ("read_only: yes please", "'read_only' must be true or false"),
        ("cap_add: SYS_ADMIN", "'cap_add' must be a list"),
        ("gpus: some", "'gpus' must be all or a list"),
        ("max_solution_bytes: 0", "'max_solution_bytes' must be at least 1"),
        ("log_max_files: 0", "'log_max_files' must be at least 1"),
    ],
)
def test_bad_isolation_values_are_one_clear_line(line: str, named: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(MINIMAL + line + "\n")
    assert named in str(caught.value)
    assert "\n" not in str(caught.value)


def test_unlimited_swap() -> None:
    config = parse_config(MINIMAL + "memory_swap: -1\n").config
    assert host_config_kwargs(container_limits(config))["memswap_limit"] == -1


# -- GPU errors ---------------------------------------------------------------


def test_no_gpu_driver_is_the_administrators_error_naming_the_setting() -> None:
    reason = 'could not select device driver "" with capabilities: [[gpu]]'
    error = gpu_failure(reason, ContainerLimits(gpus="all"))
    assert isinstance(error, GpuUnavailable)
    assert "'gpus' setting" in str(error) and "gpus: all" in str(error) and reason in str(error)
    assert gpu_failure(reason, ContainerLimits()) is None  # not asked for GPUs: not ours
    assert gpu_failure("something else", ContainerLimits(gpus=("0",))) is None


# -- the memory kill ----------------------------------------------------------


def _killed_for_memory(stdout: str = "", exit_code: int | None = 137, **kw: Any) -> Execution:
    base = ran(stdout=stdout, stderr="Killed\n", exit_code=exit_code or 0, **kw)
    return Execution(
        **{**base.__dict__, "exit_code": exit_code, "oom_killed": True, "memory_limit": 64 * 2**20}
    )


def test_a_memory_kill_says_so_with_the_limit() -> None:
    result = interpret_evaluation(_killed_for_memory(), time_limit=60)
    assert isinstance(result, Failure)
    assert result.message.startswith("The evaluation exceeded the memory limit (64 MiB)")
    assert "Killed" not in result.message  # stderr stays with the administrator
    assert "killed for memory (limit 64 MiB)" in result.admin_message
    assert "Killed" in result.admin_message


def test_a_memory_kill_before_the_timeout_is_reported_as_memory() -> None:
    result = interpret_evaluation(_killed_for_memory(exit_code=None, timed_out=True), time_limit=60)
    assert isinstance(result, Failure) and "memory limit" in result.message


def test_a_helper_killed_for_memory_does_not_spoil_a_result_printed_with_exit_0() -> None:
    result = interpret_evaluation(
        _killed_for_memory('{"objective": 1}\n', exit_code=0), time_limit=60
    )
    assert result == Evaluation(objective=1)


def test_a_result_printed_before_a_memory_kill_with_a_nonzero_exit_still_counts() -> None:
    # The contract: a non-zero exit with a valid result line is a success (with a
    # warning for the administrator), whatever ended the process afterwards.
    result = interpret_evaluation(_killed_for_memory('{"objective": 2}\n'), time_limit=60)
    assert result == Evaluation(objective=2)


# -- the solution bound --------------------------------------------------------


class _NoMatches:
    def get(self, match_id: str) -> MatchSpec:
        raise AssertionError("a rejected solution must not even look up its match")


def test_a_solution_over_the_bound_fails_before_any_container() -> None:
    store = MemoryStore()
    trial = TrialRef("m-1", "p-1", "0001")
    variable = ["x" * 100] * 20  # 2,140 bytes as JSON
    store.put_solution(trial, variable)
    executor = StubExecutor()  # no image at all: a container started would be refused
    job = EvaluateJob(
        store=store,
        matches=_NoMatches(),
        executor=executor,
        timeout=60,
        max_solution_bytes=2048,
    )
    body = json.dumps({"MatchID": "m-1", "ParticipantID": "p-1", "TrialNo": "0001"})
    ctx = JobContext(deadline=time.monotonic() + 60, cancel=threading.Event())
    outcome = job(Message("id", body, "receipt", 1, time.monotonic()), ctx)
    assert isinstance(outcome, Done)
    (item,) = store.evaluation_items()
    assert item["Status"] == "Failed"
    size = len(json.dumps(variable))
    assert item["ErrorMessage"] == (
        f"The solution is too large: {format_size(size)} where at most 2 KiB is accepted."
    )
    assert f"{size} bytes" in item["AdminErrorMessage"]
    assert "max_solution_bytes" in item["AdminErrorMessage"]
    assert executor.specs == []


def test_a_solution_at_the_bound_is_run() -> None:
    store = MemoryStore()
    trial = TrialRef("m-1", "p-1", "0001")
    store.put_solution(trial, [1])  # "[1]": 3 bytes

    class Matches:
        def get(self, match_id: str) -> MatchSpec:
            return MatchSpec(match_id, ImageSpec("p:1", {}), ImageSpec("i:1", {}))

    executor = StubExecutor(answers=[ran(stdout='{"objective": 1}\n')])
    job = EvaluateJob(
        store=store, matches=Matches(), executor=executor, timeout=60, max_solution_bytes=3
    )
    body = json.dumps({"MatchID": "m-1", "ParticipantID": "p-1", "TrialNo": "0001"})
    ctx = JobContext(deadline=time.monotonic() + 60, cancel=threading.Event())
    job(Message("id", body, "receipt", 1, time.monotonic()), ctx)
    (item,) = store.evaluation_items()
    assert item["Status"] == "Success"


# -- redaction ----------------------------------------------------------------


def test_environment_values_are_blanked_from_both_messages() -> None:
    secret = 'pa"ss\\word-123'
    failure = Failure(
        message=f"cannot connect with {secret}",
        admin_message=f'last stdout line: {{"error": {json.dumps(secret)}}}; stderr: {secret}',
    )
    result = redact_failure(failure, {"DB_PASSWORD": secret, "DIM": "10"})
    assert isinstance(result, Failure)
    assert result.message == "cannot connect with [redacted]"
    assert secret not in result.admin_message and json.dumps(secret) not in result.admin_message
    assert result.admin_message.count("[redacted]") == 2
    # short values (a dimension) are not secrets: blanking "10" would garble messages
    assert redact_failure(Failure("10 variables", "x"), {"DIM": "10"}) == Failure(
        "10 variables", "x"
    )


def test_successes_are_stored_as_the_image_printed_them() -> None:
    evaluation = Evaluation(objective=1, info={"key": "secret-value"})
    assert redact_failure(evaluation, {"K": "secret-value"}) is evaluation
