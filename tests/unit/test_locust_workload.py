"""The locust driver's pure parts: settings from the environment, tenants, seeded decisions.

Nothing here imports locust (it would monkey-patch the pytest process with gevent).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.run._locust import locust_command, locust_env
from harness.run.runner import RunOptions, _window
from harness.targets.contract import Contract
from scenarios.catalogue import get_scenario
from scenarios.locust._workload import (
    LiveScan,
    UserPlan,
    resolve_timing,
    settings_from_env,
    tenant_name,
)


def test_the_runner_environment_round_trips_workload_and_contract(tmp_path: Path) -> None:
    scenario = get_scenario("mixed")
    contract = Contract(status_path="/s/{scan_id}", retention_s=7.0)
    env = locust_env(tmp_path, seed=4, workload=scenario, contract=contract)
    settings = settings_from_env(env)
    assert settings.run_dir == tmp_path
    assert settings.seed == 4
    assert settings.workload.poll_interval == scenario.poll_interval
    assert settings.workload.probes == scenario.probes
    assert settings.workload.faults == ()  # faults stay with the runner's nemesis
    assert settings.contract.status_url("x") == "/s/x"
    assert settings.contract.retention_s == 7.0
    assert settings.judge is False  # the runner judges the run itself


def test_the_users_judging_window_is_the_runs_for_an_app_without_meta(tmp_path: Path) -> None:
    """``run --driver locust --retention-s 8 --scan-deadline-s 4`` on an app with no meta
    endpoint: the locust users get the user's values, so their window is the run's."""
    scenario = get_scenario("steady")
    options = RunOptions(scenario=scenario, retention_s=8.0, scan_deadline_s=4.0)
    given = {"time_scale": None, "retention_s": 8.0, "scan_deadline_s": 4.0}
    env = locust_env(tmp_path, seed=0, workload=scenario, contract=Contract(), given=given)
    settings = settings_from_env(env)
    timing = resolve_timing({}, settings.fallback, contract=settings.contract,
                            poll_interval_s=settings.workload.poll_interval)  # fmt: skip
    window = _window(options, {})
    assert (timing.window.retention_s, timing.window.scan_deadline_s) == (
        window.retention_s,
        window.scan_deadline_s,
    )


def test_a_plain_locust_run_follows_a_named_scenario_and_judges_itself() -> None:
    settings = settings_from_env({"SCANPROOF_SCENARIO": "cross-tenant"})
    assert settings.workload.probes == 1.0
    assert settings.judge is True
    assert settings.run_dir.parent == Path("scanproof-runs")


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SCANPROOF_SEED": "x"}, "SCANPROOF_SEED='x'"),
        ({"SCANPROOF_RETENTION_S": "soon"}, "SCANPROOF_RETENTION_S='soon'"),
        ({"SCANPROOF_WORKLOAD": "{"}, "SCANPROOF_WORKLOAD"),
        ({"SCANPROOF_SCENARIO": "nope"}, "'nope'"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(UsageError, match=named.replace("(", r"\(")) as info:
        settings_from_env(env)
    assert "\n" not in str(info.value)


def test_timing_comes_from_the_environment_else_the_meta() -> None:
    meta = {"time_scale": 0.01, "retention_s": 3.0, "scan_deadline_s": 2.0}
    assert resolve_timing(meta, {}).retention_s == 3.0
    assert resolve_timing(meta, {"retention_s": 30.0}).retention_s == 30.0
    assert resolve_timing({}, {"retention_s": 30.0, "scan_deadline_s": 9.0}).time_scale == 1.0
    with pytest.raises(UsageError, match="SCANPROOF_SCAN_DEADLINE_S"):
        resolve_timing({}, {"retention_s": 30.0})


def test_check_window_is_the_runners() -> None:
    """A plain locust run is judged with the same window as ``scanproof run``."""
    meta = {"time_scale": 0.01, "retention_s": 3.0, "scan_deadline_s": 2.0}
    options = RunOptions(scenario=get_scenario("steady"))
    assert resolve_timing(meta, {}).window == _window(options, meta)


def test_tenants_are_distinct_across_users_and_locust_workers() -> None:
    names = {tenant_name(0, worker_index=w, user_index=u) for w in range(4) for u in range(50)}
    assert len(names) == 200
    assert all(":" not in n and "/" not in n for n in names)
    assert tenant_name(1, worker_index=0, user_index=0) != tenant_name(
        0, worker_index=0, user_index=0
    )


def test_a_user_plan_is_seeded_and_reuses_filters_as_often_as_asked() -> None:
    always = get_scenario("steady").__class__(name="w", same_filters=1.0)
    plan = UserPlan(always, seed=2, tenant="t")
    first = plan.next_filters()
    assert all(plan.next_filters() == first for _ in range(10))
    a, b = UserPlan(always, seed=2, tenant="t"), UserPlan(always, seed=2, tenant="u")
    draws = [[p.rng.random() for _ in range(5)] for p in (a, b)]
    assert draws[0] != draws[1]


def test_a_probe_never_targets_the_users_own_scans() -> None:
    plan = UserPlan(get_scenario("cross-tenant"), seed=0, tenant="me")
    known = [("me", "scan_1"), ("you", "scan_2"), ("me", "scan_3")]
    assert {plan.choose_victim(known, "me") for _ in range(20)} == {("you", "scan_2")}
    assert plan.choose_victim([("me", "scan_1")], "me") is None


def test_a_scan_is_over_after_its_linger_or_its_deadline() -> None:
    scan = LiveScan(scan_id="s", accepted_at=0.0, deadline=10.0, probe_at_poll=0)
    assert not scan.over(9.9)
    assert scan.over(10.0)
    scan.linger_until = 3.0
    assert scan.over(3.0)
    assert not scan.over(2.9)


def test_locust_command_is_headless_with_reports_in_the_run_dir(tmp_path: Path) -> None:
    cmd = locust_command("http://127.0.0.1:1", tmp_path, users=50, spawn_rate=25.0, run_s=59.2)
    assert cmd[:3] == [sys.executable, "-m", "locust"]
    assert cmd[cmd.index("--run-time") + 1] == "60s"
    assert cmd[cmd.index("--csv") + 1] == str(tmp_path / "locust")
    assert cmd[cmd.index("--html") + 1] == str(tmp_path / "locust.html")
    assert "--headless" in cmd
    assert "--only-summary" in cmd
