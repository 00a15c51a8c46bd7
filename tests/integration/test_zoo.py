"""The zoo, gated as a user would: ``python -m harness gate`` in a subprocess.

Every zoo service (tests/zoo/) is judged with only its app, its contract and the
retention it promises: no time scale, no scenario file (the default ``mixed``,
4 workers, a real ``redis-server``). A correct variant must pass with every class
it should exercise exercised; a buggy variant must fail, with its own class
failing. The jobs service answers create with 201 and names the job only in its
``Location`` header: read from there it is judged, read from the body the run
tested nothing and must say so (exit 3), never pass.

The default tier runs one correct and one buggy service and the exit-3 case; the
whole sweep is ``slow``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.processes, pytest.mark.real_redis]
ROOT = Path(__file__).resolve().parents[2]
ZOO = ROOT / "tests" / "zoo"
DURATION_S = 20  # the active phase, as the acceptance runs it
QUICK_DURATION_S = 10  # the default tier's jobs pair: the shortest that exercises every class
RUN_TIMEOUT_S = 420  # calibration + 20 s + recovery + linger of the slow services, loaded
# What every run of the mixed scenario must exercise, whatever the service's shape.
EVERY_RUN = ("status_not_found", "results_404", "cross_tenant_leak", "stuck_scan")
PROGRESS = ("zero_progress", "progress_regression")


@dataclass(frozen=True)
class Variant:
    module: str
    attr: str  # "app" is the correct variant
    retention_s: float  # what the service promises (its RETENTION_S)
    fails: str = ""  # the class a buggy variant must fail
    progress: bool = False  # the service reports progress

    @property
    def id(self) -> str:
        bug = self.attr.removeprefix("app_") if self.attr != "app" else "correct"
        return f"{self.module}-{bug}"


JOBS = Variant("jobs", "app", 6)
JOBS_PER_PROCESS = Variant("jobs", "app_per_process", 6, fails="status_not_found")
SWEEP = (
    Variant("reports", "app", 6),
    Variant("reports", "app_short_ttl", 6, fails="status_not_found"),
    Variant("reports", "app_no_owner_check", 6, fails="cross_tenant_leak"),
    Variant("crawls", "app", 6, progress=True),
    Variant("crawls", "app_dies", 6, fails="stuck_scan", progress=True),
    Variant("crawls", "app_vanishes", 6, fails="status_not_found", progress=True),
    Variant("tasks", "app", 12, progress=True),
    Variant("tasks", "app_stale_cache", 12, fails="status_regression", progress=True),
    Variant("batches", "app", 10),
    Variant("batches", "app_shared_slot", 10, fails="wrong_scan"),
)


def _gate(
    v: Variant, out: Path, contract: Path | None = None, duration: int = DURATION_S
) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable, "-m", "harness", "gate",
        "--app", f"tests.zoo.{v.module}:{v.attr}",
        "--contract", str(contract or ZOO / f"{v.module}.toml"),
        "--workers", "4",
        "--retention-s", str(v.retention_s),
        "--duration", str(duration),
        "--redis", "server",
        "--out", str(out),
    ]  # fmt: skip
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False, cwd=ROOT
    )


def _verdict(out: Path, result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert (out / "verdict.json").exists(), result.stdout[-2000:] + result.stderr[-2000:]
    verdict: dict[str, Any] = json.loads((out / "verdict.json").read_text())
    return verdict


def _judged_as_promised(v: Variant, tmp_path: Path, duration: int = DURATION_S) -> None:
    out = tmp_path / "run"
    result = _gate(v, out, duration=duration)
    verdict = _verdict(out, result)
    said = f"{result.stdout[-3000:]}\n{result.stderr[-1500:]}"
    classes = verdict["anomalies"]
    unexercised = [
        name
        for name in (*EVERY_RUN, *(PROGRESS if v.progress else ()))
        if not classes[name]["exercised"]
    ]
    assert not unexercised, f"{v.id}: never exercised {unexercised}\n{said}"
    if not v.fails:
        assert (result.returncode, verdict["verdict"]) == (0, "pass"), said
        if not v.progress:  # no progress field: nothing to judge, and that is not a failure
            assert all(classes[name]["opportunities"] == 0 for name in PROGRESS), said
        return
    assert (result.returncode, verdict["verdict"]) == (1, "fail"), said
    assert classes[v.fails]["verdict"] == "fail", said
    assert any(r.startswith(f"{v.fails}:") for r in verdict["reasons"]), said


@pytest.mark.slow  # a whole run (8-18 s): the fast tier stays under 5 min on 2 cores
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
@pytest.mark.parametrize("variant", [JOBS, JOBS_PER_PROCESS], ids=lambda v: v.id)
def test_a_201_location_job_api_is_judged_as_promised(variant: Variant, tmp_path: Path) -> None:
    _judged_as_promised(variant, tmp_path, duration=QUICK_DURATION_S)


@pytest.mark.slow
@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
@pytest.mark.parametrize("variant", SWEEP, ids=lambda v: v.id)
def test_every_zoo_service_is_judged_as_promised(variant: Variant, tmp_path: Path) -> None:
    _judged_as_promised(variant, tmp_path)


@pytest.mark.timeout(RUN_TIMEOUT_S + 30)
def test_a_contract_that_reads_the_id_from_the_body_is_unknown_never_pass(
    tmp_path: Path,
) -> None:
    """jobs answers 201 with the id only in Location: read from the body, no scan is
    ever accepted, and the gate says so in one line (exit 3)."""
    text = (ZOO / "jobs.toml").read_text()
    body_only = tmp_path / "jobs-body-id.toml"
    body_only.write_text(
        "\n".join(line for line in text.splitlines() if not line.startswith("discover_id"))
    )
    out = tmp_path / "run"
    result = _gate(JOBS, out, contract=body_only, duration=QUICK_DURATION_S)
    said = result.stdout + result.stderr
    assert result.returncode == 3, said
    verdict = _verdict(out, result)
    assert verdict["verdict"] == "unknown"
    reasons = [r for r in verdict["reasons"] if "discovers yielded a scan id" in r]
    assert reasons, verdict["reasons"]
    assert all("\n" not in r and "201" in r for r in reasons), reasons
    assert reasons[0] in said  # printed, not only stored
    assert "Traceback" not in said
