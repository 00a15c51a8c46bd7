"""Judging a stored run directory: its shards and ``run.json`` in, ``verdict.json`` out.

What ``scanproof check`` and the end of every run call. Only the history and the
judge are needed: a run directory can be re-judged on any machine, without the
cluster machinery or the service.

A run that did not finish (``run.json`` says running, interrupted, crashed or
killed; a ``running`` one whose runner is gone is marked killed first) is
judged on what it recorded, and the verdict is ``unknown`` with the reason
``incomplete: judged N ops recorded before the run was killed`` unless what was
recorded already fails a class. ``partial=True`` judges it as if complete.

>>> judge_run_dir(Path("scanproof-runs/20261129-101500-mixed-claimed-fix-s0"))  # doctest: +SKIP
Verdict(verdict='fail', ...)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.history import schema as S
from harness.history.record import INCOMPLETE_STATUSES, RunRecord, recover_killed, runner_alive
from harness.history.tables import History, load_history, write_tables
from harness.judging.checkers import CheckConfig, judge
from harness.judging.coverage import coverage_of
from harness.judging.thresholds import Limit
from harness.judging.understanding import understand
from harness.judging.verdict import VERDICT_JSON, Verdict
from harness.targets.contract import contract_from_mapping


def _ops_summary(history: History) -> dict[str, Any]:
    ops = history.ops
    ok = ops[ops[S.OUTCOME] == "ok"]
    accepted = set(ok.loc[ok[S.KIND] == "discover", S.SCAN_ID]) - {""}
    said = ok[(ok[S.KIND] == "status") & ok[S.SCAN_ID].isin(accepted)]
    return {
        "scans": {
            "accepted": len(accepted),
            "seen_complete": said.loc[said[S.BODY_STATUS] == "complete", S.SCAN_ID].nunique(),
            "seen_failed": said.loc[said[S.BODY_STATUS] == "failed", S.SCAN_ID].nunique(),
        },
        "total": len(ops),
        **{o: int((ops[S.OUTCOME] == o).sum()) for o in S.OUTCOMES},
        "by_kind": {k: int((ops[S.KIND] == k).sum()) for k in S.KINDS},
        "unpaired": history.unpaired_ops,
    }


def incomplete_reason(record: RunRecord, ops: int) -> str:
    """``incomplete: judged N ops recorded before the run was killed`` for a run that
    did not finish, "" for one that did."""
    if record.status not in INCOMPLETE_STATUSES:
        return ""
    judged = f"incomplete: judged {ops} ops recorded"
    if record.status != "running":
        return f"{judged} before the run was {record.status}"
    if runner_alive(record):
        return f"{judged} while the run is still running (pid {record.runner.get('pid')})"
    host = record.runner.get("host") or record.platform.get("node") or "an unknown host"
    return f"{judged}; run.json still says running (started on {host}, maybe killed)"


def judge_run_dir(
    run_dir: Path, *, thresholds: Mapping[str, int | Limit] | None = None, partial: bool = False
) -> Verdict:
    """Re-judge a stored run from its shards and run.json; writes tables and verdict.json.

    An unfinished run is unknown (``incomplete: ...``) unless it already fails a
    class; ``partial=True`` judges what it recorded as if it were complete.
    """
    record = recover_killed(run_dir)
    check = record.check
    if check is None:
        raise UsageError(
            f"{run_dir}/run.json has no check settings (the run stopped before it started "
            "its cluster); nothing to judge"
        )
    history = load_history(run_dir)
    write_tables(history, run_dir)
    infra = list(record.infrastructure_errors)
    if record.status == "crashed" and not partial:
        infra.append(f"the run crashed: {record.crash or 'unknown error'}")
    incomplete = incomplete_reason(record, len(history.ops))
    # an older run.json recorded no contract: the built-in one is what it ran with
    contract = contract_from_mapping(record.config.contract, source=f"{run_dir}/run.json")
    understood = understand(history, contract)
    verdict = judge(
        history,
        CheckConfig.for_contract(
            contract,
            retention_s=float(check.retention_s),
            scan_deadline_s=float(check.scan_deadline_s),
            final_heal_ns=check.final_heal_ns,
        ),
        thresholds=thresholds if thresholds is not None else record.thresholds,
        infrastructure_errors=tuple(infra),
        expected_classes=check.expected_classes or None,  # None: an older run.json
        incomplete="" if partial else incomplete,
        service=record.config.app or record.config.host,
        not_understood=understood.reasons,
    )
    if understood.warnings:
        verdict = dataclasses.replace(verdict, notes=(*verdict.notes, *understood.warnings))
    if incomplete and partial:  # said, though it decided nothing
        note = f"{incomplete}; judged as complete on request (--partial)"
        verdict = dataclasses.replace(verdict, notes=(*verdict.notes, note))
    doc = verdict.to_json()
    doc["ops"] = _ops_summary(history)
    doc["status"] = record.status
    doc["understanding"] = {
        "unknown_words": dict(understood.unknown_words),
        "warnings": list(understood.warnings),
        "reasons": list(understood.reasons),
    }
    doc["coverage"] = coverage_of(history).to_json()  # what the run exercised, not judged
    (run_dir / VERDICT_JSON).write_text(json.dumps(doc, indent=2) + "\n")
    return verdict
