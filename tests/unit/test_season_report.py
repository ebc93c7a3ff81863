"""The season's RSS slopes: growth that stops reads as a flat second half.

The long-run benchmark's verdict on memory is read from these two figures
(docs/performance.md): bounded structures fill in the first half, so only a
second half as steep as the first is growth that does not stop.
"""

from __future__ import annotations

from benchmarks.season import Sample, rss_slopes


def sample(jobs: int, rss_mib: float) -> Sample:
    return Sample(jobs, jobs / 5.0, int(rss_mib * 1024), 40, 20, 5, 5, 2)


def test_growth_that_stops_is_flat_in_the_second_half() -> None:
    samples = [sample(1000, 100.0), sample(2000, 101.0), sample(3000, 102.0)]
    samples += [sample(4000, 102.0), sample(5000, 102.0)]
    assert rss_slopes(samples) == ("+1.00 MiB from 1000 to 3000 jobs, +0.00 MiB from 3000 to 5000")


def test_steady_growth_is_as_steep_in_both_halves() -> None:
    samples = [sample(1000 * n, 100.0 + 0.5 * n) for n in range(1, 6)]
    assert rss_slopes(samples) == "+0.50 MiB from 1000 to 3000 jobs, +0.50 MiB from 3000 to 5000"


def test_two_samples_make_one_half_of_nothing() -> None:
    assert rss_slopes([sample(1000, 100.0), sample(2000, 102.0)]) == (
        "+0.00 MiB from 1000 to 1000 jobs, +2.00 MiB from 1000 to 2000"
    )
