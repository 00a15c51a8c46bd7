"""The statistics of matrix, claims and baseline: intervals, tests, and "how many more"."""

from __future__ import annotations

import math

import pytest

from harness.evidence.stats import (
    Tally,
    difference,
    normal_sf,
    opportunities_for_upper_bound,
    opportunities_to_separate,
    two_proportion_test,
    wilson,
)
from harness.judging.verdict import wilson as verdict_wilson


def test_wilson_agrees_with_the_verdicts_rounded_interval() -> None:
    for count, n in [(0, 10), (3, 40), (40, 40), (498, 1086), (1, 100_000)]:
        lo, hi = wilson(count, n)
        assert (round(lo, 4), round(hi, 4)) == verdict_wilson(count, n)


def test_wilson_of_nothing_is_the_whole_range() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    assert Tally(0, 0).ci95 == (0.0, 1.0)


def test_wilson_rejects_a_count_over_n() -> None:
    with pytest.raises(ValueError, match="between 0 and n"):
        wilson(5, 4)


def test_normal_sf_matches_known_quantiles() -> None:
    assert normal_sf(0.0) == pytest.approx(0.5)
    assert normal_sf(1.959963984540054) == pytest.approx(0.025, abs=1e-9)
    assert normal_sf(-1.6448536269514722) == pytest.approx(0.95, abs=1e-9)


def test_two_proportion_test_matches_a_hand_computation() -> None:
    # 10/100 vs 25/100: pooled 0.175, se = sqrt(.175*.825*(2/100)) = 0.053735, z = 2.7915
    result = two_proportion_test(Tally(10, 100), Tally(25, 100))
    assert result.z == pytest.approx(0.15 / math.sqrt(0.175 * 0.825 * 0.02))
    assert result.p_greater == pytest.approx(0.002623, abs=1e-5)
    assert result.p_less == pytest.approx(1 - result.p_greater)
    assert result.testable


def test_two_proportion_test_with_zero_counts_says_nothing() -> None:
    for base, cand in [(Tally(0, 500), Tally(0, 500)), (Tally(3, 3), Tally(9, 9))]:
        result = two_proportion_test(base, cand)
        assert (result.p_greater, result.p_less, result.testable) == (1.0, 1.0, False)
    assert not two_proportion_test(Tally(0, 0), Tally(5, 10)).testable


def test_zero_on_one_side_still_detects_a_real_regression() -> None:
    assert two_proportion_test(Tally(0, 400), Tally(12, 400)).p_greater < 0.001
    assert two_proportion_test(Tally(0, 400), Tally(1, 400)).p_greater > 0.05


def test_newcombe_difference_matches_the_published_example() -> None:
    # Newcombe (1998), Table II, example (a): 56/70 vs 48/80 -> 0.2000, CI 0.0524 to 0.3339.
    d = difference(Tally(56, 70), Tally(48, 80))
    assert d.estimate == pytest.approx(0.2)
    assert d.low == pytest.approx(0.0524, abs=1e-4)
    assert d.high == pytest.approx(0.3339, abs=1e-4)
    assert d.measurable


def test_difference_containing_zero_is_no_measurable_effect() -> None:
    assert not difference(Tally(5, 100), Tally(7, 100)).measurable
    assert not difference(Tally(0, 0), Tally(3, 10)).measurable  # nothing measured
    assert difference(Tally(0, 300), Tally(60, 300)).measurable


def test_zero_of_n_needs_about_380_opportunities_for_one_percent() -> None:
    n = opportunities_for_upper_bound(0, 0.01)
    assert n == 381
    assert wilson(0, n)[1] < 0.01 <= wilson(0, n - 1)[1]


@pytest.mark.parametrize(("count", "tolerance"), [(0, 0.05), (1, 0.01), (3, 0.02), (10, 0.1)])
def test_upper_bound_search_finds_the_least_n(count: int, tolerance: float) -> None:
    n = opportunities_for_upper_bound(count, tolerance)
    assert wilson(count, n)[1] < tolerance
    assert wilson(count, n - 1)[1] >= tolerance


def test_separation_counts_what_is_still_missing() -> None:
    more = opportunities_to_separate(0.02, 0.01, 100)
    assert more > 0
    n = 100 + more
    assert wilson(round(0.02 * n), n)[0] > 0.01
    assert opportunities_to_separate(0.5, 0.01, 1000) == 0  # already decided


def test_tallies_add_and_reject_negative_numbers() -> None:
    assert Tally(2, 10) + Tally(3, 30) == Tally(5, 40)
    with pytest.raises(ValueError, match=">= 0"):
        Tally(-1, 10)
