"""The seed schedules explore runs before its random search (harness.explore.seeds).

Pure unit tests: no cluster. What a user would notice: a seed never uses a rule
they excluded with ``--rules``, never names a worker or tenant the exploration
does not have, its waits follow the service's own clock, and every seed is a
valid replay file (a failing seed is written as one).
"""

from __future__ import annotations

import pytest

from harness.explore.executor import ServiceTiming
from harness.explore.seeds import seeds
from harness.explore.steps import RULE_FIELDS, RULES, ReplayFile, dumps_replay, parse_replay

TIMING = ServiceTiming(
    time_scale=0.01, retention_s=5.4, scan_deadline_s=3.0, stated_retention_s=6.0
)


@pytest.mark.parametrize(("workers", "tenants"), [(1, 1), (2, 1), (1, 2), (4, 2), (16, 8)])
def test_every_seed_is_a_valid_replay_file_for_the_cluster(workers: int, tenants: int) -> None:
    for seed in seeds(TIMING, workers=workers, tenants=tenants):
        file = ReplayFile(name=seed.name, steps=seed.steps, workers=workers, tenants=tenants)
        assert parse_replay(dumps_replay(file), source="seed").steps == seed.steps
        assert seed.steps[0].rule == "discover", seed.describe()
        for step in seed.steps:
            if "pin" in RULE_FIELDS[step.rule]:
                assert step.pin < workers, seed.describe()
            if "worker" in RULE_FIELDS[step.rule]:
                assert step.worker < workers, seed.describe()


def test_one_worker_leaves_out_the_seeds_that_need_two() -> None:
    names = {s.name for s in seeds(TIMING, workers=1, tenants=2)}
    assert "a poll on another worker" not in names
    assert "two workers' caches, staggered" not in names
    assert "another tenant asks the scan's worker" in names
    assert len(seeds(TIMING, workers=4, tenants=2)) == len(names) + 2


def test_one_tenant_leaves_out_the_cross_tenant_probe() -> None:
    rules = {s.rule for seed in seeds(TIMING, workers=4, tenants=1) for s in seed.steps}
    assert "probe" not in rules
    assert "probe" in {s.rule for seed in seeds(TIMING, workers=4, tenants=2) for s in seed.steps}


def test_only_the_allowed_rules_are_used() -> None:
    allowed = ("discover", "status", "results")
    picked = seeds(TIMING, workers=4, tenants=2, rules=allowed)
    assert [s.name for s in picked] == ["a poll on another worker"]
    assert seeds(TIMING, workers=4, tenants=2, rules=("discover",)) == ()
    everything = seeds(TIMING, workers=4, tenants=2, rules=RULES)
    assert len(everything) == 7
    assert len({s.name for s in everything}) == 7


def test_cheap_seeds_run_before_the_ones_that_wait_for_a_scan() -> None:
    picked = seeds(TIMING, workers=4, tenants=2)
    waits = [s.waits for s in picked]
    assert waits == sorted(waits)
    waiting_rules = {"wait_complete", "alternate", "wait"}
    for seed in picked:  # a seed says it waits exactly when one of its steps does
        rules = {s.rule for s in seed.steps}
        after = any(s.rule == "rediscover" and s.after for s in seed.steps)
        assert seed.waits == bool(rules & waiting_rules or after), seed.describe()


def test_the_retention_wait_is_half_the_promise_on_the_service_clock() -> None:
    (ttl,) = [s for s in seeds(TIMING, workers=4, tenants=2) if s.name.startswith("results")]
    (wait,) = [s for s in ttl.steps if s.rule == "wait"]
    assert wait.seconds == 300.0  # 3 real seconds at 0.01 real s per service s
    slow = ServiceTiming(time_scale=0.5, retention_s=60.0, scan_deadline_s=30.0)
    (ttl,) = [s for s in seeds(slow, workers=4, tenants=2) if s.name.startswith("results")]
    assert [s.seconds for s in ttl.steps if s.rule == "wait"] == [60.0]
