"""Sensitivity: each reference-service bug flag, switched on alone over `sound`, is caught.

For every F mechanism that docs/reference-service.md maps to an anomaly class,
a chaos run with the fault it needs must show that class; the same run on plain
`sound` must not. (F7 is slow, not wrong, and F13 lies outside the retention
window by design: neither maps to a class.) F3 needs a Redis error in the middle
of a write group: ``link_reset`` on every worker's link makes one, and since a
link fault destroys nothing, what it shows is never excused; its case runs over
three seeds.

Where the symptom follows a destructive fault on the scan's own data (F12, F14),
whether it counts is the contract's decision (``lost_state_excused``). By default
such answers are excused: a service cannot be blamed for what it was never
promised to notice. The reference's sound design promises to notice lost state
(it answers failed or 503, never not_found, and a failed scan stays failed), so
these cases run with ``lost_state_excused = false`` and must *fail* the verdict
with the flag on and pass on sound.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from harness.run.runner import RunOptions, run_chaos
from harness.run.scenario import FaultStep, Scenario
from harness.targets.contract import Contract

pytestmark = [pytest.mark.processes, pytest.mark.slow]

BASE = Scenario(name="sensitivity", tenants=3, scans_per_tenant=3, duration=600.0, recovery=300.0)


@dataclass(frozen=True)
class Case:
    flag: str
    anomaly: str
    scenario: Scenario = BASE
    # the symptom follows a destructive fault: judged under a contract that promises
    # to notice lost state (lost_state_excused = false), else it would be excused
    promises_lost_state: bool = False
    extra_flags: dict[str, object] = field(default_factory=dict)
    scan_deadline_s: float | None = None  # real seconds; None: the app's own, with slack
    seeds: tuple[int, ...] = (1,)


CASES = {
    "F1": Case("client_init_on_discover_only", "status_not_found"),
    # Every worker's link to Redis refuses connections for 300 s: five failures open the
    # breaker for 300 s, and with the flag a worker hands out no client meanwhile, so a
    # discover answers 200 and writes nothing, and reads find nothing. A partition destroys
    # no data, so nothing is excused; sound answers 503. (Three Redis restarts did this
    # before, but a restart's length is the machine's: under load the embedded Redis took
    # 1.2-1.6 s to come back, every scan's state was lost to some restart and excused.)
    "F2": Case(
        "unhealthy_client_is_none",
        "status_not_found",
        replace(
            BASE,
            scans_per_tenant=4,
            faults=(FaultStep(at=0.2, fault="link_partition", links=0, duration=300.0),),
        ),
    ),
    # Every 120 s each worker's link lets 1-3 more commands through, then resets every
    # command for 30 s: a write group (result, lookup, index) is cut in the middle, and
    # the legacy store swallows the error (lookups missing) and reads errors as
    # missing. Sound writes one MULTI/EXEC and answers 503 instead.
    "F3": Case(
        "write_group_aborts_on_error",
        "status_not_found",
        replace(
            BASE,
            tenants=4,
            scans_per_tenant=6,  # live scans polling through every reset window
            duration=1200.0,
            faults=tuple(
                FaultStep(
                    at=k / 10,
                    fault="link_reset",
                    links=0,
                    commands=1 + k % 3,
                    duration=30.0,
                )
                for k in range(1, 10)
            ),
        ),
        seeds=(1, 2, 3),
    ),
    "F4": Case(
        "lookup_written_once_short_ttl",
        "status_not_found",
        replace(BASE, linger=0.95, scans_per_tenant=2),
    ),
    "F5": Case("complete_status_without_progress", "zero_progress"),
    "F6": Case("placeholder_zero_total", "zero_progress"),
    "F8": Case("per_worker_read_through_cache", "status_regression"),
    "F9": Case("one_result_slot_per_filters", "wrong_scan", replace(BASE, same_filters=1.0)),
    # A strategy that raises: the worker lives on, so only a terminal state tells.
    "F10": Case("early_exit_without_terminal_state", "stuck_scan", replace(BASE, failing=0.5)),
    # Every scan starts by 53 s and runs past 160 s; each worker is killed once
    # between 72 s and 108 s, so whichever worker runs a scan, its scan loses its
    # process mid-way (with kills spread over staggered scans, all four could miss).
    # With the flag, a lost scan reads scanning until its keys expire 300 s after it
    # started, then failed ("scan state lost", sound's read path). The default
    # deadline (the service's 204 s x 1.5 slack = 306 s) sits a poll past that, so
    # it would judge the scan stuck or not by a coin flip: 250 s is explicit here.
    # Sound reports the scans failed one poll after each kill.
    "F11": Case(
        "no_scan_liveness",
        "stuck_scan",
        replace(
            BASE,
            tenants=4,
            scans_per_tenant=1,
            duration=120.0,
            faults=tuple(
                FaultStep(at=at, fault="worker_kill", worker=w, down=5.0)
                for at, w in ((0.6, 0), (0.7, 1), (0.8, 2), (0.9, 3))
            ),
        ),
        scan_deadline_s=2.5,
    ),
    # Two overlapping scans on the same filters share one active flag: the older's
    # cleanup deletes it, so when the newer's result key is then deleted, it reads
    # failed and its next snapshot brings it back (failed -> scanning). The fault
    # destroyed that scan's data, so the regression counts as excused.
    "F12": Case(
        "active_flag_per_cache_key",
        "status_regression",
        replace(
            BASE,
            tenants=4,
            scans_per_tenant=2,
            same_filters=1.0,
            overlap=1.0,
            faults=tuple(
                FaultStep(at=at, fault="delete_keys", key_class="result", fraction=1.0)
                for at in (0.3, 0.4, 0.5, 0.6, 0.7)
            ),
        ),
        promises_lost_state=True,
    ),
    "F14": Case(
        "missing_state_reads_as_not_found",
        "status_not_found",
        replace(
            BASE,
            faults=(
                FaultStep(at=0.25, fault="delete_keys", key_class="result", fraction=1.0),
                FaultStep(at=0.6, fault="delete_keys", key_class="result", fraction=1.0),
            ),
        ),
        promises_lost_state=True,
    ),
    "F15a": Case(
        "redis_lookup_without_owner_check", "cross_tenant_leak", replace(BASE, probes=1.0)
    ),
    "F15b": Case(
        "memory_and_fallback_without_owner_check",
        "cross_tenant_leak",
        replace(BASE, probes=1.0),
    ),
}


def _found(tmp_path: Path, case: Case, flags: dict[str, object], seed: int) -> tuple[int, int, str]:
    result = run_chaos(
        RunOptions(
            scenario=case.scenario,
            preset="sound",
            flags=flags,
            seed=seed,
            scan_deadline_s=case.scan_deadline_s,
            contract=Contract(lost_state_excused=not case.promises_lost_state),
            out=tmp_path / f"{'with-flag' if flags else 'sound'}-{seed}",
        )
    )
    r = result.verdict.classes[case.anomaly]
    return r.count, r.opportunities, result.verdict.verdict


@pytest.mark.parametrize("mechanism", list(CASES))
def test_flag_alone_over_sound_is_caught(tmp_path: Path, mechanism: str) -> None:
    case = CASES[mechanism]
    for seed in case.seeds:
        flags = {case.flag: True, **case.extra_flags}
        count, opportunities, verdict = _found(tmp_path, case, flags, seed)
        assert opportunities > 0
        assert count > 0, f"{mechanism} ({case.flag}) not caught by {case.anomaly}, seed {seed}"
        assert verdict == "fail"  # the gate would stop it
        base_count, base_opportunities, _ = _found(tmp_path, case, {}, seed)
        assert base_opportunities > 0  # sound was given the chance to fail, and did not
        assert base_count == 0, f"sound shows {case.anomaly} under {mechanism}'s schedule"
