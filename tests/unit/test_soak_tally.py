"""The soak's tally: a score missing at the end is lost only if a scorer was given its message.

The soak's platform stops sending scorer messages at the deadline; an
evaluation written after its last look never reached a scorer, so its missing
score says nothing about the runners. Counting it as lost once made a FIFO
run on moto that reached its deadline report "1 lost" with every queue empty.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from benchmarks.soak import SoakReport, SoakSettings, Trial, check_results
from opthub_runner_admin.model import TrialRef

TRIAL = Trial(ref=TrialRef("m-1", "p-1", "1"), variable=[1, 2])


def tally(sent: frozenset[TrialRef], scored: bool) -> SoakReport:
    report = SoakReport(SoakSettings())
    evaluation: dict[str, Any] = {"Status": "Success", "Objective": Decimal(TRIAL.objective)}
    score: dict[str, Any] = {"Status": "Success", "Value": Decimal(TRIAL.objective)}
    check_results(
        report,
        trials=[TRIAL],
        evaluations={TRIAL.ref: [evaluation]},
        scores={TRIAL.ref: [score]} if scored else {},
        sent=sent,
    )
    return report


def test_a_missing_score_whose_message_was_sent_is_lost() -> None:
    report = tally(frozenset({TRIAL.ref}), scored=False)
    assert (report.lost, report.not_yet_scored, report.clean) == (1, 0, False)


def test_a_missing_score_whose_message_was_never_sent_is_not_yet_scored() -> None:
    report = tally(frozenset(), scored=False)
    assert (report.lost, report.not_yet_scored) == (0, 1)
    assert not report.clean  # not a pass either: the run did not finish


def test_a_scored_trial_counts_nothing() -> None:
    report = tally(frozenset({TRIAL.ref}), scored=True)
    assert (report.lost, report.not_yet_scored, report.wrong, report.doubled) == (0, 0, 0, 0)
