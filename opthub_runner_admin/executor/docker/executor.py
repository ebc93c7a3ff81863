"""The Docker implementation of the executor seam.

One run is: make sure the image is present (``images``), create a container
with stdin open, attach to its standard streams BEFORE starting it (so that
no early output is lost), start it, write the stdin lines and half-close,
then wait for the exit, the timeout or a cancel (``streams``).

The run itself is ``supervision``'s; the container is removed in a
``finally`` whatever happened (``own_containers``, which also keeps what a
daemon away could not remove); containers that a crashed runner left behind
are found by their labels and removed by ``reaping.remove_orphans`` at the
next start.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Hashable, Mapping
from types import MappingProxyType
from typing import Any

import docker
import docker.errors
import requests

from ..base import Cancelled, DockerUnavailable, Execution, ImageNotAvailable, RunSpec
from ..limits import ContainerLimits, gpu_failure, host_config_kwargs
from .cgroups import UsageMeter
from .daemon_watch import DaemonWatch
from .errors import mentions_secret, short_reason, translate
from .image_cleanup import ImageCleanup, no_space
from .images import DEFAULT_IMAGE_POLICY, ImagePolicy, ImageProvider
from .own_containers import OwnContainers
from .reaping import LABEL_KEEP, LABEL_WARM
from .removal import Remover
from .streams import Attachment
from .supervision import ContainerSupervisor
from .warm import LiveContainer, WarmCounts, WarmPool

log = logging.getLogger(__name__)

#: Seconds ``close`` waits for a daemon that went away, to remove what it left there.
CLOSE_PATIENCE = 30.0
#: Seconds Docker gives one of the runner's containers between SIGTERM and SIGKILL when
#: Docker stops it itself (its own stop or restart, ``docker stop``), instead of its 10 s:
#: the job such a stop ends goes back to the queue whatever the container does meanwhile,
#: and one started ahead waits on its input as PID 1, which ignores SIGTERM, so the 10 s
#: were only ever a slower restart of Docker. (The runner's own kills are SIGKILL.)
CONTAINER_STOP_TIMEOUT = 1
#: Seconds after Docker answers again before this runner's strays are swept a second time.
AFTER_OUTAGE_SWEEP = 10.0


class DockerExecutor:
    """Runs one ``RunSpec`` in a fresh container; see the module docstring.

    ``output_limit`` bounds the bytes kept per stream (the LAST bytes are
    kept, since the result is the last line); ``stop_timeout`` is how long to
    wait for a killed container to exit and for its output to drain before
    giving up on them (the container is force-removed anyway). ``images``
    says when images are pulled; ``runtime`` is the OCI runtime Docker runs
    the containers with (None: the daemon's default), passed as is.
    ``prestart`` overlaps Docker's work with the runner's: the next job's
    container is started ahead (``warm``) and finished ones are removed in
    the background (``removal``); ``close()`` must then be called at the end.
    ``limits`` is what every container may use (``executor/limits.py``; None:
    the defaults). ``measure_usage`` reads each container's peak memory and
    CPU time from its cgroup (``cgroups``) into ``Execution.usage``.
    """

    def __init__(
        self,
        *,
        client: docker.DockerClient,
        rm: bool = True,
        output_limit: int = 4 * 1024 * 1024,
        labels: Mapping[str, str] = MappingProxyType({}),
        stop_timeout: float = 10.0,
        images: ImagePolicy = DEFAULT_IMAGE_POLICY,
        runtime: str | None = None,
        prestart: bool = False,
        limits: ContainerLimits | None = None,
        on_image_pulled: Callable[[str], None] | None = None,
        on_docker_state: Callable[[bool], None] | None = None,
        image_cleanup: ImageCleanup | None = None,
        measure_usage: bool = True,
    ) -> None:
        if output_limit <= 0:
            raise ValueError("output_limit must be positive")
        self._api: Any = client.api
        self._rm = rm
        self._output_limit = output_limit
        self._labels = {**labels, LABEL_KEEP: "0" if rm else "1"}
        self._cleanup = image_cleanup
        self._on_image_pulled = on_image_pulled
        self._images = ImageProvider(api=self._api, policy=images, on_pulled=self._pulled)
        self._runtime = runtime
        self._limits = limits or ContainerLimits()
        self._supervisor = ContainerSupervisor(
            api=self._api,
            stop_timeout=stop_timeout,
            meter=UsageMeter.for_daemon(str(self._api.base_url)) if measure_usage else None,
        )
        # Told when a call finds the daemon away; removes the leftovers once it answers.
        self._daemon = DaemonWatch(
            ping=self._api.ping, on_back=self._after_outage, on_change=on_docker_state
        )
        self._own = OwnContainers(
            api=self._api, labels=self._labels, on_daemon_lost=self._daemon.lost
        )
        self._remover = Remover(remove=self._own.remove) if prestart else None
        self._warm = WarmPool(discard=self._discard) if prestart else None
        self._active = 0
        #: Runs going on now per warm key (the pool keeps as many of a key as ran at once).
        self._active_of: dict[Hashable, int] = {}
        self._active_lock = threading.Lock()

    def run(self, spec: RunSpec, cancel: threading.Event) -> Execution:
        """Run ``spec``; Docker's own errors leave here as the seam's errors."""
        if cancel.is_set():
            raise Cancelled(f"run of {spec.image} cancelled before it started")
        try:
            self._own.remove_leftovers()
            self._ensure_image(spec.image, cancel)
            return self._run(spec, cancel)
        except (requests.exceptions.RequestException, docker.errors.DockerException) as exc:
            if no_space(exc):
                self._clean_up_images()
            translated = gpu_failure(short_reason(exc, spec), self._limits) or translate(
                exc, spec, runtime=self._runtime
            )
            if translated is None:
                raise
            if isinstance(translated, DockerUnavailable) and not isinstance(
                exc, docker.errors.APIError
            ):
                self._daemon.lost(translated)
            # Docker quotes invalid variables in its errors: drop such an
            # original from the chain so that no logged traceback shows a secret.
            raise translated from (None if mentions_secret(exc, spec) else exc)

    def _pulled(self, image: str) -> None:
        if self._cleanup is not None:
            self._cleanup.pulled(image)
        if self._on_image_pulled is not None:
            self._on_image_pulled(image)

    def _ensure_image(self, image: str, cancel: threading.Event) -> None:
        """The image is there (pulled if need be), its use recorded for the clean-up."""
        try:
            self._images.ensure(image, cancel)
        except ImageNotAvailable as exc:
            if no_space(exc):
                self._clean_up_images()
            raise
        if self._cleanup is not None:
            self._cleanup.used(image)
            if self._cleanup.due():
                threading.Thread(
                    target=self._cleanup.run, name="image-cleanup", daemon=True
                ).start()

    def _clean_up_images(self) -> None:
        """Docker's disk is full: remove the images due now, once, before the job goes back."""
        if self._cleanup is not None:
            log.warning("Docker's disk is full: removing the images no match used lately")
            self._cleanup.run()

    # -- one run -----------------------------------------------------------

    def _run(self, spec: RunSpec, cancel: threading.Event) -> Execution:
        key = self._warm_key(spec) if self._warm is not None else None
        with self._active_lock:
            self._active += 1
            self._active_of[key] = self._active_of.get(key, 0) + 1
            if self._warm is not None:
                self._warm.fit(key, self._active_of[key], self._active)
        warm = self._warm

        def start_next() -> None:
            """Start a container ahead for the next job of this key (once the key starts)."""
            if warm is not None:
                warm.prepare(key, lambda: self._start_ahead(spec))

        # From here on, whatever fails (Docker going away as the job takes its container)
        # ends this run's count: a count left behind would grow the pool for good.
        try:
            container = self._usable(warm.take(key)) if warm is not None else None
            if container is None:
                container = self._create_attached(spec, cancel)
                # The next one starts as soon as Docker started this one, not after
                # the run: with several workers, each cold job would else leave the
                # job after it to wait for a start of its own.
                execution = self._supervise_and_dispose(spec, cancel, container, start_next)
            else:
                log.debug("using container %s started ahead", container.name)
                # This key starts fine: start the next one now, so that its start
                # overlaps this job's run and the runner's work between jobs.
                start_next()
                execution = self._supervise_and_dispose(spec, cancel, container, None)
        finally:
            with self._active_lock:
                self._active -= 1
                self._active_of[key] -= 1
                if not self._active_of[key]:
                    del self._active_of[key]
        # Never after a failed start: a broken image must not be started twice. After a
        # run, the pool refills up to the runs seen at once.
        start_next()
        return execution

    def _supervise_and_dispose(
        self,
        spec: RunSpec,
        cancel: threading.Event,
        container: LiveContainer,
        on_started: Callable[[], None] | None,
    ) -> Execution:
        try:
            return self._supervisor.run(spec, cancel, container, on_started)
        finally:
            container.attachment.close()
            self._dispose(container.name)

    def _create_attached(
        self, spec: RunSpec, cancel: threading.Event, *, warm: bool = False
    ) -> LiveContainer:
        name = f"opthub-{uuid.uuid4().hex[:12]}"
        self._own.made(name)
        try:
            container_id = self._create(spec, name, cancel, warm=warm)
            attachment = Attachment.open(self._api, name, self._output_limit)
            return LiveContainer(name, attachment, container_id=container_id)
        except BaseException:
            self._dispose(name)
            raise

    def _usable(self, container: LiveContainer | None) -> LiveContainer | None:
        """The container taken from the pool if it still waits; else it is removed (None).

        Also removed when the look fails (Docker went away): nobody else holds it.
        """
        if container is None:
            return None
        try:
            waiting = self._still_waiting(container)
        except BaseException:
            self._discard(container)
            raise
        if not waiting:
            # Killed, or its attach stream lost (a daemon restart), while it waited:
            # a job run in it would read as the participant's failure.
            log.warning("container %s started ahead is gone: starting a new one", container.name)
            self._discard(container)
        return container if waiting else None

    def _start_ahead(self, spec: RunSpec) -> LiveContainer:
        container = self._create_attached(spec, threading.Event(), warm=True)
        try:
            self._api.start(container.name)
        except BaseException:
            self._discard(container)
            raise
        container.started = True
        return container

    def _warm_key(self, spec: RunSpec) -> Hashable:
        """What a container started ahead must share with the job (the image by id)."""
        image_id = str(self._api.inspect_image(spec.image)["Id"])
        command = tuple(spec.command) if spec.command is not None else None
        return (spec.image, image_id, tuple(sorted(spec.environment.items())), command)

    def _discard(self, container: LiveContainer) -> None:
        """Remove a container that ran no job (even with ``rm`` off: nothing to debug in it)."""
        container.attachment.close()
        self._dispose(container.name, keep=False)

    def _dispose(self, name: str, *, keep: bool | None = None) -> None:
        """Remove now, or in the background when overlapping; keep it when ``rm`` is off."""
        self._own.released(name)
        if not self._rm if keep is None else keep:
            return
        if self._remover is not None:
            self._remover.submit(name)
        else:
            self._own.remove(name)

    @property
    def warm_counts(self) -> WarmCounts:
        """What the containers started ahead came to (all zero without ``prestart``)."""
        return self._warm.counts if self._warm is not None else WarmCounts()

    def stand_by(self, on: bool) -> None:
        """``on``: no new job comes for now (paused, login needed): remove the containers
        started ahead and start none until ``stand_by(False)``. A no-op without ``prestart``.
        """
        if self._warm is not None:
            self._warm.stand_by(on)

    @property
    def docker_up(self) -> bool:
        """False while the daemon does not answer (from a failed call to a ping that answers)."""
        return self._daemon.up

    def close(self) -> None:
        """Remove the containers started ahead, those queued for removal, and every other.

        Call at the runner's stop. Containers whose removal failed while
        Docker was away are removed once it answers (waiting up to
        ``CLOSE_PATIENCE``), and a last sweep by this runner's labels takes
        whatever a lost answer left unnamed.
        """
        if self._warm is not None:
            self._warm.close()
        if self._remover is not None:
            self._remover.close()
        if self._own.any_left or not self._daemon.up:
            self._daemon.wait_up(CLOSE_PATIENCE)
        self._own.remove_leftovers()
        self._daemon.close()
        self._own.remove_all()

    def _after_outage(self) -> None:
        """The daemon answers again: remove what it could not, and the warm containers.

        A restart without live-restore killed the containers started ahead;
        they would only be found dead one job at a time.
        """
        if self._warm is not None:
            self._warm.clear()
        self._own.remove_leftovers()
        # What the restart killed has exited by now, whatever the runner still believes
        # of it (no job can have run to its end yet): it goes at once. A daemon coming
        # back may still refuse a removal (409): this runner's strays are swept once
        # more a little later.
        self._own.sweep_strays(spare_in_use=False, states=("exited", "dead"))
        time.sleep(AFTER_OUTAGE_SWEEP)
        self._own.sweep_strays()

    def _create(
        self, spec: RunSpec, name: str, cancel: threading.Event, *, warm: bool = False
    ) -> str:
        """Create the container (its id); recover once if a remembered image was deleted."""
        try:
            return self._create_container(spec, name, warm=warm)
        except docker.errors.ImageNotFound:
            self._images.forget(spec.image)
            self._images.ensure(spec.image, cancel)
            return self._create_container(spec, name, warm=warm)

    def _create_container(self, spec: RunSpec, name: str, *, warm: bool = False) -> str:
        host_config = self._api.create_host_config(
            **host_config_kwargs(self._limits), runtime=self._runtime
        )
        # detach=False with stdin_open=True is what makes docker-py set
        # StdinOnce (and the Attach* flags): the daemon then closes the
        # container's stdin when our attach connection half-closes.
        # use_config_proxy=False: the environment is exactly the match's.
        created = self._api.create_container(
            spec.image,
            command=list(spec.command) if spec.command is not None else None,
            name=name,
            detach=False,
            stdin_open=True,
            tty=False,
            environment=dict(spec.environment),
            labels={**self._labels, LABEL_WARM: "true"} if warm else self._labels,
            host_config=host_config,
            user=self._limits.user,
            use_config_proxy=False,
            stop_timeout=CONTAINER_STOP_TIMEOUT,
        )
        return str(created.get("Id") or "")

    def _still_waiting(self, container: LiveContainer) -> bool:
        """A container started ahead still runs and its output is still being read."""
        if not container.attachment.reader.is_alive():
            return False
        try:
            return bool(self._api.inspect_container(container.name)["State"]["Running"])
        except docker.errors.NotFound:
            return False
