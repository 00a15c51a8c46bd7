"""How explore's search decides (scenarios/stateful/search.py), with no cluster.

The lanes' runs are replaced by in-process fakes (``fake_lanes``): these tests are
about what the minimiser keeps and how a stopped lane is read, not about services.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.explore.executor import ServiceTiming
from harness.explore.steps import Step
from scenarios.stateful import ExploreConfig
from scenarios.stateful import search as S

TIMING = ServiceTiming(time_scale=0.01, retention_s=5.4, scan_deadline_s=3.0)
DISCOVER = Step(rule="discover", pin=0)
STATUS = Step(rule="status", scan=0, pin=1)
WAIT = Step(rule="wait", seconds=50.0)
RESULTS = Step(rule="results", scan=0, pin=2)


def _shared(tmp_path: Path, **config: object) -> S.Shared:
    return S.Shared([], TIMING, ExploreConfig(**config), tmp_path, None)  # type: ignore[arg-type]


def test_a_drop_is_kept_only_when_every_lane_shows_the_class(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without the wait the class shows on one lane of two: the wait stays; the results
    step is not needed on either lane: it goes."""
    runs: list[tuple[Step, ...]] = []

    def fake_lanes(shared: S.Shared, steps: tuple[Step, ...], label: str) -> list[dict[str, int]]:
        runs.append(steps)
        if STATUS not in steps:
            return [{}, {}]
        return [{"status_not_found": 1}, {"status_not_found": 1} if WAIT in steps else {}]

    monkeypatch.setattr(S, "_on_lanes", fake_lanes)
    found = {"status_not_found": 1}
    whole = (DISCOVER, STATUS, WAIT, RESULTS)
    steps, kept = S._minimise(_shared(tmp_path), whole, "status_not_found", found)
    assert steps == (DISCOVER, STATUS, WAIT)
    assert kept == found
    assert (DISCOVER, STATUS) in runs  # the wait was tried without (one lane), and kept


def test_nothing_is_dropped_when_no_smaller_schedule_reproduces_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(S, "_on_lanes", lambda shared, steps, label: [{"wrong_scan": 1}, {}])
    whole = (DISCOVER, STATUS, WAIT)
    steps, _ = S._minimise(_shared(tmp_path), whole, "wrong_scan", {"wrong_scan": 1})
    assert steps == whole


def test_a_routed_step_one_worker_served_is_pinned_to_it() -> None:
    routed = Step(rule="status", scan=0)
    probe = Step(rule="probe", scan=0, tenant=0)
    ran = ((Step(rule="discover"), (3,)), (routed, (1,)), (probe, (2, 3)), (WAIT, ()))
    assert S._pinned(ran) == (
        Step(rule="discover", pin=3),
        Step(rule="status", scan=0, pin=1),
        probe,  # two workers answered it: it stays routed
        WAIT,
    )


def test_a_stop_hypothesis_reports_as_flaky_generation_is_still_our_stop() -> None:
    """A lane stopped before an example drew anything (enough examples, another lane's
    failure, the budget): Hypothesis's engine reports FlakyStrategyDefinition with the
    stop as its context; explore must read it as the stop, not as Hypothesis giving up."""
    from hypothesis.errors import FlakyStrategyDefinition

    stop = S.Enough()
    try:
        try:
            raise stop
        except S.Enough:
            raise FlakyStrategyDefinition("Inconsistent data generation!") from None
    except FlakyStrategyDefinition as exc:
        reported = exc
    assert reported.__context__ is stop
    assert S._our_stop(reported) is stop
    assert S._our_stop(FlakyStrategyDefinition("a real one")) is None
    assert S._our_stop(AssertionError("wrong_scan")) is None


def test_of_equal_size_the_earliest_seed_is_minimised_whatever_finished_first(
    tmp_path: Path,
) -> None:
    """Two lanes ran seeds 4 and 5 at once and both failed in 2 steps; seed 5 happened
    to be recorded last. The seed list's order decides, not timing; among examples of
    the random search (no seed) the latest of the smallest is taken."""
    shared = _shared(tmp_path)
    lane = S.Lane(0, None)  # type: ignore[arg-type]
    two = ((DISCOVER, ()), (STATUS, ()))
    shared.record(lane, two, 2, {"progress_regression": 1}, seed=4)
    shared.record(lane, two, 2, {"progress_regression": 3}, seed=5)
    shared.record(lane, (*two, (WAIT, ())), 3, {"progress_regression": 1}, seed=1)
    assert S._best(shared) == 0
    shared = _shared(tmp_path)
    shared.record(lane, two, 2, {"wrong_scan": 1})
    shared.record(lane, two, 2, {"wrong_scan": 1})
    assert S._best(shared) == 1
