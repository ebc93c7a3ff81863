"""The local AWS emulators: a moto server in a subprocess, and MiniStack beside it.

``opthub-runner demo``, the tests and the benchmarks run the runner against
these over real HTTP, so every byte goes through the same boto3 code as in
production. moto is lenient where AWS is not (receipts, item sizes, parameter
checks), so the queue and store contracts and one end-to-end run of each queue
kind also run on MiniStack, written independently of moto. MiniStack pins its
own botocore, so ``scripts/setup.sh`` installs it into ``.venv-ministack`` of
the checkout (its version pinned there) and it runs as a server from that
environment, as moto runs from ours.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING

from ..aws.clients import MAX_ATTEMPTS, AwsClients, aws_clients
from ..errors import FatalError

if TYPE_CHECKING:
    from typing_extensions import Self

log = logging.getLogger(__name__)

#: Region of the local stack (the platform's own).
REGION = "ap-northeast-1"
#: moto accepts any keys; explicit fake ones keep boto3 off the real credential chain.
FAKE_KEY = "testing"
#: Seconds to wait for a fresh moto server to answer (importing moto is slow).
STARTUP_TIMEOUT = 60.0
#: The emulators by name, as ``--emulator`` and the test ids spell them.
EMULATORS = ("moto", "ministack")
#: Where ``scripts/setup.sh`` installs MiniStack in a checkout; ``OPTHUB_MINISTACK_PYTHON``
#: overrides it.
MINISTACK_PYTHON = Path(__file__).resolve().parents[2] / ".venv-ministack" / "bin" / "python"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


#: The ``demo`` extra of pyproject.toml: moto's server.
DEMO_REQUIREMENT = "moto[server]>=5.0"
#: What to install when the demo's local stack is missing (a plain ``pip install .``).
#: This project from its checkout: the PyPI package named opthub-runner-admin is the
#: earlier runner, and installing it would replace this one.
DEMO_EXTRA_HINT = (
    f"pip install '.[demo]' in the opthub-runner checkout (or pip install '{DEMO_REQUIREMENT}')"
)


def require_moto_server() -> None:
    """Stop with one line when moto's server (the ``demo`` extra) is not installed."""
    for module in ("moto", "flask"):  # moto.server needs moto[server], which brings flask
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise FatalError(
                f"the demo needs moto's server, which is not installed: {DEMO_EXTRA_HINT}"
            )


class LocalServer:
    """A local AWS emulator in a subprocess, as a context manager.

    The port is chosen once and kept, so that ``stop()`` then ``start()``
    simulates an outage of the same endpoint (the emulator forgets its state
    on stop). ``env`` adds environment variables for the server. Subclasses
    say how to start it (``command``) and where it answers once ready
    (``ready_path``).
    """

    #: Its name in messages and in test ids.
    name = "local"
    #: A path that answers (with any HTTP status) once the server is up.
    ready_path = "/"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._host = host
        self._port = port
        self._env = dict(env or {})
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        """The argv that runs the server on ``self.host``/``self.port``."""
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        """Variables the server needs beyond the caller's ``env`` (none by default)."""
        return {}

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        """The server's port (chosen on first use)."""
        if self._port is None:
            self._port = free_port(self._host)
        return self._port

    @property
    def endpoint_url(self) -> str:
        """The URL to give boto3 as ``endpoint_url``."""
        return f"http://{self._host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the subprocess is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (fault tests pause it with SIGSTOP)."""
        return self._process.pid if self.running and self._process is not None else None

    def clients(self, *, max_attempts: int = MAX_ATTEMPTS) -> AwsClients:
        """AWS clients on this server, with the fake keys."""
        return local_clients(self.endpoint_url, max_attempts=max_attempts)

    def start(self) -> Self:
        """Start the server and wait until it answers; a no-op when it runs already."""
        if self.running:
            return self
        # Closed by stop(): it outlives this method, as the server does.
        self._log = tempfile.TemporaryFile(prefix=f"{self.name}-server-")  # noqa: SIM115
        self._process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.environment(), **self._env},
            # Its own session: a Ctrl-C meant for the demo must not kill the stack
            # that the runner still needs while it drains.
            start_new_session=True,
        )
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        log.debug("%s server answering at %s", self.name, self.endpoint_url)
        return self

    def stop(self) -> None:
        """Stop the server (its state is lost); a no-op when it is not running."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                # A threaded server may linger on open keep-alive connections;
                # its state is thrown away anyway, so do not wait long.
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"{self.name} server exited at start-up:\n{self._output()}")
            if self._answers():
                return
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} server did not answer at {self.endpoint_url} within "
            f"{STARTUP_TIMEOUT:.0f} s:\n{self._output()}"
        )

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}{self.ready_path}", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # any HTTP answer means the server is up
        except OSError:
            return False

    def _output(self) -> str:
        """The tail of what the server printed, for start-up errors."""
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read()[-4000:].decode("utf-8", errors="replace")


class MotoServer(LocalServer):
    """``python -m moto.server`` in a subprocess (moto is in the runner's own environment).

    ``env`` may hold ``INITIAL_NO_AUTH_ACTION_COUNT=0`` to make moto check credentials.
    """

    name = "moto"
    ready_path = "/moto-api/"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]


def local_clients(endpoint_url: str, *, max_attempts: int = MAX_ATTEMPTS) -> AwsClients:
    """AWS clients on a local stack, with fake keys (never the operator's)."""
    return aws_clients(
        region_name=REGION,
        endpoint_url=endpoint_url,
        access_key_id=FAKE_KEY,
        secret_access_key=FAKE_KEY,
        max_attempts=max_attempts,
    )


def ministack_python() -> Path:
    return Path(os.environ.get("OPTHUB_MINISTACK_PYTHON", str(MINISTACK_PYTHON)))


class MiniStackUnavailable(RuntimeError):
    """MiniStack is not installed where the project's setup puts it."""


class MiniStackServer(LocalServer):
    """``python -m ministack`` from its own virtual environment, on one loopback port."""

    name = "ministack"
    ready_path = "/_ministack/health"

    def command(self) -> list[str]:
        python = ministack_python()
        if not python.exists():
            raise MiniStackUnavailable(
                f"MiniStack is not installed at {python}: run scripts/setup.sh"
            )
        return [str(python), "-m", "ministack"]

    def environment(self) -> dict[str, str]:
        return {
            "GATEWAY_PORT": str(self.port),
            "BIND_HOST": self.host,
            "MINISTACK_REGION": REGION,
            "LOG_LEVEL": "WARNING",
            # Its pid file goes to the temporary directory under the port's name.
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        }


def emulator(name: str) -> LocalServer:
    """A (not yet started) server of the emulator called ``name``."""
    if name == "moto":
        return MotoServer()
    if name == "ministack":
        return MiniStackServer()
    raise ValueError(f"unknown emulator {name!r}: one of {', '.join(EMULATORS)}")
