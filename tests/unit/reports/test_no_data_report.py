"""The report shows why a run is unknown and, per class, whether it was exercised."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.history.record import CheckSettings, RunConfig, new_record, write_record
from harness.history.writer import Completion, HistoryWriter
from harness.judging.run_dir import judge_run_dir
from reports import render_run


def _one_scan_run(run_dir: Path, *, status: str) -> Path:
    """One scan, still scanning, polled twice and fetched once (202) by its owner only;
    the run should have exercised cross_tenant_leak (a prober was planned) but no probe
    was recorded. Nothing finished, so status_regression and stuck_scan (not required
    here) have no opportunity either."""
    run_dir.mkdir()
    poll = Completion(outcome="ok", http_status=200, body_status="scanning", body_scan_ids="s1",
                      completed=3, total=14, has_progress=True)  # fmt: skip
    partial = Completion(outcome="ok", http_status=202, body_scan_ids="s1")
    with HistoryWriter(run_dir, proc="driver-0") as w:
        op = w.invoke(kind="discover", tenant="alice")
        w.complete(op, Completion(outcome="ok", http_status=202, scan_id="s1"))
        for kind, done in (("status", poll), ("status", poll), ("results", partial)):
            w.complete(w.invoke(kind=kind, tenant="alice", scan_id="s1"), done)  # type: ignore[arg-type]
    expected = ("status_not_found", "results_404", "cross_tenant_leak")
    record = new_record(config=RunConfig(app="shop.main:app")).but(
        status=status,
        check=CheckSettings(retention_s=3.0, scan_deadline_s=10.0, expected_classes=expected),
    )
    write_record(run_dir, record)
    judge_run_dir(run_dir)
    return run_dir


@pytest.mark.usefixtures("stub_plots")
def test_a_class_not_exercised_is_shown_with_the_reason_in_every_format(tmp_path: Path) -> None:
    report = render_run(_one_scan_run(tmp_path / "run", status="complete"), step_summary=False)
    md = report.markdown.read_text()
    reason = (
        "not exercised: cross_tenant_leak got no opportunity, though the run should exercise it"
    )
    assert md.startswith("## UNKNOWN: " + reason.replace("_", "\\_") + "\n")  # Markdown-escaped
    rows = {line.split("|")[1].strip(" `"): line for line in md.splitlines() if "| `" in line}
    assert rows["cross_tenant_leak"].rstrip(" |").endswith("no (expected)")
    assert "**UNKNOWN**" in rows["cross_tenant_leak"]
    assert rows["status_not_found"].rstrip(" |").endswith("yes")
    assert rows["wrong_scan"].rstrip(" |").endswith("yes")
    for unrequired in ("status_regression", "stuck_scan"):
        assert rows[unrequired].rstrip(" |").endswith("no (not required)")
        assert "| pass |" in rows[unrequired]
    assert reason in report.html.read_text()
    suite = ET.parse(report.junit).getroot().find("testsuite")
    assert suite is not None
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    error = cases["cross_tenant_leak"].find("error")
    assert error is not None
    assert error.get("message") == (
        "cross_tenant_leak: 0 of 0 (no data: not exercised, so no verdict)"
    )
    assert cases["stuck_scan"].find("error") is None  # not required: no verdict lost
    err = suite.find("system-err")
    assert err is not None
    assert reason in (err.text or "")


@pytest.mark.usefixtures("stub_plots")
def test_an_incomplete_run_says_so_at_the_top_of_the_report(tmp_path: Path) -> None:
    report = render_run(_one_scan_run(tmp_path / "run", status="interrupted"), step_summary=False)
    md = report.markdown.read_text()
    assert md.splitlines()[0].startswith("## UNKNOWN: ")
    assert "\n- incomplete: judged 4 ops recorded before the run was interrupted\n" in md
