"""Recording answers as the contract says: canonical states, dotted paths, discover ids,
worker headers, and reading older (format 1) history lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness.history import schema as S
from harness.history.outcomes import NOT_JSON, completion_from_answer, state_of
from harness.history.tables import Completion, HistoryWriter, load_history
from harness.targets.contract import Contract, contract_from_mapping

JOBS = contract_from_mapping(
    {
        "discover_path": "/jobs",
        "discover_body": {"symbols": ["{symbol}"], "owner": "{tenant}"},
        "discover_id": "header:Location",
        "status_path": "/jobs/{scan_id}",
        "results_path": "/jobs/{scan_id}/result",
        "meta_path": "",
        "status_field": "job.state",
        "scan_id_field": "job.id",
        "user_id_field": "",
        "progress_field": "",
        "items_field": "items",
        "words": {"running": ["queued", "running"], "complete": ["done"], "failed": ["error"]},
        "codes": {"status_not_found": [404]},
    },
    source="jobs.toml",
)


def _status(contract: Contract, code: int, body: Any, kind: str = "status") -> Completion:
    return completion_from_answer(kind, contract, code, body)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("code", "body", "state", "raw"),
    [
        (200, {"job": {"id": "j1", "state": "queued"}}, "scanning", "queued"),
        (200, {"job": {"id": "j1", "state": "running"}}, "scanning", "running"),
        (200, {"job": {"id": "j1", "state": "done"}}, "complete", "done"),
        (200, {"job": {"id": "j1", "state": "error"}}, "failed", "error"),
        (404, {"detail": "Not Found"}, "not_found", ""),  # codes.status_not_found
        (403, {"job": {"state": "done"}}, "refused", "done"),  # a refusal code beats the word
        (200, {"job": {"id": "j1", "state": "paused"}}, "", "paused"),  # unknown: no state
        (200, {"state": "done"}, "", ""),  # nothing at job.state
        (200, {"job": {"state": {"name": "done"}}}, "", ""),  # not a word
        (503, None, "", ""),
    ],
)
def test_a_job_apis_status_answers_are_recorded_as_canonical_states(
    code: int, body: Any, state: str, raw: str
) -> None:
    done = _status(JOBS, code, body)
    assert (done.body_status, done.raw_status) == (state, raw)


@pytest.mark.parametrize(
    ("code", "body", "state"),
    [
        (200, {"items": [{"x": 1}]}, "complete"),  # a 2xx without a word is complete
        (200, {"job": {"state": "running"}, "items": []}, "scanning"),  # ... unless it says so
        (202, {}, "scanning"),  # codes.results_pending
        (404, {}, "not_found"),  # codes.results_not_found
        (401, {}, "refused"),
        (410, {"job": {"state": "error"}}, "failed"),
        (409, {}, ""),
    ],
)
def test_results_answers_are_recorded_as_canonical_states(code: int, body: Any, state: str) -> None:
    assert _status(JOBS, code, body, kind="results").body_status == state


def test_a_results_2xx_that_is_not_json_has_no_state() -> None:
    done = completion_from_answer("results", JOBS, 200, None, error=NOT_JSON)
    assert done.body_status == ""
    # a not-found code needs no body
    assert completion_from_answer("results", JOBS, 404, None, error=NOT_JSON).body_status == (
        "not_found"
    )


def test_the_reference_contract_records_the_reference_words_unchanged() -> None:
    c = Contract()
    for word in ("scanning", "complete", "failed", "not_found"):
        assert state_of("status", c, 200, word) == word
    # the reference's results: 200 complete, 202 partial, 404 unknown, 410 failed (sound)
    results = {200: "complete", 202: "scanning", 404: "not_found", 410: "failed"}
    words = {200: "complete", 202: "scanning", 404: "", 410: "failed"}
    for code, state in results.items():
        assert state_of("results", c, code, words[code]) == state


def test_dotted_paths_read_ids_progress_and_items() -> None:
    c = contract_from_mapping(
        {
            "status_field": "data.state",
            "scan_id_field": "data.id",
            "user_id_field": "data.owner",
            "items_field": "data.items",
            "progress_field": "data.progress",
            "completed_field": "done",
            "total_field": "of",
            "found_field": "",
        }
    )
    body = {
        "data": {
            "id": 17,  # an integer id is recorded as its digits
            "owner": "alice",
            "state": "scanning",
            "progress": {"done": 3, "of": 9},
            "items": [{"data": {"id": "s2", "owner": "bob"}}, {"other": 1}],
        }
    }
    done = completion_from_answer("status", c, 200, body)
    assert (done.completed, done.total, done.found, done.has_progress) == (3, 9, -1, True)
    assert (done.body_scan_ids, done.body_user_ids, done.items) == ("17,s2", "alice,bob", 2)


def test_no_progress_no_ids_when_the_contract_says_the_answers_carry_none() -> None:
    done = _status(JOBS, 200, {"job": {"id": "j1", "state": "running"}, "progress": {"a": 1}})
    assert (done.has_progress, done.completed, done.body_user_ids) == (False, -1, "")
    assert done.body_scan_ids == "j1"


@pytest.mark.parametrize("code", [200, 201, 202])
def test_the_discover_id_is_taken_from_any_2xx(code: int) -> None:
    c = Contract()
    assert completion_from_answer("discover", c, code, {"scan_id": "s9"}).scan_id == "s9"


def test_the_discover_id_is_not_taken_from_a_non_2xx() -> None:
    assert completion_from_answer("discover", Contract(), 409, {"scan_id": "s9"}).scan_id == ""


@pytest.mark.parametrize(
    ("location", "scan_id"),
    [
        ("/jobs/j42", "j42"),
        ("http://api.example/jobs/j42/", "j42"),
        ("/jobs/j42?verbose=1#top", "j42"),
        ("", ""),
    ],
)
def test_the_discover_id_from_the_location_header(location: str, scan_id: str) -> None:
    headers = {"location": location} if location else {}
    done = completion_from_answer("discover", JOBS, 201, {"id": "ignored"}, headers=headers)
    assert done.scan_id == scan_id


def test_the_discover_id_at_a_dotted_path() -> None:
    c = contract_from_mapping({"discover_id": "job.id", "scan_id_field": ""})
    assert completion_from_answer("discover", c, 201, {"job": {"id": 5}}).scan_id == "5"
    assert Contract(scan_id_field="").discover_id == "scan_id"  # the default's default


def test_the_worker_comes_from_the_contracts_header_else_the_routers() -> None:
    c = Contract(worker_header="X-Pod-Index")
    both = {"x-pod-index": "3", "X-Scanproof-Worker": "1"}
    assert completion_from_answer("status", c, 200, {}, headers=both).worker == 3
    router = {"X-Scanproof-Worker": "1"}
    assert completion_from_answer("status", c, 200, {}, headers=router).worker == 1
    named = {"X-Pod-Index": "pod-a"}  # not an index: not a worker
    assert completion_from_answer("status", c, 200, {}, headers=named).worker == -1
    assert completion_from_answer("status", c, 200, {}, headers=named, pin=2).worker == 2


def test_the_discover_request_is_the_contracts_template() -> None:
    assert JOBS.discover_json({"asset": "BTC"}, tenant="t1") == {"symbols": ["BTC"], "owner": "t1"}
    assert JOBS.discover_json(None, tenant="t1") == {"symbols": [], "owner": "t1"}
    c = Contract(discover_body={"q": "{symbol}", "tag": "by-{tenant}-{symbol}"})
    assert c.discover_json(None, tenant="t1") == {"tag": "by-t1-"}
    assert c.discover_json({"asset": "X"}, tenant="t1", fail=True) == {
        "q": "X",
        "tag": "by-t1-X",
        "simulate": {"fail_strategy": 0},
    }
    assert Contract(discover_method="GET").discover_json({"asset": "X"}) is None


def _answers_through_a_shard(tmp_path: Path) -> Any:
    with HistoryWriter(tmp_path, proc="driver-0") as w:
        for kind, code, body in [
            ("discover", 201, {}),
            ("status", 200, {"job": {"id": "j1", "state": "queued"}}),
            ("status", 200, {"job": {"id": "j1", "state": "done"}}),
            ("results", 200, {"job": {"id": "j1"}, "items": [{"a": 1}]}),
        ]:
            op = w.invoke(kind=kind, tenant="alice", scan_id="" if kind == "discover" else "j1")
            headers = {"Location": "/jobs/j1"}
            w.complete(op, completion_from_answer(kind, JOBS, code, body, headers=headers))
    return load_history(tmp_path).ops


def test_a_recorded_job_api_history_reads_back_in_canonical_words(tmp_path: Path) -> None:
    ops = _answers_through_a_shard(tmp_path)
    assert list(ops[S.SCAN_ID]) == ["j1"] * 4
    assert list(ops[S.BODY_STATUS]) == ["", "scanning", "complete", "complete"]
    assert list(ops[S.RAW_STATUS]) == ["", "queued", "done", ""]
    assert list(ops[S.ITEMS]) == [-1, -1, -1, 1]
    lines = [json.loads(x) for x in (tmp_path / "driver-0.jsonl").read_text().splitlines()]
    assert {line[S.FORMAT] for line in lines} == {2}


def _v1_shard(tmp_path: Path, with_format: bool) -> None:
    lines = []
    answers = [
        ("discover", 200, "initiated"),
        ("status", 200, "scanning"),
        ("status", 200, "done"),  # a foreign word recorded by format 1
        ("results", 202, ""),
        ("results", 200, ""),
        ("results", 404, ""),
        ("results", 403, ""),
        ("results", 500, ""),
    ]
    for i, (kind, code, word) in enumerate(answers):
        op = f"old:{i}"
        invoke = {"e": "invoke", "op": op, "proc": "old", "kind": kind, "tenant": "alice",
                  "scan_id": "" if kind == "discover" else "s1", "filters": "",
                  "pinned_worker": -1, "t_invoke_ns": 1000 + i}  # fmt: skip
        done = {"e": "complete", "op": op, "outcome": "ok", "t_complete_ns": 2000 + i,
                "worker": 0, "http_status": code, "body_status": word,
                "scan_id": "s1" if kind == "discover" else ""}  # fmt: skip
        if with_format:
            invoke["v"] = done["v"] = 1
        lines += [json.dumps(invoke), json.dumps(done)]
    (tmp_path / "old.jsonl").write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("with_format", [True, False], ids=["v1", "before-formats"])
def test_format_1_lines_are_read_in_canonical_words(tmp_path: Path, with_format: bool) -> None:
    _v1_shard(tmp_path, with_format)
    ops = load_history(tmp_path).ops
    assert list(ops[S.BODY_STATUS]) == [
        "", "scanning", "", "scanning", "complete", "not_found", "refused", "",
    ]  # fmt: skip
    assert list(ops[S.RAW_STATUS]) == ["initiated", "scanning", "done", "", "", "", "", ""]
    assert list(ops[S.ITEMS]) == [-1] * 8


def test_a_mixed_history_maps_only_its_format_1_lines(tmp_path: Path) -> None:
    _v1_shard(tmp_path, with_format=True)
    with HistoryWriter(tmp_path, proc="new") as w:
        op = w.invoke(kind="results", tenant="alice", scan_id="s1")
        w.complete(op, completion_from_answer("results", Contract(), 200, {"status": "weird"}))
    ops = load_history(tmp_path).ops
    new = ops[ops[S.PROC] == "new"].iloc[0]
    assert (new[S.BODY_STATUS], new[S.RAW_STATUS]) == ("", "weird")  # not re-mapped
