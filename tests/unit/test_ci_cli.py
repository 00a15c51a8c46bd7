"""The CI kit on a stored run directory (no cluster): check re-judges by count, rate or
interval from --thresholds or [tool.scanproof.gate], re-renders every report file to
agree, prints --json, writes the step summary once; JUnit ids name the run."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli._main import main
from harness.history.outcomes import Completion
from harness.history.record import CheckSettings, RunConfig, new_record, write_record
from harness.history.writer import HistoryWriter


def _write_lossy_run(run_dir: Path, *, thresholds: dict[str, int]) -> Path:
    """One scan polled 99 times while live, 78 answers not_found, then complete: the
    status_not_found rate is 78 of 100. Recorded as gated with ``thresholds``."""
    run_dir.mkdir(parents=True)
    ok = {"outcome": "ok", "http_status": 200, "body_scan_ids": "scan_1"}
    with HistoryWriter(run_dir, proc="driver-0") as w:
        op = w.invoke(kind="discover", tenant="alice")
        w.complete(op, Completion(outcome="ok", http_status=202, scan_id="scan_1"))
        for i in range(99):
            op = w.invoke(kind="status", tenant="alice", scan_id="scan_1")
            if i % 5 == 0 or i == 98:
                progress = {"completed": 3, "total": 14, "has_progress": True}
                w.complete(op, Completion(body_status="scanning", **progress, **ok))  # type: ignore[arg-type]
            else:
                w.complete(op, Completion(outcome="ok", http_status=404, body_status="not_found"))
        op = w.invoke(kind="status", tenant="alice", scan_id="scan_1")
        done = {"completed": 14, "total": 14, "has_progress": True}
        w.complete(op, Completion(body_status="complete", **done, **ok))  # type: ignore[arg-type]
        op = w.invoke(kind="results", tenant="alice", scan_id="scan_1")
        w.complete(op, Completion(**ok))  # type: ignore[arg-type]
    config = RunConfig(
        preset="claimed-fix", app="reference_impl", scenario={"name": "mixed"}, seed=7
    )
    record = new_record(config=config).but(
        check=CheckSettings(retention_s=3.0, scan_deadline_s=10.0),
        status="complete",
        thresholds=thresholds,
    )
    write_record(run_dir, record)
    return run_dir


@pytest.fixture
def lossy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no ./pyproject.toml: the run's recorded limits apply
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    return _write_lossy_run(tmp_path / "run", thresholds={"status_not_found": 2000})


def _words(run_dir: Path) -> tuple[str, str, str, str]:
    """The verdict as verdict.json, report.md, report.html and junit.xml say it."""
    doc = json.loads((run_dir / "verdict.json").read_text())
    md = (run_dir / "report.md").read_text()
    html = (run_dir / "report.html").read_text()
    suite = ET.parse(run_dir / "junit.xml").getroot().find("testsuite")
    assert suite is not None
    junit = "fail" if int(suite.get("failures", "0")) else "pass"
    md_word = (
        "fail" if "FAIL" in md.splitlines()[0] else "pass" if "PASS" in md.splitlines()[0] else md
    )
    html_word = "fail" if "FAIL" in html else "pass"
    return doc["verdict"], md_word, html_word, junit


def test_check_with_a_rate_threshold_fails_78_percent_and_every_report_file_agrees(
    lossy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(lossy)]) == 0  # judged by the count it recorded: 78 <= 2000
    assert _words(lossy) == ("pass", "pass", "pass", "pass")
    rate = lossy.parent / "rate.toml"
    rate.write_text("status_not_found = { rate = 0.01 }\n")
    capsys.readouterr()
    assert main(["check", str(lossy), "--thresholds", str(rate)]) == 1
    out = capsys.readouterr().out
    assert "status_not_found: rate 78% (78 of 100) > 1% allowed" in out
    assert _words(lossy) == ("fail", "fail", "fail", "fail")
    case = ET.parse(lossy / "junit.xml").getroot().find(".//testcase[@name='status_not_found']")
    assert case is not None
    failure = case.find("failure")
    assert failure is not None
    assert "rate 78% (78 of 100) > 1% allowed" in failure.get("message", "")


def test_check_reads_tool_scanproof_gate_of_pyproject(
    lossy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("pyproject.toml").write_text(
        "[project]\nname = 'x'\n\n[tool.scanproof.gate]\nstatus_not_found = { ci95_upper = 0.5 }\n"
    )
    assert main(["check", str(lossy)]) == 1
    assert "95% interval upper end" in capsys.readouterr().out
    doc = json.loads((lossy / "verdict.json").read_text())
    assert doc["anomalies"]["status_not_found"]["limit"] == {"ci95_upper": 0.5}


def test_check_json_prints_the_verdict_document_on_stdout_and_the_table_on_stderr(
    lossy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check", str(lossy), "--json"]) == 0
    out, err = capsys.readouterr()
    doc = json.loads(out)  # stdout is the document and nothing else
    assert doc["verdict"] == "pass"
    assert doc["run_dir"] == str(lossy)
    assert doc["anomalies"]["status_not_found"]["count"] == 78
    assert doc == json.loads((lossy / "verdict.json").read_text()) | {"run_dir": str(lossy)}
    assert "verdict: PASS" in err
    assert "status_not_found" in err


def test_the_step_summary_holds_one_report_per_run_however_often_it_is_rendered(
    lossy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = lossy.parent / "summary.md"
    summary.write_text("## an earlier step's summary\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    assert main(["check", str(lossy)]) == 0
    rate = lossy.parent / "rate.toml"
    rate.write_text("status_not_found = { rate = 0.01 }\n")
    assert main(["check", str(lossy), "--thresholds", str(rate)]) == 1
    text = summary.read_text()
    assert text.startswith("## an earlier step's summary\n")
    assert text.count("<!-- scanproof-run run -->") == 1
    report = (lossy / "report.md").read_text()
    assert report in text  # the latest report: FAIL, not the first PASS
    assert text.count(report.splitlines()[0]) == 1
    capsys.readouterr()


def test_junit_ids_name_the_scenario_the_preset_and_the_seed(lossy: Path) -> None:
    assert main(["check", str(lossy)]) == 0
    root = ET.parse(lossy / "junit.xml").getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 1
    assert suites[0].get("name") == "scanproof mixed claimed-fix seed=7"
    classnames = {c.get("classname") for c in suites[0].iter("testcase")}
    assert classnames == {"scanproof.mixed.claimed-fix.seed7"}


def test_junit_ids_of_two_seeds_never_collide(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ids = set()
    for seed in (1, 2):
        run_dir = _write_lossy_run(tmp_path / f"run{seed}", thresholds={})
        record = json.loads((run_dir / "run.json").read_text())
        record["config"]["seed"] = seed
        (run_dir / "run.json").write_text(json.dumps(record))
        main(["check", str(run_dir)])
        for case in ET.parse(run_dir / "junit.xml").getroot().iter("testcase"):
            ids.add((case.get("classname"), case.get("name")))
    assert len(ids) == 18  # 9 classes x 2 seeds


def test_coverage_minimums_of_the_gate_make_a_pass_unknown_in_every_file(
    lossy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("pyproject.toml").write_text(
        "[tool.scanproof.gate]\nstatus_not_found = 100\n\n"
        "[tool.scanproof.gate.coverage]\nscanning = 1\ncomplete = 100000\n"
    )
    assert main(["check", str(lossy)]) == 3
    out = capsys.readouterr().out
    assert re.search(r"coverage complete: \d+ ops, at least 100000 required", out)
    doc = json.loads((lossy / "verdict.json").read_text())
    assert doc["verdict"] == "unknown"
    assert doc["coverage_shortfalls"] == [r for r in doc["reasons"] if r.startswith("coverage ")]
    assert "UNKNOWN" in (lossy / "report.md").read_text().splitlines()[0]


def test_a_bad_coverage_key_is_refused_before_judging(
    lossy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Path("pyproject.toml").write_text("[tool.scanproof.gate.coverage]\nscannin = 1\n")
    assert main(["check", str(lossy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("scanproof check: pyproject.toml: ")
    assert "scannin" in err
    assert len(err.strip().splitlines()) == 1
