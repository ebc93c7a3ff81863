"""Tiny problem and indicator images built locally from a static busybox.

The demo and the tests need images without any registry: an image ``FROM
scratch`` holding only a static busybox and a shell script builds in about a
second from files already on the machine. The scripts follow the container
protocol of the contract (one JSON line in, the result as the last stdout
line).
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import tempfile
from pathlib import Path

import docker

log = logging.getLogger(__name__)

#: Where Debian's ``busybox-static`` package installs a statically linked busybox.
DEFAULT_BUSYBOX = "/bin/busybox"

# ``RUN`` in exec form works in a scratch image once busybox is there: it
# installs the applet symlinks, so scripts can call ``awk`` or ``cat`` directly
# whether or not this busybox build runs applets without a PATH lookup.
_DOCKERFILE = """\
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
COPY run.sh /run.sh
ENTRYPOINT ["/bin/busybox", "sh", "/run.sh"]
"""

#: Problem image script: stdin is one JSON array of numbers such as ``[1.5, -2]``;
#: prints ``{"objective": <sum of squares>}``, or an ``error`` object for other input.
SPHERE_SCRIPT = r"""
awk '
NR == 1 {
    done = 1
    line = $0
    if (line !~ /^[ \t]*\[[-+0-9.eE, \t]*\][ \t\r]*$/) {
        print "{\"error\": \"expected a JSON array of numbers\"}"
        exit
    }
    gsub(/[][ \t\r]/, "", line)
    n = split(line, xs, ",")
    sum = 0
    for (i = 1; i <= n; i++) sum += xs[i] * xs[i]
    printf "{\"objective\": %.17g}\n", sum
    exit
}
END { if (!done) print "{\"error\": \"no solution on stdin\"}" }
'
"""

#: Indicator image script: line 1 is the current evaluation, line 2 the JSON list of
#: earlier trials; prints ``{"score": <smallest numeric objective among them>}``.
#: It echoes both lines to stderr so that tests can see what the runner sent.
BEST_SO_FAR_SCRIPT = r"""
IFS= read -r current
IFS= read -r history
printf '%s\n%s\n' "$current" "$history" >&2
printf '%s\n%s\n' "$current" "$history" | awk '
{
    rest = $0
    while (match(rest, /"objective"[ \t]*:[ \t]*-?[0-9.]+([eE][-+]?[0-9]+)?/)) {
        value = substr(rest, RSTART, RLENGTH)
        sub(/^"objective"[ \t]*:[ \t]*/, "", value)
        value += 0
        if (!found || value < best) best = value
        found = 1
        rest = substr(rest, RSTART + RLENGTH)
    }
}
END {
    if (found) printf "{\"score\": %.17g}\n", best
    else print "{\"error\": \"no numeric objective in the input\"}"
}'
"""

_PT_INTERP = 3  # ELF program header type naming a dynamic loader


class BusyboxMissing(FileNotFoundError):
    """No usable static busybox: the demo images cannot be built."""


def build_busybox_image(
    client: docker.DockerClient,
    tag: str,
    script: str,
    busybox_path: str = DEFAULT_BUSYBOX,
) -> str:
    """Build ``tag`` running ``script`` with busybox's sh, and return the tag.

    The build context is a temporary directory holding only busybox, the
    script and the Dockerfile, so nothing else on the machine is sent.
    """
    _check_static_busybox(busybox_path)
    with tempfile.TemporaryDirectory(prefix="opthub-image-") as context:
        shutil.copy(busybox_path, os.path.join(context, "busybox"))
        Path(context, "run.sh").write_text(script, encoding="utf-8")
        Path(context, "Dockerfile").write_text(_DOCKERFILE, encoding="utf-8")
        client.images.build(path=context, tag=tag, rm=True, forcerm=True)
    log.info("built image %s", tag)
    return tag


def _check_static_busybox(path: str) -> None:
    """Fail with the fix in the message: a dynamic busybox would die in a scratch image."""
    install = "install a static busybox (apt-get install busybox-static)"
    try:
        with open(path, "rb") as binary:
            dynamic = _is_dynamic_elf(binary.read(64 * 1024))
    except FileNotFoundError as exc:
        raise BusyboxMissing(f"{path} not found: {install}") from exc
    if dynamic:
        raise BusyboxMissing(f"{path} is dynamically linked and cannot run alone: {install}")


def _is_dynamic_elf(head: bytes) -> bool:
    """Whether an ELF file names a program interpreter (the dynamic loader).

    Reads the program headers from the first bytes of the file; a file that
    is not ELF at all counts as unusable too.
    """
    if head[:4] != b"\x7fELF" or len(head) < 64:
        return True
    wide = head[4] == 2  # ELFCLASS64
    order = "<" if head[5] == 1 else ">"
    if wide:
        phoff, phentsize, phnum = struct.unpack_from(order + "Q14xHH", head, 32)
    else:
        phoff, phentsize, phnum = struct.unpack_from(order + "I10xHH", head, 28)
    for index in range(phnum):
        offset = phoff + index * phentsize
        if offset + 4 > len(head):
            break
        (kind,) = struct.unpack_from(order + "I", head, offset)
        if kind == _PT_INTERP:
            return True
    return False
