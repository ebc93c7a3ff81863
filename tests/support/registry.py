"""A tiny Docker registry on loopback, for pull tests without the network.

The real Docker daemon pulls from it (``127.0.0.1`` is an insecure registry
by default, so plain HTTP is accepted). It serves images exported from the
local daemon with ``docker save`` under tags the test chooses, and can swap
the image behind a tag (a re-push), demand Basic credentials, hold every
manifest request for a while (so that concurrent pulls overlap) and count
them. It speaks just enough of the distribution API for ``docker pull``:
``/v2/``, manifests by tag or digest, and blobs.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import docker

_MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
_CONFIG_TYPE = "application/vnd.docker.container.image.v1+json"
_LAYER_TYPE = "application/vnd.docker.image.rootfs.diff.tar.gzip"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class LoopbackRegistry:
    """State shared with the request handler; see the module docstring."""

    port: int = 0
    #: repository -> tag -> manifest bytes.
    manifests: dict[str, dict[str, bytes]] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    #: ``user:password`` the registry demands, or None for anonymous pulls.
    credentials: str | None = None
    #: Authorization headers seen, in order (None for a request without one).
    authorizations: list[str | None] = field(default_factory=list)
    #: Manifest requests by tag (one per pull that got past authentication).
    manifest_requests: int = 0
    #: Seconds each manifest request is held before it is answered.
    manifest_delay: float = 0.0
    #: When set, the HTTP status every manifest request by tag gets (a registry in trouble).
    manifest_status: int | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def publish(
        self, client: docker.DockerClient, local_image: str, repository: str, tag: str
    ) -> str:
        """Serve ``local_image`` as ``repository:tag`` (replacing what was there); the pull name."""
        config, layers = _export(client, local_image)
        blobs = {_digest(config): config, **{_digest(layer): layer for layer in layers}}
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": _MANIFEST_TYPE,
                "config": {
                    "mediaType": _CONFIG_TYPE,
                    "size": len(config),
                    "digest": _digest(config),
                },
                "layers": [
                    {"mediaType": _LAYER_TYPE, "size": len(layer), "digest": _digest(layer)}
                    for layer in layers
                ],
            }
        ).encode()
        with self.lock:
            self.blobs.update(blobs)
            self.manifests.setdefault(repository, {})[tag] = manifest
        return f"{self.host}/{repository}:{tag}"


def _export(client: docker.DockerClient, image: str) -> tuple[bytes, list[bytes]]:
    """The image's config and its gzipped layers, from ``docker save``."""
    archive = b"".join(client.api.get_image(image))
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:

        def read(name: str) -> bytes:
            member = tar.extractfile(name)
            assert member is not None, name
            return member.read()

        [entry] = json.loads(read("manifest.json"))
        config = read(entry["Config"])
        layers = [gzip.compress(read(name), mtime=0) for name in entry["Layers"]]
    return config, layers


def serve(registry: LoopbackRegistry) -> Iterator[LoopbackRegistry]:
    """Run the registry on a free loopback port for the duration of the generator."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(registry))
    registry.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, name="loopback-registry", daemon=True)
    thread.start()
    try:
        yield registry
    finally:
        server.shutdown()
        server.server_close()


def _handler(registry: LoopbackRegistry) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"registry": registry})


class _Handler(BaseHTTPRequestHandler):
    """Answers as a registry would; ``registry`` is set on a subclass per server."""

    registry: LoopbackRegistry

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the daemon first tries TLS: those garbage requests are expected

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, *, body: bool) -> None:
        authorization = self.headers.get("Authorization")
        with self.registry.lock:
            self.registry.authorizations.append(authorization)
        if self.registry.credentials is not None and authorization != _basic(
            self.registry.credentials
        ):
            self._send(401, b"", "application/json", body, {"WWW-Authenticate": 'Basic realm="t"'})
            return
        if self.path == "/v2/":
            self._send(200, b"{}", "application/json", body)
            return
        found = self._lookup()
        if self.registry.manifest_status is not None and "/manifests/" in self.path:
            self._send(self.registry.manifest_status, b"", "application/json", body)
            return
        if found is None:
            error = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "not here"}]}
            self._send(404, json.dumps(error).encode(), "application/json", body)
            return
        data, media_type = found
        self._send(200, data, media_type, body, {"Docker-Content-Digest": _digest(data)})

    def _lookup(self) -> tuple[bytes, str] | None:
        path = self.path.removeprefix("/v2/")
        repository, kind, reference = "", "", ""
        for marker in ("/manifests/", "/blobs/"):
            if marker in path:
                repository, reference = path.split(marker, 1)
                kind = marker
        if kind == "/blobs/":
            with self.registry.lock:
                blob = self.registry.blobs.get(reference)
            return None if blob is None else (blob, "application/octet-stream")
        if kind != "/manifests/":
            return None
        if not reference.startswith("sha256:"):
            with self.registry.lock:
                self.registry.manifest_requests += 1
            time.sleep(self.registry.manifest_delay)
        with self.registry.lock:
            tags = self.registry.manifests.get(repository, {})
            for tag, manifest in tags.items():
                if reference in (tag, _digest(manifest)):
                    return manifest, _MANIFEST_TYPE
        return None

    def _send(
        self,
        status: int,
        data: bytes,
        media_type: str,
        body: bool,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)


def _basic(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()
