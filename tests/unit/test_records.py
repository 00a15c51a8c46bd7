"""Typed, versioned records: run.json, verdict.json and the history lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.history import schema as S
from harness.history.record import (
    CheckSettings,
    RunConfig,
    new_record,
    read_record,
    write_record,
)
from harness.history.tables import load_history
from harness.history.writer import Completion, HistoryWriter
from harness.judging.verdict import ClassResult, Verdict, decide


def test_run_json_round_trips_and_says_its_format(tmp_path: Path) -> None:
    record = new_record(config=RunConfig(app="mod:app", seed=3, driver={"name": "scripted"})).but(
        check=CheckSettings(retention_s=2.7, scan_deadline_s=3.0, sources={"x": 1}),
        warnings=("fault f1 did not land",),
        status="complete",
    )
    write_record(tmp_path, record)
    doc = json.loads((tmp_path / "run.json").read_text())
    assert doc["format"] == 1
    assert read_record(tmp_path) == record


def test_run_json_without_a_format_is_read_as_before_formats(tmp_path: Path) -> None:
    doc = {"status": "interrupted", "config": {"app": "a:b", "seed": 1}, "t0_ns": 5}
    (tmp_path / "run.json").write_text(json.dumps(doc))
    record = read_record(tmp_path)
    assert (record.status, record.config.app, record.check) == ("interrupted", "a:b", None)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"format": 2}, r"run.json: format 2 is newer than this scanproof reads \(up to 1\)"),
        ({"format": "one"}, "format 'one' is not a format number"),
        ({"status": "exploded"}, "status 'exploded' is not one of"),
        ({"warnings": "one"}, "warnings must be a list"),
    ],
)
def test_a_bad_or_newer_run_json_is_refused_in_one_line(
    tmp_path: Path, doc: dict[str, object], message: str
) -> None:
    (tmp_path / "run.json").write_text(json.dumps(doc))
    with pytest.raises(UsageError, match=message):
        read_record(tmp_path)


def test_verdict_json_records_each_class_word_and_threshold() -> None:
    verdict = decide(
        [
            ClassResult(name="results_404", count=2, opportunities=10),
            ClassResult(name="wrong_scan", count=1, opportunities=10),
            ClassResult.crashed("stuck_scan", "KeyError: x"),
        ],
        thresholds={"results_404": 2},
    )
    doc = verdict.to_json()
    assert doc["format"] == 1
    words = {name: (c["verdict"], c["threshold"]) for name, c in doc["anomalies"].items()}
    assert words["results_404"] == ("pass", 2)
    assert words["wrong_scan"] == ("fail", 0)
    assert words["stuck_scan"] == ("unknown", 0)
    again = Verdict.from_json(doc, source="verdict.json")
    assert again.verdict == "fail"
    assert again.classes["results_404"].verdict == "pass"


def test_a_newer_verdict_json_is_refused() -> None:
    with pytest.raises(UsageError, match=r"verdict\.json: format 3 is newer"):
        Verdict.from_json({"format": 3, "verdict": "pass"}, source="verdict.json")


def _shard(tmp_path: Path) -> Path:
    with HistoryWriter(tmp_path, proc="driver-0") as w:
        op = w.invoke(kind="status", tenant="alice", scan_id="scan_1")
        w.complete(op, Completion(outcome="ok", http_status=200, body_status="scanning"))
    return tmp_path / "driver-0.jsonl"


def test_every_history_line_carries_the_history_format(tmp_path: Path) -> None:
    lines = [json.loads(line) for line in _shard(tmp_path).read_text().splitlines()]
    assert [line[S.FORMAT] for line in lines] == [S.HISTORY_FORMAT] * 2


def test_history_lines_of_a_newer_format_are_refused_naming_the_shard(tmp_path: Path) -> None:
    shard = _shard(tmp_path)
    newer = json.loads(shard.read_text().splitlines()[0]) | {S.FORMAT: S.HISTORY_FORMAT + 1}
    with shard.open("a") as fh:
        fh.write(json.dumps(newer) + "\n")
    with pytest.raises(UsageError, match=f"driver-0.jsonl: format {S.HISTORY_FORMAT + 1} is newer"):
        load_history(tmp_path)


def test_history_lines_without_a_format_are_still_read(tmp_path: Path) -> None:
    shard = _shard(tmp_path)
    old = [json.loads(line) for line in shard.read_text().splitlines()]
    shard.write_text("".join(json.dumps({k: v for k, v in e.items() if k != S.FORMAT}) + "\n"
                             for e in old))  # fmt: skip
    assert load_history(tmp_path).ops.loc[0, S.BODY_STATUS] == "scanning"
