"""Reports name what was tested and how it was timed: app and contract for a foreign
app (never "preset unknown"), every timing value with its source, the calibration,
the kept worker logs, and the status words the contract did not understand.

Run directories are built with the harness's own writer and judge
(``tests.unit.reports.run_catalogue``); the plots are stubbed (text-only tests).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from reports import render
from reports.render import RenderedReport, render_run
from tests.unit.reports.run_catalogue import full_record, healthy_history, write_run

FOREIGN_CONFIG = {
    "app": "jobs.main:app",
    "preset": None,
    "contract_file": "contracts/jobs.toml",
    "contract": {"discover_path": "/jobs", "status_path": "/jobs/{scan_id}"},
    "scenario": {"name": "mixed"},
    "seed": 3,
    "workers": 4,
    "time_scale": 0.0125,
}
CHECK = {
    "retention_s": 27.0,
    "scan_deadline_s": 6.0,
    "sources": {
        "time_scale": {"value": 0.0125, "source": "calibration"},
        "retention_s": {"value": 30.0, "source": "command line"},
        "scan_deadline_s": {"value": 6.0, "source": "calibration"},
        "retention_margin_s": 3.0,
        "deadline_slack": 1.0,
    },
}
CALIBRATION = {
    "scan_seconds": [1.9, 2.0, 2.4],
    "n": 3,
    "median_s": 2.0,
    "p95_s": 2.36,
    "settings": {"scans": 3, "slack": 3.0},
    "scans": [{"scan_id": "j1", "seconds": 1.9, "state": "complete", "polls": 7}],
}


@pytest.fixture(autouse=True)
def _stub_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("status_plot", "rates_plot", "latency_plot"):
        monkeypatch.setattr(render, name, lambda *a, **k: b"\x89PNG\r\n\x1a\nstub")


def _foreign_run(tmp_path: Path, **record: Any) -> RenderedReport:
    run = write_run(
        tmp_path / "run",
        healthy_history().build(),
        record=full_record(config=FOREIGN_CONFIG, check=CHECK, **record),
    )
    return render_run(run, step_summary=False)


def _html_text(path: Path) -> str:
    parser = HTMLParser()
    chunks: list[str] = []
    parser.handle_data = chunks.append  # type: ignore[method-assign]
    parser.feed(path.read_text())
    return " ".join(" ".join(chunks).split())


def _properties(report: RenderedReport) -> dict[str, str]:
    root = ET.parse(report.junit).getroot()
    return {p.get("name", ""): p.get("value", "") for p in root.iter("property")}


def test_a_foreign_app_report_names_app_and_contract_file_not_preset_unknown(
    tmp_path: Path,
) -> None:
    report = _foreign_run(tmp_path)
    md = report.markdown.read_text()
    assert "app `jobs.main:app` · contract `contracts/jobs.toml` · scenario `mixed`" in md
    assert "preset" not in md
    html = _html_text(report.html)
    assert "app jobs.main:app · contract contracts/jobs.toml" in html
    assert "preset" not in html.split("run.json")[0]  # the run record appendix may say null
    props = _properties(report)
    assert props["app"] == "jobs.main:app"
    assert props["contract"] == "contracts/jobs.toml"
    assert "preset" not in props


def test_a_foreign_app_without_a_recorded_contract_file_says_so(tmp_path: Path) -> None:
    config = {k: v for k, v in FOREIGN_CONFIG.items() if k != "contract_file"}
    run = write_run(tmp_path / "run", healthy_history().build(), record=full_record(config=config))
    md = render_run(run, step_summary=False).markdown.read_text()
    assert "contract `custom (file not recorded)`" in md
    config["contract"] = {}
    (run / "run.json").write_text(json.dumps(full_record(config=config)))
    md = render_run(run, step_summary=False).markdown.read_text()
    assert "app `jobs.main:app` · contract `unknown`" in md


def test_the_reference_keeps_its_preset(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", healthy_history().build(), record=full_record())
    md = render_run(run, step_summary=False).markdown.read_text()
    assert "app `reference_impl` · preset `claimed-fix` · scenario `mixed`" in md


def test_every_timing_value_shows_its_source_and_the_calibration_measurements(
    tmp_path: Path,
) -> None:
    report = _foreign_run(tmp_path, calibration=CALIBRATION)
    md = report.markdown.read_text()
    timing = md.split("### Timing")[1].split("###")[0]
    assert "| `time_scale` | 0.0125 | `calibration` |" in timing
    assert "| `retention_s` | 30 | `command line` |" in timing
    assert "| `scan_deadline_s` | 6 | `calibration` |" in timing
    assert "| `retention_margin_s` | 3 | `derived` |" in timing
    assert "| `retention_s (judged)` | 27 |" in timing
    rows = [line for line in timing.splitlines() if line.startswith("| `")]
    assert [r.split(" | ")[0] for r in rows] == [
        "| `time_scale`",
        "| `retention_s`",
        "| `scan_deadline_s`",
        "| `deadline_slack`",
        "| `retention_margin_s`",
        "| `retention_s (judged)`",
        "| `scan_deadline_s (judged)`",
    ]
    assert "Calibration: scan\\_seconds `1.9, 2, 2.4` · n `3` · median\\_s `2`" in timing
    assert "settings.slack `3`" in timing
    assert "scans\\[0\\] `scan_id j1, seconds 1.9, state complete, polls 7`" in timing
    html = _html_text(report.html)
    assert "time_scale 0.0125 calibration" in html
    assert "Calibration measurements: measure value scan_seconds 1.9, 2, 2.4 n 3" in html
    assert _properties(report)["timing.time_scale"] == "0.0125 (calibration)"


def test_a_run_without_calibration_or_sources_renders_without_those_sections(
    tmp_path: Path,
) -> None:
    record = full_record()
    del record["config"]["time_scale"]
    run = write_run(tmp_path / "run", healthy_history().build(), record=record)
    md = render_run(run, step_summary=False).markdown.read_text()
    assert "### Timing" not in md
    assert "Calibration" not in md


def test_kept_worker_logs_are_listed_with_incarnations_and_linked(tmp_path: Path) -> None:
    logs = tmp_path / "run" / "workers"
    logs.mkdir(parents=True)
    header = "=== scanproof: worker {i}, incarnation {n}, pid {p}, started 2026-01-01T00:00:00Z ==="
    (logs / "1.log").write_text(
        header.format(i=1, n=1, p=10) + "\nTraceback (most recent call last):\n  boom\n"
        + header.format(i=1, n=2, p=11) + "\nhello\n"
    )  # fmt: skip
    (logs / "0.log").write_text(header.format(i=0, n=1, p=9) + "\n")
    (logs / "router.log").write_text("")
    (logs / "notes.txt").write_text("not a log")
    report = _foreign_run(tmp_path)
    md = report.markdown.read_text()
    section = md.split("### Worker logs")[1].split("###")[0]
    assert section.strip().splitlines() == [
        "- [`workers/0.log`](workers/0.log): 1 incarnation, 80 B",
        "- [`workers/1.log`](workers/1.log): 2 incarnations, 210 B, 1 traceback",
        "- [`workers/router.log`](workers/router.log): 0 B",
    ]
    html = report.html.read_text()
    assert '<a href="workers/1.log"><code>workers/1.log</code></a>' in html
    assert "notes.txt" not in html


def test_unknown_status_words_in_the_verdict_are_a_warning_everywhere(tmp_path: Path) -> None:
    report = _foreign_run(tmp_path)
    run = report.markdown.parent
    verdict = json.loads((run / "verdict.json").read_text())
    verdict["understanding"] = {"unknown_words": {"queued": 12, "paused": 1}}
    (run / "verdict.json").write_text(json.dumps(verdict))
    report = render_run(run, step_summary=False)
    line = 'status words the contract does not list: "queued" (12), "paused" (1)'
    assert "> Warning: " + line in report.markdown.read_text().replace("\\", "")
    assert line in _html_text(report.html)
    system_err = ET.parse(report.junit).getroot().find("testsuite/system-err")
    assert system_err is not None
    assert line in (system_err.text or "")


def test_understanding_lines_already_in_the_reasons_are_not_repeated(tmp_path: Path) -> None:
    report = _foreign_run(tmp_path)
    run = report.markdown.parent
    verdict = json.loads((run / "verdict.json").read_text())
    said = '12 of 40 status answers carried words the contract does not list: "queued" (12)'
    verdict["reasons"] = [said]
    verdict["understanding"] = {"reasons": [said], "warnings": ["status path matched 0 of 3"]}
    (run / "verdict.json").write_text(json.dumps(verdict))
    md = render_run(run, step_summary=False).markdown.read_text().replace("\\", "")
    assert md.count("carried words the contract does not list") == 1
    assert "> Warning: status path matched 0 of 3" in md
