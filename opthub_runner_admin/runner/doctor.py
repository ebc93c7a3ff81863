"""``opthub-runner doctor``: check a setup before the competition, one line per check.

The checks are the runner's own start checks (``start_checks``), run for
every configured mode, so that ``doctor`` exits 0 exactly when the runner
would start, and a cross carries the runner's own error text plus the fix.
With ``--match`` it then tries that match's images as ``try`` does.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..config.schema import Config
from ..errors import ConfigError, RunnerError
from ..model import JSON, Evaluation, bare_match_id
from .config_check import check_config
from .modes import MODES
from .start_checks import CROSS, TICK, WARN, Check, StartState, run_for_doctor

if TYPE_CHECKING:
    from ..auth.credentials import Credentials
    from ..jobs.tryout import ImageTrial
    from ..matches import ImageSpec, MatchSource

__all__ = ["CROSS", "TICK", "WARN", "Check", "Doctor", "DoctorOptions", "check_config"]

#: Attempts per AWS call: a doctor should say "unreachable" in seconds, not after a backoff.
DOCTOR_AWS_ATTEMPTS = 2
#: Longest run of an image on the sample input.
DEFAULT_TRY_TIMEOUT = 120


@dataclass(frozen=True)
class DoctorOptions:
    match_id: str | None = None
    dev: bool = False
    #: The sample solution the problem image is tried on.
    solution: JSON = None
    try_timeout: int = DEFAULT_TRY_TIMEOUT
    #: Asks for the administrator's credentials when the environment lacks them.
    prompt: Callable[[], Credentials] | None = None


class Doctor:
    """Runs the runner's start checks, then the match's; a failed part skips what needs it."""

    def __init__(
        self,
        *,
        config: Config,
        options: DoctorOptions,
        image_trial: Callable[[Config, int], ImageTrial],
    ) -> None:
        self._config = config
        self._options = options
        self._image_trial = image_trial
        self._docker_ok = False
        self._matches: MatchSource | None = None

    def checks(self) -> Iterator[Check]:
        from .parts import Options

        options = Options(dev=self._options.dev, prompt=self._options.prompt)
        modes = tuple(mode for mode in MODES if mode.configured(self._config))
        state = StartState(
            config=self._config,
            options=options,
            modes=modes,
            aws_attempts=DOCTOR_AWS_ATTEMPTS,
            docker_patience=0.0,
        )
        passed: set[str] = set()
        for check in run_for_doctor(state):
            if check.ok:
                passed.add(check.name)
            yield check
        self._docker_ok = "Docker runtime and CPUs" in passed
        self._matches = state.matches
        if self._options.match_id is not None:
            yield from self._match(self._options.match_id)

    def _match(self, match_id: str) -> Iterator[Check]:
        name = f"match {match_id}"
        if self._matches is None:
            yield Check(name, False, "not tried: no match source", "fix the checks above first")
            return
        try:
            match = self._matches.get(bare_match_id(match_id))
        except RunnerError as exc:
            yield Check(name, False, str(exc), "check the match id and the administrator account")
            return
        yield Check(name, True, f"problem {match.problem.image}, indicator {match.indicator.image}")
        if not self._docker_ok:
            yield Check("images", False, "not tried: the Docker checks failed", "fix Docker first")
            return
        try:
            trial = self._image_trial(self._config, self._options.try_timeout)
        except (RunnerError, ConfigError) as exc:
            yield Check("images", False, " ".join(str(exc).split()), "fix Docker first")
            return
        current = yield from self._try_problem(trial, match.problem)
        yield from self._try_indicator(trial, match.indicator, current)

    def _try_problem(
        self, trial: ImageTrial, spec: ImageSpec
    ) -> Generator[Check, None, Evaluation | None]:
        from ..jobs.tryout import report_lines

        sample = self._options.solution
        try:
            result = trial.problem(spec, sample)
        except RunnerError as exc:
            yield Check(f"problem image {spec.image}", False, str(exc), _image_fix(spec))
            return None
        yield Check(f"problem image {spec.image}", True, "present or pulled")
        if not result.succeeded:
            yield Check(
                f"problem image on {_short(sample)}",
                False,
                "; ".join(report_lines(result)[2:3]),
                "see `opthub-runner try problem` for details, or pass --solution with a"
                " sample the problem accepts",
            )
            return None
        yield Check(f"problem image on {_short(sample)}", True, report_lines(result)[1])
        outcome = result.outcome
        return outcome if isinstance(outcome, Evaluation) else None

    def _try_indicator(
        self, trial: ImageTrial, spec: ImageSpec, current: Evaluation | None
    ) -> Iterator[Check]:
        from ..jobs.tryout import report_lines

        current = current or Evaluation(objective=0.0)
        try:
            result = trial.indicator(spec, current, [])
        except RunnerError as exc:
            yield Check(f"indicator image {spec.image}", False, str(exc), _image_fix(spec))
            return
        yield Check(f"indicator image {spec.image}", True, "present or pulled")
        yield Check(
            "indicator image on the sample evaluation",
            result.succeeded,
            report_lines(result)[1 if result.succeeded else 2],
            "see `opthub-runner try indicator` for details",
        )


def _image_fix(spec: ImageSpec) -> str:
    return f"build or pull {spec.image} on this machine, or `docker login` to its registry"


def _short(value: JSON, limit: int = 40) -> str:
    import json

    text = json.dumps(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
