"""A catalogue of small run directories, built with the harness's own writer and judge.

Times are milliseconds from ``t0_ns = 0`` (see ``tests.unit.history_catalogue``),
so "3.41 s into the run" is ``at=3410``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.history import schema as S
from harness.history.tables import History, write_tables
from harness.judging.checkers import CheckConfig, judge
from tests.unit.history_catalogue import Hist, healthy_scan

CFG = CheckConfig(retention_s=3.0, scan_deadline_s=10.0)
HOSTILE = "<script>alert(1)</script>"


def full_record(**overrides: Any) -> dict[str, Any]:
    record: dict[str, Any] = {
        "scanproof_version": "0.1.0",
        "started_at": "2026-11-02T10:00:00.000+00:00",
        "ended_at": "2026-11-02T10:00:05.500+00:00",
        "status": "complete",
        "config": {
            "app": "reference_impl",
            "preset": "claimed-fix",
            "scenario": {"name": "mixed", "scans": 2},
            "seed": 7,
            "workers": 4,
            "router": "round-robin",
            "redis": {"backend": "embedded", "url": "redis://127.0.0.1:1"},
            "time_scale": 0.01,
            "retention_s": 3.0,
            "scan_deadline_s": 10.0,
        },
        "flags": {"lazy_reinit": False},
        "versions": {"pandas": "3.1"},
        "t0_ns": 0,
    }
    record.update(overrides)
    return record


def write_run(
    run_dir: Path,
    history: History,
    *,
    record: dict[str, Any] | None,
    verdict_edit: dict[str, Any] | None = None,
) -> Path:
    """Tables, verdict.json (the real judge, then optional edits) and run.json."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_tables(history, run_dir)
    verdict = judge(history, CFG, thresholds=(record or {}).get("thresholds") or {}).to_json()
    for name, fields in (verdict_edit or {}).get("anomalies", {}).items():
        verdict["anomalies"][name].update(fields)
    verdict.update({k: v for k, v in (verdict_edit or {}).items() if k != "anomalies"})
    verdict["ops"] = {"total": len(history.ops)}
    (run_dir / "verdict.json").write_text(json.dumps(verdict))
    if record is not None:
        (run_dir / "run.json").write_text(json.dumps(record))
    return run_dir


def lost_scan_history() -> Hist:
    """F1 under a worker kill: a poll on worker 2 says not_found 0.8 s after acceptance.

    bob's scan s0 is healthy. alice's s1 is accepted by worker 0 at 2.61 s; her
    polls on worker 1 say scanning 0/14 (the second at 3.38 s); poll #3 at
    3.41 s lands on worker 2 and says not_found while worker_kill of worker:3
    (f0, 3.0-3.6 s) is in effect; a results fetch on worker 3 answers 404.
    """
    h = healthy_scan(Hist(), tenant="bob", scan="s0", start=0)
    h.fault("worker_kill", at=3000, until=3600)
    h.faults[-1][S.TARGET] = "worker:3"
    h.faults[-1][S.EVIDENCE] = "pid 101 -> 202"
    h.discover("alice", "s1", at=2600, took=10, worker=0)
    h.status("alice", "s1", "scanning", at=3000, progress=(0, 14), worker=1)
    h.status("alice", "s1", "scanning", at=3380, progress=(0, 14), worker=1)
    h.status("alice", "s1", "not_found", at=3410, worker=2)
    h.results("alice", "s1", 404, at=3500, worker=3)
    h.status("alice", "s1", "complete", at=4000, progress=(14, 14), worker=1)
    h.results("alice", "s1", 200, at=4100, worker=0)
    h._op(kind="status", tenant="alice", scan_id="s1", at=4200, outcome="info", worker=-1,
          http_status=0, error="ReadTimeout: timed out")  # fmt: skip
    return h


def healthy_history() -> Hist:
    h = healthy_scan(Hist(), tenant="alice", scan="s1", start=0)
    return healthy_scan(h, tenant="bob", scan="s2", start=50)


def hostile_history() -> Hist:
    """A service that echoes markup: a leaked probe, markup in ids, words and evidence."""
    scan = "scan_<b>|`x`"
    h = healthy_scan(Hist(), tenant="alice", scan=scan, start=0)
    h.status(HOSTILE, scan, "<script>bad()</script>", at=150, worker=1, users="alice")
    h.fault("delete_keys", at=120, until=130)
    h.faults[-1][S.TARGET] = "<img src=x onerror=alert(1)>"
    h.faults[-1][S.EVIDENCE] = "@everyone <a href='https://evil.example'>x</a>"
    return h
