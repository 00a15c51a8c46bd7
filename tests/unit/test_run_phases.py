"""run.json's ``phases``: where a run's wall time went, recorded, read back and shown."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from harness.cli.run import command_clock
from harness.errors import UsageError
from harness.history.record import (
    PhaseClock,
    RunConfig,
    format_phases,
    new_record,
    phase_items,
    process_started,
    read_record,
    write_record,
)
from harness.run.runner import record_phases
from reports import render, render_run
from tests.unit.reports.run_catalogue import full_record, healthy_history, write_run

PHASES = {
    "startup": 1.25,
    "cluster_start": 0.9,
    "active": 15.0,
    "recovery": 3.1,
    "teardown": 0.4,
    "judging": 0.8,
    "rendering": 2.0,
    "total": 23.5,
}


def test_a_run_json_with_phases_round_trips(tmp_path: Path) -> None:
    record = new_record(config=RunConfig(app="mod:app")).but(status="complete", phases=PHASES)
    write_record(tmp_path, record)
    assert json.loads((tmp_path / "run.json").read_text())["phases"] == PHASES
    assert read_record(tmp_path) == record


def test_a_run_json_without_phases_still_loads(tmp_path: Path) -> None:
    doc = new_record(config=RunConfig(app="mod:app")).to_json()
    del doc["phases"]  # as written before phases were recorded (format 1 all along)
    (tmp_path / "run.json").write_text(json.dumps(doc))
    record = read_record(tmp_path)
    assert (record.format, record.phases) == (1, {})
    assert format_phases(record.phases) == ""


@pytest.mark.parametrize("bad", [[1.0], {"active": "15"}, {"active": -1}, {"active": True}])
def test_phases_of_the_wrong_type_are_refused_naming_the_field(tmp_path: Path, bad: object) -> None:
    doc = new_record(config=RunConfig()).to_json() | {"phases": bad}
    (tmp_path / "run.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match="phases"):
        read_record(tmp_path)


def test_the_clock_attributes_time_to_phases_that_never_sum_past_the_total() -> None:
    clock = PhaseClock(start=time.monotonic() - 2.0)
    clock.enter("cluster_start")
    clock.enter("active")
    time.sleep(0.02)
    # the final heal happened before now but not before the phase began: clamped
    clock.enter("recovery", at=time.monotonic() - 0.01)
    clock.enter("teardown", at=0.0)  # before the phase began: recovery gets 0 s
    doc = clock.to_json()
    assert list(doc) == ["startup", "cluster_start", "active", "recovery", "teardown", "total"]
    assert doc["startup"] >= 2.0
    assert doc["active"] >= 0.005
    assert doc["recovery"] == 0.0
    assert sum(v for k, v in doc.items() if k != "total") <= doc["total"]


def test_the_time_line_lists_phases_in_order_with_the_total_first() -> None:
    line = format_phases(dict(reversed(PHASES.items())))
    assert line == (
        "time: 23.5 s (startup 1.2 s, cluster start 0.9 s, active 15.0 s, recovery 3.1 s, "
        "teardown 0.4 s, judging 0.8 s, rendering 2.0 s)"
    )
    assert phase_items({"total": 1.0}) == [("total", 1.0)]


def test_this_process_started_before_now() -> None:
    started = process_started()
    if sys.platform != "linux":
        pytest.skip("process start from /proc: Linux only")
    assert started is not None
    assert started <= time.monotonic()


def test_the_command_clock_starts_at_the_process_start_only_for_the_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "argv", ["/venv/bin/pytest", "-q"])
    before = time.monotonic()
    assert command_clock().start >= before  # a test, a notebook: the run starts now
    started = process_started()
    if started is None:
        pytest.skip("no /proc")
    monkeypatch.setattr(sys, "argv", ["/venv/bin/scanproof", "run"])
    assert command_clock().start == pytest.approx(started, abs=0.05)


def test_recording_phases_rewrites_only_the_phases(tmp_path: Path) -> None:
    record = new_record(config=RunConfig(app="mod:app", seed=4)).but(status="complete")
    write_record(tmp_path, record)
    clock = PhaseClock()
    clock.enter("judging")
    phases = record_phases(tmp_path, clock)
    assert list(phases) == ["startup", "judging", "total"]
    assert read_record(tmp_path) == record.but(phases=phases)
    assert record_phases(tmp_path / "missing", clock)  # no run.json: nothing raised


@pytest.fixture
def stub_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("status_plot", "rates_plot", "latency_plot", "class_timeline_plot"):
        monkeypatch.setattr(render, name, lambda *a, **k: b"\x89PNG\r\n\x1a\nstub")


@pytest.mark.usefixtures("stub_plots")
def test_the_report_footer_shows_the_phases(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", healthy_history().build(), record=full_record(phases=PHASES))
    report = render_run(run, step_summary=False)
    md = report.markdown.read_text().splitlines()
    time_line = next(line for line in md if line.startswith("Time: "))
    assert "startup `1.2 s`" in time_line
    assert "rendering `2.0 s`" in time_line
    assert time_line.endswith("total `23.5 s`")
    assert md.index(time_line) < len(md) - 1  # the pointer to report.html stays last
    html = report.html.read_text()
    assert "cluster start <code>0.9 s</code>" in html
    assert "total <code>23.5 s</code>" in html


@pytest.mark.usefixtures("stub_plots")
def test_a_report_rendered_by_its_run_shows_the_total_before_rendering(tmp_path: Path) -> None:
    """The run renders its report before rendering ends: run.json then has no
    rendering yet, and the total says so."""
    so_far = {k: v for k, v in PHASES.items() if k != "rendering"} | {"total": 21.4}
    run = write_run(tmp_path / "r", healthy_history().build(), record=full_record(phases=so_far))
    md = render_run(run, step_summary=False).markdown.read_text()
    assert "judging `0.8 s` · total before rendering `21.4 s`\n" in md


@pytest.mark.usefixtures("stub_plots")
def test_an_interrupted_run_shows_its_total(tmp_path: Path) -> None:
    stopped = {"startup": 1.0, "cluster_start": 0.5, "active": 3.0, "teardown": 0.4, "total": 4.9}
    record = full_record(phases=stopped, status="interrupted")
    run = write_run(tmp_path / "r", healthy_history().build(), record=record)
    md = render_run(run, step_summary=False).markdown.read_text()
    assert "teardown `0.4 s` · total `4.9 s`\n" in md


@pytest.mark.usefixtures("stub_plots")
def test_a_run_without_phases_has_no_time_line(tmp_path: Path) -> None:
    run = write_run(tmp_path / "r", healthy_history().build(), record=full_record())
    report = render_run(run, step_summary=False)
    assert "Time: " not in report.markdown.read_text()
    assert 'class="time"' not in report.html.read_text()
