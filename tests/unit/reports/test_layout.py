"""What a reviewer meets first, and what the report no longer hides: layout, coverage,
plot lanes, folded witnesses, interrupted runs, no runner paths in report.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.history import schema as S
from harness.history.record import CheckSettings, RunConfig, new_record, write_record
from harness.judging.run_dir import judge_run_dir
from reports import render_run
from reports.plots import CORRECT_REFUSAL, _lane_of
from tests.unit.history_catalogue import Hist, healthy_scan
from tests.unit.reports.run_catalogue import full_record, lost_scan_history, write_run


def test_status_plot_lanes_separate_correct_refusals_from_the_owners_anomalies() -> None:
    h = healthy_scan(Hist())  # alice owns s1
    h.status("mallory", "s1", "not_found", at=150)  # another tenant: correct
    h.status("mallory", "s1", "refused", at=160, http_status=403)  # another tenant: correct
    h.results("mallory", "s1", 404, at=170)  # another tenant: correct
    h.status("alice", "s1", "not_found", at=180)  # the owner: the bug
    h.results("alice", "s1", 404, at=190)  # the owner: the bug
    ops = h.build().ops
    lanes = dict(zip(ops[S.OP], _lane_of(ops), strict=True))
    by_at = {int(t) // 1_000_000: lanes[o] for o, t in zip(ops[S.OP], ops[S.T_INVOKE], strict=True)}
    assert by_at[150] == by_at[160] == by_at[170] == CORRECT_REFUSAL
    assert by_at[180] == "owner: not_found"
    assert by_at[190] == "owner: results not_found"
    assert by_at[100] == "scanning"
    assert by_at[300] == "complete"
    assert by_at[0] == ""  # a discover is not drawn


def _failing_with_many_witnesses(tmp: Path) -> Path:
    h = lost_scan_history()
    for i in range(4):  # four more owner not_found polls while s1 runs: five witnesses
        h.status("alice", "s1", "not_found", at=3420 + i, worker=2)
    return write_run(tmp / "many", h.build(), record=full_record())


@pytest.mark.usefixtures("stub_plots")
def test_html_opens_on_verdict_contents_classes_then_plots_and_folds_later_witnesses(
    tmp_path: Path,
) -> None:
    html = render_run(_failing_with_many_witnesses(tmp_path), step_summary=False).html
    page = html.read_text()
    order = [
        page.index('id="verdict"'),
        page.index('class="toc"'),
        page.index('id="classes"'),
        page.index('id="plots"'),
        page.index('id="coverage"'),
        page.index('id="witnesses"'),
        page.index('id="workers"'),
    ]
    assert order == sorted(order)
    witnesses = page[page.index('id="w-status_not_found"') :]
    first_fold = witnesses.index("<details>")
    assert witnesses.index("Poll #3") < first_fold  # the first witness shows
    assert "4 more recorded witnesses</summary>" in witnesses
    # every table scrolls inside its own box; the per-worker table is one column per worker
    assert page.count("<table>") == page.count('<div class="scroll"><table>')
    workers = page[page.index('id="workers"') :]
    assert "<th>worker 0</th>" in workers
    assert "<th>no answer</th>" in workers


@pytest.mark.usefixtures("stub_plots")
def test_report_md_names_the_run_directory_never_a_path_on_the_runner(tmp_path: Path) -> None:
    run = write_run(tmp_path / "ci-runner" / "run-7", lost_scan_history().build(),
                    record=full_record())  # fmt: skip
    md = render_run(run, step_summary=False).markdown.read_text()
    assert str(tmp_path) not in md
    assert "`run-7`" in md.splitlines()[-1]


def _as_shard(h: Hist, run_dir: Path) -> None:
    """The catalogue history as one JSONL shard, event by event, as a recorder writes it."""
    invoke_cols = (S.OP, S.PROC, S.KIND, S.TENANT, S.SCAN_ID, S.FILTERS, S.PINNED_WORKER,
                   S.T_INVOKE)  # fmt: skip
    lines = []
    for row in h.build().ops.to_dict("records"):
        base = {S.EVENT: S.EV_INVOKE, S.FORMAT: S.HISTORY_FORMAT}
        lines.append(base | {c: row[c] for c in invoke_cols})
        done = {c: row[c] for c in S.OP_COLUMNS if c not in invoke_cols or c == S.OP}
        lines.append({S.EVENT: S.EV_COMPLETE, S.FORMAT: S.HISTORY_FORMAT} | done
                     | {S.SCAN_ID: row[S.SCAN_ID]})  # fmt: skip
    for fault in h.faults:
        lines.append({S.EVENT: S.EV_FAULT, S.FORMAT: S.HISTORY_FORMAT} | fault)
    text = "\n".join(json.dumps(line, default=lambda v: v.item()) for line in lines)
    (run_dir / "driver-0.jsonl").write_text(text + "\n")


@pytest.mark.usefixtures("stub_plots")
def test_judging_records_coverage_and_every_format_shows_it(tmp_path: Path) -> None:
    run = tmp_path / "judged"
    run.mkdir()
    _as_shard(lost_scan_history(), run)
    record = new_record(config=RunConfig(app="reference_impl", preset="claimed-fix")).but(
        status="complete", check=CheckSettings(retention_s=3.0, scan_deadline_s=10.0)
    )
    write_record(run, record)
    judge_run_dir(run)
    doc = json.loads((run / "verdict.json").read_text())["coverage"]
    rows = {r["state"]: r for r in doc["rows"]}
    assert doc["faults"] == ["worker_kill"]
    # alice's s1 was scanning while worker_kill (3.0-3.6 s) was in effect: polls at
    # 3.0, 3.38, 3.41 and the results fetch at 3.5
    assert rows["scanning"]["faults"]["worker_kill"] == {"scans": 1, "ops": 4}
    assert rows["failed"]["ops"] == 0
    report = render_run(run, step_summary=False)
    md = report.markdown.read_text()
    assert "### Coverage" in md
    assert "| scanning | " in md
    assert "| 4 (1) |" in md
    assert "- failed: never reached" in md
    assert 'id="coverage"' in report.html.read_text()


@pytest.mark.usefixtures("stub_plots")
def test_an_interrupted_never_judged_run_renders_every_file_and_says_so(tmp_path: Path) -> None:
    run = write_run(tmp_path / "cut", lost_scan_history().build(),
                    record=full_record(status="interrupted"))  # fmt: skip
    (run / "verdict.json").unlink()
    report = render_run(run, step_summary=False)
    for path in (report.markdown, report.html, report.junit, *report.plots):
        assert path.exists()
    first = report.markdown.read_text().splitlines()[0]
    never = "## UNKNOWN: this run was never judged (no verdict.json)"
    assert first == never + "; run interrupted, history partial"
    assert "run interrupted, history partial" in report.html.read_text()
    # coverage is counted from the history when no verdict recorded it
    assert "### Coverage" in report.markdown.read_text()
