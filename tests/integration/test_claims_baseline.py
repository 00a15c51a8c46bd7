"""Claims and baseline comparisons end to end, through the command line, on real runs.

Real processes: the reference service as worker processes behind the router,
the embedded Redis, the scripted driver and the nemesis.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main

pytestmark = [pytest.mark.processes, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MERGE = REPO / "claims" / "merge-confirmation.toml"
_FAULT_SENTENCE = re.compile(
    r"Faults? in effect: |No fault was injected|No fault had been injected yet|No fault in effect"
)


def _outcomes(out: Path) -> dict[str, dict[str, object]]:
    doc = json.loads((out / "claims.json").read_text())
    return {c["id"]: c for c in doc["claims"]}


def test_the_merge_promises_1_2_4_5_are_refuted_on_claimed_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "claims"
    code = main(["claims", str(MERGE), "--preset", "claimed-fix", "--out", str(out), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 1
    claims = _outcomes(out)
    for cid in ("1", "2", "4", "5"):
        claim = claims[cid]
        assert claim["outcome"] == "REFUTED", claim
        witness = str(claim["witness"])
        assert "worker" in witness, witness  # told in words: which worker served what
        assert _FAULT_SENTENCE.search(witness), witness  # says which fault, if any, was on
        assert "95% CI" in str(claim["atoms"][0]["evidence"]), claim  # type: ignore[index]
    # F1 is the story: consecutive requests on different workers, no fault needed.
    for cid in ("1", "2"):
        assert "No fault had been injected yet" in str(claims[cid]["witness"]), claims[cid]
    # F6 is open on claimed-fix: a fresh scan's placeholder says 0 of 0 strategies.
    assert claims["3"]["outcome"] == "REFUTED", claims["3"]
    assert "[REFUTED] 1. Status is always scanning or complete, never not_found" in printed
    md = (out / "claims.md").read_text()
    assert md.startswith("## Merge Confirmation: the five promises: REFUTED")
    runs = sorted((out / "runs").iterdir())
    assert [r.name for r in runs] == ["claimed-fix-s0", "claimed-fix-s1"]  # the file's seeds
    assert (runs[0] / "report.md").exists()

    # The same runs judged again without running anything give the same outcomes.
    again = tmp_path / "again"
    args = ["claims", str(MERGE), "--out", str(again), "--quiet"]
    assert main([*args, "--run", str(runs[0]), "--run", str(runs[1])]) == 1
    assert {k: v["outcome"] for k, v in _outcomes(again).items()} == {
        k: v["outcome"] for k, v in claims.items()
    }


def test_sound_confirms_what_it_measured_and_says_what_it_could_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "claims"
    code = main(
        ["claims", str(MERGE), "--preset", "sound", "--seeds", "2", "--out", str(out), "--quiet"]
    )
    printed = capsys.readouterr().out
    claims = _outcomes(out)
    assert all(c["outcome"] != "REFUTED" for c in claims.values()), printed
    # 0 of ~2,000 polls (two seeds; ~730 on a saturated machine, where one seed's 367 left
    # the upper bound at 1.04%): the upper bound is under the 1% tolerance.
    assert claims["1"]["outcome"] == "CONFIRMED", claims["1"]
    # ~50 probes cannot put the upper bound under 1%: the output says how many more would.
    assert claims["5"]["outcome"] == "INCONCLUSIVE"
    assert "more requests by a non-owner" in str(claims["5"]["atoms"][0]["evidence"])  # type: ignore[index]
    assert code == 3  # nothing refuted, not everything decided: never a pass


ONE_WORKER = """
name = "one-worker"
workers = 1
tenants = 6
scans_per_tenant = 1
probes = 0.0
duration = 400.0
recovery = 200.0
"""


def test_gate_against_a_baseline_flags_the_regressions_of_pre_fix_over_claimed_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One worker and one scan per tenant: only what the merge fixed in a single process
    # differs (F5: complete without progress). Shared result slots (F9) would make
    # claimed-fix's progress on complete regress when a newer scan overwrites the slot;
    # with several workers claimed-fix is itself worse in some classes
    # (docs/evidence.md), which the same comparison reports.
    scenario = tmp_path / "one-worker.toml"
    scenario.write_text(ONE_WORKER)
    common = ["--scenario", str(scenario), "--quiet"]
    base, cand, back = tmp_path / "claimed", tmp_path / "pre", tmp_path / "claimed-again"
    assert main(["run", "--preset", "claimed-fix", *common, "--out", str(base)]) == 0
    capsys.readouterr()

    code = main(
        ["gate", "--preset", "pre-fix", *common, "--out", str(cand), "--baseline", str(base)]
    )
    printed = capsys.readouterr().out
    assert code == 1, printed
    assert "regressed (one-sided two-proportion z-test, alpha 0.05): zero_progress" in printed
    # the comparison table follows the run's own summary table
    zero = [line for line in printed.splitlines() if line.startswith("zero_progress")][-1]
    assert zero.endswith("regressed")
    assert zero.count("[") == 2  # both intervals
    assert "<0.0001" in zero  # the p-value

    code = main(
        ["gate", "--preset", "claimed-fix", *common, "--out", str(back), "--baseline", str(cand)]
    )
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert "improved: zero_progress" in printed

    assert main(["compare", str(base), str(cand)]) == 1
    assert main(["compare", str(cand), str(base)]) == 0


def test_compare_refuses_a_directory_that_holds_no_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "no verdict.json" in capsys.readouterr().err
