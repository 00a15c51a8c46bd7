"""What a reviewer sees in the rendered files of a run directory."""

from __future__ import annotations

import base64
import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.history import schema as S
from harness.history.tables import Completion, HistoryWriter
from reports import RenderedReport, render_run
from tests.unit.reports.run_catalogue import (
    HOSTILE,
    full_record,
    healthy_history,
    hostile_history,
    lost_scan_history,
    write_run,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_VOID = {"meta", "img", "br", "hr", "link", "input"}


@pytest.fixture(scope="module")
def failing(tmp_path_factory: pytest.TempPathFactory) -> RenderedReport:
    run = write_run(
        tmp_path_factory.mktemp("failing"), lost_scan_history().build(), record=full_record()
    )
    return render_run(run, step_summary=False)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> RenderedReport:
    run = write_run(
        tmp_path_factory.mktemp("hostile"), hostile_history().build(), record=full_record()
    )
    return render_run(run, step_summary=False)


def _junit_cases(report: RenderedReport) -> dict[str, ET.Element]:
    root = ET.parse(report.junit).getroot()
    (suite,) = root.iter("testsuite")
    assert suite.get("name", "").startswith(
        "scanproof "
    )  # the run's ids follow (reports/_junit.py)
    return {case.get("name", ""): case for case in suite.iter("testcase")}


class _Html(HTMLParser):
    """Collects every src/href and checks that each end tag closes the innermost open one."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.links: list[tuple[str, str, str]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href"):
                self.links.append((tag, name, value or ""))
        if tag not in _VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.stack[-1:] == [tag], f"</{tag}> closes {self.stack[-1:]}"
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse_html(path: Path) -> _Html:
    parser = _Html()
    parser.feed(path.read_text(encoding="utf-8"))
    parser.close()
    assert parser.stack == [], f"unclosed tags {parser.stack}"
    return parser


def test_markdown_starts_with_the_verdict_and_shows_every_class_with_its_count(
    failing: RenderedReport,
) -> None:
    md = failing.markdown.read_text()
    assert md.startswith("## FAIL: 2 of 9 anomaly classes over their threshold\n")
    assert failing.verdict == "fail"
    summary = md.splitlines()[2]
    for part in ("`reference_impl`", "`claimed-fix`", "`mixed`", "`7`", "4 workers",
                 "`embedded`", "13 ops", "5.50 s"):  # fmt: skip
        assert part in summary
    counts = {
        m.group(1): int(m.group(2))
        for m in re.finditer(r"^\| `(\w+)` \| [^|]+ \| (\d+) \|", md, flags=re.MULTILINE)
    }
    assert counts == {name: 0 for name in S.ANOMALY_CLASSES} | {
        "status_not_found": 1,
        "results_404": 1,
    }
    assert "| `status_not_found` | **FAIL** | 1 | 7 | 14.29% | 2.57%-51.31% | 0 |" in md
    assert "| `status_regression` | pass | 0 | 0 | no data |" in md


def test_failing_class_account_names_worker_status_previous_poll_and_fault(
    failing: RenderedReport,
) -> None:
    md = failing.markdown.read_text()
    (line,) = [ln for ln in md.splitlines() if ln.startswith("- **status\\_not\\_found**")]
    assert "Poll #3 of scan `s1` by `alice` was served by worker 2 at 3.41 s" in line
    assert "said `not_found`, 0.80 s after the scan was accepted by worker 0" in line
    assert "the previous poll (worker 1, 3.38 s) said `scanning 0/14`" in line
    assert "Fault in effect: `worker_kill` on `worker:3` (`f0`)" in line
    # the class with the highest rate leads, in words, before the per-class list
    worst = md.index("### Worst witness: `results_404`")
    assert worst < md.index("### Failing classes")
    assert "Results fetch #1 of scan `s1` by `alice` was served by worker 3" in md[worst:]
    assert "| `f0` | `worker_kill` | `worker:3` | 3.00 s | 3.60 s | yes | no |" in md
    assert "report.html" in md.splitlines()[-1]


def test_html_is_self_contained_parses_and_embeds_every_png_plot(
    failing: RenderedReport,
) -> None:
    page = _parse_html(failing.html)
    images = [v for tag, name, v in page.links if tag == "img"]
    # status, rates, one timeline per class with anomalies (the two failing ones), latency
    assert [p.name for p in failing.plots] == [
        "plot_status.png",
        "plot_rates.png",
        "plot_class_status_not_found.png",
        "plot_class_results_404.png",
        "plot_latency.png",
    ]
    assert len(images) == len(failing.plots)
    external = [v for _, _, v in page.links if re.match(r"(https?:)?//", v)]
    assert external == []
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG_MAGIC)
    text = " ".join(page.text)
    assert "FAIL" in text
    assert "worker 2" in text
    assert "Per worker" in text
    for plot in failing.plots:
        assert plot.read_bytes().startswith(PNG_MAGIC)


def test_junit_has_one_case_per_class_and_fails_exactly_the_failing_ones(
    failing: RenderedReport,
) -> None:
    cases = _junit_cases(failing)
    assert list(cases) == list(S.ANOMALY_CLASSES)
    failed = {n for n, c in cases.items() if c.find("failure") is not None}
    assert failed == {"status_not_found", "results_404"}
    assert all(c.find("error") is None for c in cases.values())
    failure = cases["status_not_found"].find("failure")
    assert failure is not None
    message = failure.get("message", "")
    assert "1 of 7 (14.29%, 95% CI 2.57%-51.31%)" in message
    assert "1 > 0 allowed" in message
    assert "served by worker 2" in (failure.text or "")
    assert "worker_kill on worker:3 (f0)" in (failure.text or "")
    props = {
        p.get("name"): p.get("value") for p in ET.parse(failing.junit).getroot().iter("property")
    }
    assert (props["scenario"], props["preset"], props["seed"]) == ("mixed", "claimed-fix", "7")


@pytest.mark.usefixtures("stub_plots")
def test_a_crashed_checker_is_a_junit_error_and_the_report_says_unknown(tmp_path: Path) -> None:
    edit = {
        "verdict": "unknown",
        "reasons": ["stuck_scan: checker crashed: KeyError: '_owner'"],
        "anomalies": {"stuck_scan": {"error": "KeyError: '_owner'", "verdict": "unknown"}},
    }
    run = write_run(tmp_path, healthy_history().build(), record=full_record(), verdict_edit=edit)
    report = render_run(run, step_summary=False)
    cases = _junit_cases(report)
    error = cases["stuck_scan"].find("error")
    assert error is not None
    assert "KeyError" in error.get("message", "")
    assert [n for n, c in cases.items() if c.find("error") is not None] == ["stuck_scan"]
    assert all(c.find("failure") is None for c in cases.values())
    md = report.markdown.read_text()
    assert md.startswith("## UNKNOWN: 1 of 9 checkers could not decide")
    assert "| `stuck_scan` | **UNKNOWN** |" in md


@pytest.mark.usefixtures("stub_plots")
def test_healthy_run_passes_everywhere(tmp_path: Path) -> None:
    run = write_run(tmp_path, healthy_history().build(), record=full_record())
    report = render_run(run, step_summary=False)
    md = report.markdown.read_text()
    assert md.startswith("## PASS: no anomaly class over its threshold")
    assert "Worst witness" not in md
    assert "No faults were injected." in md
    cases = _junit_cases(report)
    assert all(len(c) == 1 and c[0].tag == "system-out" for c in cases.values())


@pytest.mark.usefixtures("stub_plots")
def test_a_class_judged_under_a_threshold_passes_in_tables_and_junit(tmp_path: Path) -> None:
    run = write_run(
        tmp_path, lost_scan_history().build(), record=full_record(thresholds={"results_404": 1})
    )
    report = render_run(run, step_summary=False)
    failed = {n for n, c in _junit_cases(report).items() if c.find("failure") is not None}
    assert failed == {"status_not_found"}
    assert "| `results_404` | pass | 1 |" in report.markdown.read_text()


@pytest.mark.usefixtures("stub_plots")
def test_reports_show_the_recorded_class_word_and_never_re_decide_it(tmp_path: Path) -> None:
    # verdict.json says results_404 passed (judged under some threshold); run.json records
    # none: the report must still say what the judge said, not re-decide with 0.
    edit = {"anomalies": {"results_404": {"verdict": "pass", "threshold": 7}}}
    run = write_run(tmp_path, lost_scan_history().build(), record=full_record(), verdict_edit=edit)
    report = render_run(run, step_summary=False)
    failed = {n for n, c in _junit_cases(report).items() if c.find("failure") is not None}
    assert "results_404" not in failed
    assert "| `results_404` | pass | 1 |" in report.markdown.read_text()


@pytest.mark.parametrize("name", ["verdict.json", "run.json"])
def test_a_newer_file_format_is_refused_in_one_line(tmp_path: Path, name: str) -> None:
    run = write_run(tmp_path, healthy_history().build(), record=full_record())
    doc = json.loads((run / name).read_text())
    doc["format"] = 99
    (run / name).write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=rf"{name}: format 99 is newer than this scanproof"):
        render_run(run, step_summary=False)


@pytest.mark.usefixtures("stub_plots")
def test_thresholds_and_warnings_recorded_in_run_json_are_used(tmp_path: Path) -> None:
    record = full_record(
        thresholds={"status_not_found": 5},
        warnings=["fault f3 redis_pause on redis did not land: fakeredis cannot pause"],
    )
    run = write_run(tmp_path, lost_scan_history().build(), record=record)
    report = render_run(run, step_summary=False)
    failed = {n for n, c in _junit_cases(report).items() if c.find("failure") is not None}
    assert failed == {"results_404"}
    md = report.markdown.read_text()
    assert "> Warning: fault f3 redis\\_pause on redis did not land" in md


def test_a_missing_run_directory_is_one_clear_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such run directory"):
        render_run(tmp_path / "nope")


@pytest.mark.usefixtures("stub_plots")
def test_run_json_missing_fields_still_renders_as_unknown(tmp_path: Path) -> None:
    run = write_run(tmp_path, lost_scan_history().build(), record={"status": "interrupted"})
    report = render_run(run, step_summary=False)
    md = report.markdown.read_text()
    assert md.startswith("## FAIL: 2 of 9 anomaly classes over their threshold; run interrupted")
    assert "app `unknown` · preset `unknown` · scenario `unknown`" in md
    assert "workers `unknown`" in md
    # with no t0 in run.json, times count from the first recorded event
    assert "served by worker 2 at 3.41 s" in md
    _parse_html(report.html)
    assert len(_junit_cases(report)) == len(S.ANOMALY_CLASSES)


@pytest.mark.usefixtures("stub_plots")
def test_directory_with_only_shards_renders_as_not_judged(tmp_path: Path) -> None:
    with HistoryWriter(tmp_path, proc="driver-0") as w:
        op = w.invoke(kind="discover", tenant="alice")
        w.complete(op, Completion(outcome="ok", http_status=200, worker=1, scan_id="s1"))
    report = render_run(tmp_path, step_summary=False)
    assert report.verdict == "unknown"
    md = report.markdown.read_text()
    assert md.startswith("## UNKNOWN: this run was never judged (no verdict.json)")
    assert "run.json is missing" in md
    assert "rebuilt from the JSONL shards" in md
    cases = _junit_cases(report)
    assert all(c.find("error") is not None for c in cases.values())


def _outside_code_spans(md: str) -> str:
    return re.sub(r"(`+).*?\1", "", md)


def test_service_strings_with_markup_are_escaped_in_every_format(
    hostile: RenderedReport,
) -> None:
    html_text = hostile.html.read_text()
    assert "<script" not in html_text
    assert "<img src=x" not in html_text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html_text
    assert "evil.example" in html_text
    page = _parse_html(hostile.html)
    assert not [v for _, _, v in page.links if "evil" in v]
    md = hostile.markdown.read_text()
    assert HOSTILE in md  # shown, literally, inside a code span
    bare = _outside_code_spans(md)
    assert re.findall(r"(?<!\\)<", bare) == []  # every "<" outside code is backslash-escaped
    assert "@everyone" not in bare
    cases = _junit_cases(hostile)  # parses, so the markup was escaped
    failure = cases["cross_tenant_leak"].find("failure")
    assert failure is not None
    assert f"by {HOSTILE} was served by worker 1" in (failure.text or "")


@pytest.mark.usefixtures("stub_plots")
def test_step_summary_gets_the_markdown_once_per_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    run = write_run(tmp_path / "run", lost_scan_history().build(), record=full_record())
    report = render_run(run)
    assert report.step_summary == summary
    section = (
        f"<!-- scanproof-run run -->\n{report.markdown.read_text()}<!-- /scanproof-run run -->\n"
    )
    assert summary.read_text() == "earlier step\n" + section
    render_run(run)  # rendered again (check, report): replaced, not appended
    assert summary.read_text() == "earlier step\n" + section


@pytest.mark.usefixtures("stub_plots")
def test_step_summary_that_cannot_be_written_is_a_problem_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "no" / "such" / "dir.md"))
    run = write_run(tmp_path / "run", healthy_history().build(), record=full_record())
    report = render_run(run)
    assert report.step_summary is None
    assert report.markdown.exists()
    assert any("GITHUB_STEP_SUMMARY" in p for p in report.problems)


@pytest.mark.usefixtures("stub_plots")
def test_verdict_shown_is_the_recorded_one(tmp_path: Path) -> None:
    run = write_run(tmp_path, healthy_history().build(), record=full_record())
    recorded = json.loads((run / "verdict.json").read_text())
    recorded["verdict"] = "unknown"
    recorded["reasons"] = ["infrastructure: redis-server died"]
    (run / "verdict.json").write_text(json.dumps(recorded))
    report = render_run(run, step_summary=False)
    md = report.markdown.read_text()
    assert md.startswith("## UNKNOWN: the run could not be judged (infrastructure failure)")
    assert "infrastructure: redis-server died" in md
    root = ET.parse(report.junit).getroot()
    assert "redis-server died" in (root.findtext("testsuite/system-err") or "")
