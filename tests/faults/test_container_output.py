"""Bad container output: each case ends in the right Success or Failed item, in time.

Every case runs a real problem image through the real evaluator against the
moto server, and checks the item written, that the message is gone, that the
run stayed within the time limit, and that no container is left behind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import docker
import pytest

from opthub_runner_admin.platform_side.config_files import match_entry, write_config
from opthub_runner_admin.platform_side.runners import RunnerPool
from opthub_runner_admin.platform_side.stack import AwsStack, queue_counts
from opthub_runner_admin.values import DYNAMO_MAX
from tests.support.docker_fixtures import ImageFactory, containers_labelled
from tests.support.e2e import make_worker, result_item

from .helpers import new_match, submit

#: The ``timeout`` of these runs: long enough for the quick cases, short for the stuck ones.
TIMEOUT = 3
#: Seconds the stuck images sleep: a run that ends before this was killed at its timeout
#: (no finer bound on a measured duration: CI machines are busy).
STUCK = 600

#: 96 MiB of 1 KiB lines, 4 MiB of 3-byte lines (so that the kept tail is 1.4 million
#: lines), 16 MiB of stderr, then the result: 100 MiB of stdout in all.
HUGE_OUTPUT = r"""
cat >/dev/null
awk 'BEGIN { s = sprintf("%1023s", ""); gsub(/ /, "x", s); for (i = 0; i < 98304; i++) print s }'
yes ab | head -c 4194304
echo
awk 'BEGIN { s = sprintf("%1023s", ""); gsub(/ /, "e", s); for (i = 0; i < 16384; i++) print s }' \
    >&2
echo '{"objective": 42}'
"""
SMALL_OUTPUT = "cat >/dev/null\necho '{\"objective\": 42}'\n"


def _nested(depth: int, inner: str = "1") -> str:
    """An awk program printing ``depth`` nested JSON lists around ``inner``."""
    return (
        f'for (i = 0; i < {depth}; i++) printf "["; printf "{inner}"; '
        f'for (i = 0; i < {depth}; i++) printf "]"'
    )


@dataclass(frozen=True)
class Case:
    script: str
    status: str
    check: Callable[[dict[str, Any]], None]


def _failed_with(participant: str, admin: str) -> Callable[[dict[str, Any]], None]:
    def check(item: dict[str, Any]) -> None:
        assert participant in item["ErrorMessage"], item["ErrorMessage"]
        assert admin in item["AdminErrorMessage"], item["AdminErrorMessage"][:3000]

    return check


def _objective(expected: Any) -> Callable[[dict[str, Any]], None]:
    def check(item: dict[str, Any]) -> None:
        assert item["Objective"] == expected

    return check


def _odd_values(item: dict[str, Any]) -> None:
    assert item["Objective"] == [None, DYNAMO_MAX, DYNAMO_MAX.copy_negate(), DYNAMO_MAX]
    assert item["Constraint"] == Decimal(0)
    big = Decimal("1.2345678901234567890123456789012345679E+41")
    assert item["Info"] == {"nan": None, "deep": {"inf": DYNAMO_MAX, "big": big, "ok": True}}
    assert item["Feasible"] is True


def _replacement_kept(item: dict[str, Any]) -> None:
    assert item["Objective"] == Decimal(1)
    assert item["Info"] == {"s": "a\ufffd\ufffdb"}


def _line_separator_kept(item: dict[str, Any]) -> None:
    assert item["Objective"] == Decimal(5)
    assert item["Info"] == {"s": "a\u2028b\x85c"}


def _template_success(item: dict[str, Any]) -> None:
    assert item["Objective"] == Decimal("1.5")
    assert item["Constraint"] is None and item["Info"] == {}
    assert "ErrorMessage" not in item


def _lone_surrogates_replaced(item: dict[str, Any]) -> None:
    assert item["Objective"] == Decimal(1)
    assert item["Info"] == {"s": "cut \ufffd", "k\ufffd": ["\ufffd", "\U0001f600"]}


def _timed_out(item: dict[str, Any]) -> None:
    assert item["ErrorMessage"] == f"The evaluation timed out after {TIMEOUT} seconds."
    assert "container killed at the timeout" in item["AdminErrorMessage"]


NO_RESULT = "printed no result"
TOO_LARGE = "too large to be stored"

CASES: dict[str, Case] = {
    # OptHub's problem template: sys.stdout.write(json.dumps(result)), "error": null on success.
    '"error": null beside the objective (OptHub\'s template)': Case(
        "cat >/dev/null\n"
        'printf \'{"objective": 1.5, "constraint": null, "error": null, "info": null}\'\n',
        "Success",
        _template_success,
    ),
    "a non-string error is reported as its JSON text": Case(
        'cat >/dev/null\nprintf \'{"objective": null, "error": {"code": 3}}\\n\'\n',
        "Failed",
        _failed_with('{"code": 3}', "reported an error"),
    ),
    "lone surrogates from a string cut mid-emoji": Case(
        "cat >/dev/null\n"
        'printf \'{"objective": 1, "info": {"s": "cut \\\\ud83d", '
        '"k\\\\udc00": ["\\\\ude00", "\\\\ud83d\\\\ude00"]}}\\n\'\n',
        "Success",
        _lone_surrogates_replaced,
    ),
    "a lone surrogate in the error text": Case(
        'cat >/dev/null\nprintf \'{"objective": null, "error": "bad \\\\ud83d"}\\n\'\n',
        "Failed",
        _failed_with("bad \ufffd", "reported an error"),
    ),
    "binary garbage": Case(
        "cat >/dev/null\nhead -c 65536 /dev/urandom\n",
        "Failed",
        _failed_with(NO_RESULT, "not JSON"),
    ),
    "binary garbage then a result": Case(
        "cat >/dev/null\nhead -c 65536 /dev/urandom\necho\necho '{\"objective\": 3}'\n",
        "Success",
        _objective(Decimal(3)),
    ),
    "invalid UTF-8 inside the result": Case(
        'cat >/dev/null\nprintf \'{"objective": 1, "info": {"s": "a\\377\\376b"}}\\n\'\n',
        "Success",
        _replacement_kept,
    ),
    "no trailing newline": Case(
        "cat >/dev/null\nprintf '{\"objective\": 2}'\n", "Success", _objective(Decimal(2))
    ),
    "text after the JSON line": Case(
        "cat >/dev/null\necho '{\"objective\": 1}'\necho 'done.'\n",
        "Failed",
        _failed_with(NO_RESULT, "last stdout line: done."),
    ),
    "blank lines after the JSON line": Case(
        "cat >/dev/null\necho '{\"objective\": 4}'\nprintf '\\n  \\n\\t\\n\\n'\n",
        "Success",
        _objective(Decimal(4)),
    ),
    "U+2028 and U+0085 raw inside a JSON string": Case(
        "cat >/dev/null\n"
        'printf \'{"objective": 5, "info": {"s": "a\\342\\200\\250b\\302\\205c"}}\\n\'\n',
        "Success",
        _line_separator_kept,
    ),
    "NaN, Infinity and numbers DynamoDB cannot hold": Case(
        "cat >/dev/null\n"
        'echo \'{"objective": [NaN, Infinity, -Infinity, 1e999], "constraint": 1e-300, '
        '"info": {"nan": NaN, "deep": {"inf": Infinity, '
        '"big": 123456789012345678901234567890123456789012, "ok": true}}, '
        '"feasible": true}\'\n',
        "Success",
        _odd_values,
    ),
    "100000 levels of nesting": Case(
        'cat >/dev/null\nawk \'BEGIN { printf "{\\"objective\\": "; '
        + _nested(100_000)
        + '; print "}" }\'\n',
        "Failed",
        _failed_with(NO_RESULT, "nested too deeply"),
    ),
    "950 levels of nesting (near Python's recursion limit)": Case(
        'cat >/dev/null\nawk \'BEGIN { printf "{\\"objective\\": "; '
        + _nested(950)
        + '; print "}" }\'\n',
        "Failed",
        _failed_with("", "nest"),
    ),
    "40 levels inside info (DynamoDB stores 32)": Case(
        'cat >/dev/null\nawk \'BEGIN { printf "{\\"objective\\": 1, \\"info\\": {\\"x\\": "; '
        + _nested(40)
        + '; print "}}" }\'\n',
        "Failed",
        _failed_with(TOO_LARGE, "32 levels"),
    ),
    "closes stdout and keeps running": Case(
        f"cat >/dev/null\necho '{{\"objective\": 1}}'\nexec 1>&-\nsleep {STUCK}\n",
        "Failed",
        _timed_out,
    ),
    "ignores SIGTERM at the timeout": Case(
        f"trap '' TERM\ncat >/dev/null\nsleep {STUCK}\n", "Failed", _timed_out
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_output_ends_in_the_right_item_in_time(
    name: str,
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    case_labels: dict[str, str],
    docker_client: docker.DockerClient,
) -> None:
    case = CASES[name]
    tag = "opthub-test/fault-" + re.sub(r"[^a-z0-9]+", "-", name.lower())[:50].strip("-")
    image = image_factory(f"{tag}:1", case.script)
    match = new_match()
    config = write_config(tmp_path, aws, {match: match_entry(image)}, timeout=TIMEOUT)
    (ref,) = submit(aws, match, [[1, 2]])
    worker = make_worker("evaluator", config, case_labels, num=1)

    stats = worker.run()

    assert (stats.done, stats.errors, stats.retried) == (1, 0, 0), stats
    item = result_item(aws, "Evaluations", ref)
    assert item["Status"] == case.status, item
    case.check(item)
    started = datetime.fromisoformat(item["StartedAt"].replace("Z", "+00:00"))
    finished = datetime.fromisoformat(item["FinishedAt"].replace("Z", "+00:00"))
    assert (finished - started).total_seconds() < STUCK
    assert queue_counts(aws, aws.evaluator_queue_url) == (0, 0, 0)
    assert containers_labelled(docker_client, case_labels) == []


#: Peak RSS a runner may gain over a run with tiny output: a few times ``output_limit``
#: (4 MiB by default, kept per stream), nowhere near the 116 MiB the container printed.
MAX_RSS_GROWTH = 40 * 1024 * 1024


def test_100_mib_of_stdout_keeps_the_runner_memory_bounded(
    tmp_path: Path,
    aws: AwsStack,
    image_factory: ImageFactory,
    runners: RunnerPool,
) -> None:
    huge = image_factory("opthub-test/fault-huge-output:2", HUGE_OUTPUT)
    small = image_factory("opthub-test/fault-small-output:1", SMALL_OUTPUT)
    peaks = []
    for image in (small, huge):
        match = new_match()
        workdir = tmp_path / image.split("/")[1].replace(":", "-")
        workdir.mkdir()
        config = write_config(
            workdir, aws, {match: match_entry(image)}, num=1, timeout=60, log_level="INFO"
        )
        (ref,) = submit(aws, match, [[1]])
        runner = runners.start("evaluator", config)
        assert runner.wait(90) == 0, runner.log()[-3000:]
        item = result_item(aws, "Evaluations", ref)
        assert item["Status"] == "Success" and item["Objective"] == Decimal(42), item
        peaks.append(runner.peak_rss_bytes)
    growth = peaks[1] - peaks[0]
    assert growth < MAX_RSS_GROWTH, f"peak RSS {peaks[0] >> 20} MiB -> {peaks[1] >> 20} MiB"
