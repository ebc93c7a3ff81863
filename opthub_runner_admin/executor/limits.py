"""What a container may use: memory, CPUs, processes, files, network, privileges, logs, GPUs.

The runner feeds untrusted solutions to images on the administrator's machine:
a solution that drives the problem into a memory blow-up or a fork storm must
end that one trial, not the machine and every other job with it. The limits
are one frozen value built from the config in ``app.build_executor`` and
turned into Docker's host configuration by one pure function, so that what
Docker receives can be read (and tested) without a daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from docker.types import DeviceRequest, LogConfig, Ulimit

from .base import ContainerRejected

#: Network modes the runner offers: Docker's default bridge, or no network at all.
NETWORK_MODES = ("bridge", "none")

#: 4 GiB: room for numerical Python images (numpy, scipy, a small CPU model) and
#: still a bound that keeps a runaway solution from taking a typical server.
DEFAULT_MEMORY = 4 * 1024**3
#: Enough for a process pool per core and its threads; a fork storm stops here.
DEFAULT_PIDS = 1024
#: Open files per process (soft = hard): far above what an evaluation needs.
DEFAULT_NOFILE = 4096
#: Size of the writable /tmp when the root filesystem is read-only (it counts as memory).
DEFAULT_TMPFS_SIZE = 256 * 1024**2
#: json-file log bound: ``docker logs`` still works for rm=false debugging, disk stays bounded.
DEFAULT_LOG_MAX_SIZE = 10 * 1024**2
DEFAULT_LOG_MAX_FILES = 1

#: What Docker answers when no runtime on the host can give a GPU.
_NO_GPU_DRIVER = "could not select device driver"
#: Other refusals of a GPU request (the NVIDIA toolkit present but broken).
_GPU_FAILURES = (_NO_GPU_DRIVER, "nvidia-container-cli", "unknown or invalid runtime name: nvidia")


@dataclass(frozen=True)
class ContainerLimits:
    """The isolation every container of this runner gets; ``None`` means no limit.

    ``memory_swap`` is Docker's memory+swap total: ``None`` makes it equal to
    ``memory`` (no swap, so the memory limit is a real one), -1 allows
    unlimited swap. ``gpus`` is ``"all"`` or a tuple of device ids/UUIDs.
    All capabilities are dropped; ``cap_add`` gives back the ones an image needs.
    """

    memory: int | None = DEFAULT_MEMORY
    memory_swap: int | None = None
    cpus: float | None = None
    pids: int | None = DEFAULT_PIDS
    nofile: int | None = DEFAULT_NOFILE
    network: str = "bridge"
    read_only: bool = False
    tmpfs_size: int = DEFAULT_TMPFS_SIZE
    user: str | None = None
    no_new_privileges: bool = True
    cap_add: tuple[str, ...] = ()
    log_max_size: int = DEFAULT_LOG_MAX_SIZE
    log_max_files: int = DEFAULT_LOG_MAX_FILES
    gpus: str | tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.network not in NETWORK_MODES:
            raise ValueError(f"network must be one of {', '.join(NETWORK_MODES)}")
        if isinstance(self.gpus, str) and self.gpus != "all":
            raise ValueError("gpus must be 'all' or a list of device ids")

    def describe_gpus(self) -> str:
        """The setting as the operator wrote it, for error messages."""
        if self.gpus is None:
            return "unset"
        return self.gpus if isinstance(self.gpus, str) else "[" + ", ".join(self.gpus) + "]"


def host_config_kwargs(limits: ContainerLimits) -> dict[str, Any]:
    """Keyword arguments of docker-py's ``APIClient.create_host_config`` for ``limits``."""
    kwargs: dict[str, Any] = {
        "network_mode": limits.network,
        "cap_drop": ["ALL"],
        "log_config": LogConfig(
            type=LogConfig.types.JSON,
            config={"max-size": str(limits.log_max_size), "max-file": str(limits.log_max_files)},
        ),
    }
    if limits.memory is not None:
        kwargs["mem_limit"] = limits.memory
        kwargs["memswap_limit"] = (
            limits.memory if limits.memory_swap is None else limits.memory_swap
        )
    if limits.cpus is not None:
        kwargs["nano_cpus"] = round(limits.cpus * 1e9)
    if limits.pids is not None:
        kwargs["pids_limit"] = limits.pids
    if limits.nofile is not None:
        kwargs["ulimits"] = [Ulimit(name="nofile", soft=limits.nofile, hard=limits.nofile)]
    if limits.read_only:
        kwargs["read_only"] = True
        kwargs["tmpfs"] = {"/tmp": f"rw,size={limits.tmpfs_size},mode=1777"}
    if limits.no_new_privileges:
        kwargs["security_opt"] = ["no-new-privileges"]
    if limits.cap_add:
        kwargs["cap_add"] = list(limits.cap_add)
    if limits.gpus is not None:
        kwargs["device_requests"] = [gpu_request(limits.gpus)]
    return kwargs


def host_mismatch(limits: ContainerLimits, host_cpus: int) -> str | None:
    """Why the daemon's host cannot honour ``limits`` (checked once at start), or None.

    Docker refuses every container asking for more CPUs than its host has;
    better one line at start than every job going back to the queue.
    """
    if limits.cpus is not None and host_cpus > 0 and limits.cpus > host_cpus:
        return (
            f"'cpus' is {limits.cpus:g} but Docker's host has {host_cpus} CPUs:"
            f" set it to at most {host_cpus} (or remove it to use them all)"
        )
    return None


def gpu_request(gpus: str | tuple[str, ...]) -> DeviceRequest:
    """What ``docker run --gpus all`` (or ``--gpus '"device=0,1"'``) sends."""
    if gpus == "all":
        return DeviceRequest(count=-1, capabilities=[["gpu"]])
    return DeviceRequest(device_ids=list(gpus), capabilities=[["gpu"]])


class GpuUnavailable(ContainerRejected):
    """The config asks for GPUs that this host's Docker cannot give: the operator must act."""


def gpu_failure(reason: str, limits: ContainerLimits) -> GpuUnavailable | None:
    """The administrator's error for Docker refusing a GPU request, or None for other errors.

    Without a GPU runtime Docker answers 500 ("could not select device
    driver"), which would otherwise read as the daemon being in trouble and be
    retried forever; no participant is at fault, so it must not become a
    Failed trial either.
    """
    if limits.gpus is None or not any(marker in reason for marker in _GPU_FAILURES):
        return None
    return GpuUnavailable(
        f"Docker cannot give the container the GPUs that the 'gpus' setting asks for"
        f" (gpus: {limits.describe_gpus()}): {reason}. Install the NVIDIA Container Toolkit"
        " and restart Docker, or remove 'gpus' from the configuration."
    )
