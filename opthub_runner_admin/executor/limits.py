"""What a container may use: memory, CPUs, processes, files, network, privileges, logs, GPUs.

The runner feeds untrusted solutions to images on the administrator's machine:
a solution that drives the problem into a memory blow-up or a fork storm must
end that one trial, not the machine and every other job with it. The limits
are one frozen value, declared here with their config keys (``config/schema.py``
reads them from the operator's file), and turned into Docker's host
configuration by one pure function, so that what Docker receives can be read
(and tested) without a daemon.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from docker.types import DeviceRequest, LogConfig, Ulimit
from pydantic import Field, model_validator
from pydantic.dataclasses import dataclass

from ..settings.kinds import KEYS, Capabilities, Cpus, DockerUser, Gpus, Limit, Size, refuse
from .base import ContainerRejected

#: Network modes the runner offers: Docker's default bridge, or no network at all.
NETWORK_MODES = ("bridge", "none")

#: 4 GiB: room for numerical Python images (numpy, scipy, a small CPU model) and
#: still a bound that keeps a runaway solution from taking a typical server.
DEFAULT_MEMORY = 4 * 1024**3
#: Docker refuses a memory limit below 6 MiB.
MIN_MEMORY = 6 * 1024**2

#: What Docker answers when no runtime on the host can give a GPU.
_NO_GPU_DRIVER = "could not select device driver"
#: Other refusals of a GPU request (the NVIDIA toolkit present but broken).
_GPU_FAILURES = (_NO_GPU_DRIVER, "nvidia-container-cli", "unknown or invalid runtime name: nvidia")


@dataclass(config=KEYS, kw_only=True, frozen=True)
class ContainerLimits:
    """Isolation: what each container may use (all capabilities are dropped)"""

    memory: Annotated[int, Size(minimum=MIN_MEMORY)] | None = Field(
        default=DEFAULT_MEMORY,
        description="memory limit of each container (`null` = none); a container over it is"
        " killed and its trial fails saying so, with the limit",
    )
    memory_swap: Annotated[int, Size(minimum=MIN_MEMORY, unlimited=True)] | None = Field(
        default=None,
        description="memory plus swap (Docker's `--memory-swap`); unset = same as `memory`"
        " (no swap, so the memory limit is real); `-1` = unlimited swap",
        examples=["4g"],
    )
    cpus: Annotated[float, Cpus()] | None = Field(
        default=None,
        description="CPUs each container may use, such as `1.5` (Docker's `--cpus`; checked at"
        " start against the host's CPUs; unset = all)",
        examples=[2],
    )
    #: Enough for a process pool per core and its threads; a fork storm stops here.
    pids_limit: Annotated[int, Limit(minimum=8)] | None = Field(
        default=1024,
        description="processes and threads per container (`null` = none): a fork storm stops here",
    )
    #: Far above what an evaluation needs; below 16 not even a shell starts its pipeline.
    nofile: Annotated[int, Limit(minimum=16)] | None = Field(
        default=4096,
        description="open files per process in the container (soft and hard `nofile` ulimit;"
        " `null` = Docker's default)",
    )
    network: Literal["bridge", "none"] = Field(
        default="bridge",
        description="the container's network; `none` leaves it no way out (recommended when"
        " the images need none)",
    )
    read_only: bool = Field(
        default=False,
        description="read-only root filesystem, with a writable tmpfs on `/tmp` of `tmpfs_size`",
    )
    tmpfs_size: Annotated[int, Size(minimum=1024**2)] = Field(
        default=256 * 1024**2,
        description="size of that `/tmp` (with `read_only`); it counts towards `memory`",
    )
    user: Annotated[str, DockerUser()] | None = Field(
        default=None,
        description="user to run as, as `docker run --user` takes it (`65534:65534`, `nobody`;"
        " unset = the image's user)",
        examples=["65534:65534"],
    )
    no_new_privileges: bool = Field(
        default=True,
        description="Docker's `no-new-privileges`: no setuid gain inside the container",
    )
    cap_add: Annotated[tuple[str, ...], Capabilities()] = Field(
        default=(),
        description="capabilities given back (all are dropped), for an image that needs one,"
        " e.g. `[CHOWN]`",
    )
    #: json-file log bound: ``docker logs`` still works for rm=false debugging, disk stays bounded.
    log_max_size: Annotated[int, Size(minimum=1024)] = Field(
        default=10 * 1024**2,
        description="bound of the container's json-file log (seen with `docker logs` when"
        " `rm: false`)",
    )
    log_max_files: int = Field(
        default=1, ge=1, description="json-file log files kept per container"
    )
    gpus: Annotated[str | tuple[str, ...], Gpus()] | None = Field(
        default=None,
        description="GPUs for the images (`all`, or device ids/UUIDs such as `[0, 1]`), through"
        " Docker's device requests; needs the NVIDIA Container Toolkit",
        examples=["all"],
    )

    @model_validator(mode="after")
    def _swap_at_least_memory(self) -> ContainerLimits:
        """Docker refuses a memory+swap total below the memory limit; say so before it does."""
        memory, swap = self.memory, self.memory_swap
        if memory is None and swap is not None:
            raise refuse("'memory_swap' needs 'memory' (Docker refuses it alone)")
        if memory is not None and swap is not None and swap != -1 and swap < memory:
            raise refuse(
                "'memory_swap' is memory plus swap and must be at least 'memory'"
                f" ({memory} bytes), or -1 for unlimited swap"
            )
        return self

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
    if limits.pids_limit is not None:
        kwargs["pids_limit"] = limits.pids_limit
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
