"""``scanproof run`` says where its wall time went: run.json ``phases``, the last line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.scanproof_cli import scanproof as _scanproof

pytestmark = [pytest.mark.processes]

# A run as short as the reference service allows: 1 s active, 0.5 s recovery, 2 workers.
QUICK = """
name = "quick"
tenants = 2
scans_per_tenant = 1
duration = 100.0
recovery = 50.0
workers = 2
"""


@pytest.mark.slow  # a whole run (~10 s): the fast tier stays under 5 min on 2 cores
def test_a_run_records_phases_that_sum_to_at_most_its_total(tmp_path: Path) -> None:
    scenario = tmp_path / "quick.toml"
    scenario.write_text(QUICK)
    out = tmp_path / "run"
    done = _scanproof("run", "--scenario", str(scenario), "--out", str(out), "--quiet")
    assert done.returncode == 0, done.stdout + done.stderr
    phases = json.loads((out / "run.json").read_text())["phases"]
    expected = ["startup", "cluster_start", "active", "recovery", "teardown", "judging"]
    assert set(phases) == {*expected, "rendering", "total"}  # the time scale is stated
    assert sum(v for k, v in phases.items() if k != "total") <= phases["total"]
    assert phases["active"] >= 0.9  # 100 service seconds at the default scale 0.01
    assert 0 < phases["startup"] < phases["total"]
    assert done.stdout.splitlines()[-1].startswith(f"time: {phases['total']:.1f} s (startup ")
    # the report was written while rendering: its total stops before rendering
    assert "· total before rendering `" in (out / "report.md").read_text()
