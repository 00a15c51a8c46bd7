"""Scenarios are data: named, validated with errors naming the field, planned from a seed."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.run.plan import make_plan
from harness.run.scenario import FaultStep, Scenario, load_scenario_file
from scenarios.catalogue import SCENARIOS, get_scenario


def test_catalogue_has_the_named_scenarios() -> None:
    expected = {"steady", "evict", "expire", "kill", "redis-outage", "deploy", "cross-tenant"}
    assert expected | {"mixed", "seed-repro"} <= set(SCENARIOS)
    repro = get_scenario("seed-repro")
    assert (repro.tenants, repro.polls, repro.poll_interval, repro.workers) == (1, 60, 3.0, 4)
    assert repro.fresh_cluster


def test_unknown_scenario_lists_valid_names() -> None:
    with pytest.raises(UsageError, match=r"--scenario 'mixd'.*valid: steady, evict"):
        get_scenario("mixd")


def test_same_seed_same_plan_other_seed_other_plan() -> None:
    mixed = get_scenario("mixed")
    assert make_plan(mixed, seed=3) == make_plan(mixed, seed=3)
    assert make_plan(mixed, seed=3).scans != make_plan(mixed, seed=4).scans


def test_plan_spreads_scans_over_the_active_phase_and_resolves_workers() -> None:
    plan = make_plan(get_scenario("mixed"), seed=1)
    starts = [s.start_s for s in plan.scans]
    assert len(plan.scans) == 12
    assert min(starts) < 0.3 * plan.scenario.duration < max(starts)
    assert all(0 <= f.worker < 4 for f in plan.faults if f.step.fault.startswith("worker"))
    assert plan.end_s == plan.heal_at_s + plan.scenario.recovery
    # probes go to another tenant, never the owner
    assert all(s.prober != s.tenant for s in plan.scans)


def test_scenario_file_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(
        'name = "mine"\ntenants = 2\nduration = 600\n'
        '[[faults]]\nat = 0.5\nfault = "delete_keys"\nkey_class = "result"\nfraction = 1.0\n'
    )
    s = load_scenario_file(f)
    assert s == Scenario(
        name="mine",
        tenants=2,
        duration=600.0,
        faults=(FaultStep(at=0.5, fault="delete_keys", key_class="result", fraction=1.0),),
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("tenants = 2", "missing field 'name'"),
        ('name = "x"\ntenant = 2', "unknown field 'tenant'"),
        ('name = "x"\ntenants = "two"', "field 'tenants' must be int, got 'two'"),
        ('name = "x"\ntenants = 0', "tenants=0 must be >= 1"),
        ('name = "x"\noverlap = 1.5', "overlap=1.5 must be 0..1"),
        ('name = "x"\n[[faults]]\nat = 0.5\nfault = "nuke"', "faults[0]: fault 'nuke': unknown"),
        ('name = "x"\n[[faults]]\nfault = "flush"', "faults[0]: missing field 'at'"),
        ('name = "x"\n[[faults]]\nat = 2\nfault = "flush"', "at=2.0: must be between 0 and 1"),
        ('name = "x"\n[[faults]]\nat = 0.1\nfault = "delete_keys"\nkey_class = "x"', "key_class"),
    ],
)
def test_bad_scenario_files_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(UsageError) as info:
        load_scenario_file(f)
    assert message in str(info.value)
    assert str(f) in str(info.value)


def test_failing_scans_are_chosen_by_the_seed() -> None:
    scenario = Scenario(name="f", tenants=4, scans_per_tenant=5, failing=0.5)
    plan = make_plan(scenario, seed=2)
    failing = [s.fail for s in plan.scans]
    assert 0 < sum(failing) < len(failing)
    assert failing == [s.fail for s in make_plan(scenario, seed=2).scans]
    assert not any(s.fail for s in make_plan(Scenario(name="f"), seed=2).scans)


def test_evict_policy_is_checked_and_named() -> None:
    assert FaultStep(at=0.1, fault="evict", policy="noeviction").policy == "noeviction"
    with pytest.raises(UsageError, match=r"policy='lru'.*valid: allkeys-lfu"):
        FaultStep(at=0.1, fault="evict", policy="lru")
