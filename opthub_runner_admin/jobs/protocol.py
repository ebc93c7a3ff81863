"""Reading the container protocol: the result is the last non-empty stdout line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..executor import Execution
from ..model import Failure
from ..settings.sizes import format_size
from ..values import replace_lone_surrogates, truncate_middle

#: How much of stderr an administrator's message carries.
STDERR_TAIL = 4000


@dataclass(frozen=True)
class ParsedOutput:
    """The last line as an object, or why there is none (``problem``)."""

    result: dict[str, Any] | None
    problem: str
    last_line: str


def last_line(stdout: str) -> str:
    """The last non-empty line of ``stdout``, stripped ("" when there is none).

    Lines end at "\\n" only: a JSON text may hold U+2028, U+0085 and the like
    raw inside its strings, which ``str.splitlines`` would take for line ends.
    Found from the end without splitting the whole text, which for megabytes
    of short lines would cost many times the output's size in memory.
    """
    kept = stdout.rstrip()
    return kept[kept.rfind("\n") + 1 :].strip()


def parse_last_line(stdout: str) -> ParsedOutput:
    last = last_line(stdout)
    if not last:
        return ParsedOutput(None, "stdout is empty", "")
    try:
        value = json.loads(last)
    except RecursionError:
        return ParsedOutput(None, "the last stdout line is nested too deeply", last)
    except ValueError as exc:
        return ParsedOutput(None, f"the last stdout line is not JSON ({exc})", last)
    if not isinstance(value, dict):
        return ParsedOutput(None, "the last stdout line is JSON but not an object", last)
    return ParsedOutput(value, "", last)


def admin_details(execution: Execution, problem: str = "", last_line: str = "") -> str:
    """Everything an administrator needs to see why a run failed, in one text."""
    parts = []
    if problem:
        parts.append(problem)
    if execution.oom_killed:
        parts.append(f"killed for memory (limit {_limit_text(execution.memory_limit)})")
    if execution.timed_out:
        parts.append("container killed at the timeout")
    elif execution.exit_code is not None:
        parts.append(f"exit code {execution.exit_code}")
    if last_line:
        parts.append(f"last stdout line: {truncate_middle(last_line, 2000)}")
    if execution.stdout_truncated:
        parts.append("stdout exceeded the output limit; only its end was kept")
    stderr = execution.stderr.strip()
    tail = stderr[-STDERR_TAIL:] if stderr else "(empty)"
    parts.append(f"stderr (end): {tail}")
    return "; ".join(parts)


def error_text(value: Any) -> str:
    """The image's ``error`` value as text for the participant (its JSON text if not a string)."""
    if isinstance(value, str):
        return replace_lone_surrogates(value)
    try:
        return replace_lone_surrogates(json.dumps(value, ensure_ascii=False))
    except (TypeError, ValueError, RecursionError):
        return replace_lone_surrogates(str(value))


@dataclass(frozen=True)
class ResultLine:
    """A run's last stdout line as an object without ``error``: what is left to interpret."""

    result: dict[str, Any]
    line: str


def read_result(
    execution: Execution, *, time_limit: float, task: str, program: str, hint: str = ""
) -> ResultLine | Failure:
    """What every run shares: a timeout, no result, or the image's own non-null ``error``.

    ``task`` ("evaluation") and ``program`` ("problem program") word the
    participant's messages; ``hint`` follows the message when there is no result.
    A timeout names the configured ``time_limit``, not the measured time, which
    a loaded machine stretches.
    A memory kill comes first: it is the cause of whatever else went wrong.
    A result line printed despite one (a helper process was killed, the exit
    code is non-zero) still counts, as any result with a non-zero exit does.
    """
    parsed = parse_last_line(execution.stdout)
    if execution.oom_killed and (execution.timed_out or parsed.result is None):
        return Failure(
            message=memory_message(task, execution.memory_limit),
            admin_message=admin_details(execution, "", parsed.last_line),
        )
    if execution.timed_out:
        return Failure(
            message=f"The {task} timed out after {time_limit:g} seconds.",
            admin_message=admin_details(execution, "timed out"),
        )
    if parsed.result is None:
        return Failure(
            message=f"The {task} failed: the {program} printed no result.{hint}",
            admin_message=admin_details(execution, parsed.problem, parsed.last_line),
        )
    error = parsed.result.get("error")
    if error is not None:
        # OptHub's problem template prints "error": null beside every successful result.
        # An empty text would leave the participant a blank message: say what happened.
        text = error_text(error)
        return Failure(
            message=text
            if text.strip()
            else f"The {task} failed: the {program} reported an error without a message.",
            admin_message=admin_details(
                execution, f"the {program} reported an error", parsed.last_line
            ),
        )
    return ResultLine(parsed.result, parsed.last_line)


def memory_message(task: str, memory_limit: int | None) -> str:
    """The participant's message for a run the kernel killed for memory."""
    return (
        f"The {task} exceeded the memory limit ({_limit_text(memory_limit)}) and was stopped."
        " Check whether the solution makes the program use too much memory."
    )


def _limit_text(memory_limit: int | None) -> str:
    return format_size(memory_limit) if memory_limit else "the host's memory"
