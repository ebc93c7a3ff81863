"""Hostile solutions through the real evaluator: contained, reported, cleaned up, then the next.

One problem image does what its solution asks: allocate far beyond the memory
limit, fork without end, fill /tmp, or call the host over the network. Under
the configured limits each ends in a Failed item that says what happened (the
memory kill in the participant's words, the rest in the administrator's),
no container is left, and the runner evaluates the ordinary solution after
them.
"""

from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path

import docker

from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from tests.docker.test_isolation_docker import _Listener, bridge_gateway
from tests.support.docker_fixtures import ImageFactory, containers_labelled
from tests.support.e2e import make_worker, result_item

from .helpers import new_match, submit

HOSTILE = r"""
IFS= read -r solution
case "$solution" in
*memory*) dd if=/dev/zero of=/dev/null bs=256M count=1 || exit 1 ;;
*fork*) f() { f | f & }; f; while :; do sleep 60 & done ;;
*fill*) dd if=/dev/zero of=/tmp/fill bs=1M count=64 || exit 1 ;;
*network*) nc -w 3 "$TARGET_HOST" "$TARGET_PORT" || exit 1 ;;
esac
echo '{"objective": 1}'
"""
TIMEOUT = 5


def test_hostile_solutions_are_contained_and_the_runner_goes_on(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    image = image_factory("opthub-test/fault-hostile:1", HOSTILE)
    listener = _Listener()
    try:
        env = {"TARGET_HOST": bridge_gateway(docker_client), "TARGET_PORT": str(listener.port)}
        match = new_match()
        config = write_config(
            tmp_path,
            aws,
            {match: match_entry(image, env=env)},
            timeout=TIMEOUT,
            memory="32m",
            pids_limit=64,
            read_only=True,
            tmpfs_size="8m",
            network="none",
        )
        solutions = [["memory"], ["fork"], ["fill"], ["network"], [1]]
        names = ("memory", "fork", "fill", "network", "ok")
        refs = dict(zip(names, submit(aws, match, solutions), strict=True))
        worker = make_worker("evaluator", config, case_labels, num=len(solutions))
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        thread.join(120)
        assert not thread.is_alive(), "the evaluator did not finish the five jobs"
        assert (worker.stats.done, worker.stats.errors) == (5, 0), worker.stats
    finally:
        listener.sock.close()
    items = {name: result_item(aws, "Evaluations", ref) for name, ref in refs.items()}
    assert [items[name]["Status"] for name in refs] == ["Failed"] * 4 + ["Success"]
    assert items["ok"]["Objective"] == Decimal(1)
    assert items["memory"]["ErrorMessage"].startswith(
        "The evaluation exceeded the memory limit (32 MiB)"
    )
    # The storm is cut at 64 processes: the image's own shell cannot fork and dies.
    assert "can't fork" in items["fork"]["AdminErrorMessage"]
    assert "No space left on device" in items["fill"]["AdminErrorMessage"]
    assert "Network is unreachable" in items["network"]["AdminErrorMessage"]
    assert listener.connections == 0
    for name in ("fork", "fill", "network"):  # stderr stays with the administrator
        assert "stderr" not in items[name]["ErrorMessage"]
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    assert containers_labelled(docker_client, case_labels) == []
