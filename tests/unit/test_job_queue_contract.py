"""The job-queue contract fields (issue 19): parsing, one-line errors, what the client
sends and records."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.errors import UsageError
from harness.history import schema as S
from harness.history.outcomes import completion_from_answer
from harness.history.tables import HistoryWriter, load_history
from harness.run.client import ScanClient
from harness.run.driver import ScriptedDriver, Timing
from harness.run.plan import expected_classes, make_plan
from harness.run.scenario import Scenario
from harness.targets.contract import Contract, contract_from_mapping, load_contract

ROOT = Path(__file__).resolve().parents[2]
CELERY: dict[str, Any] = {
    "discover_path": "/tasks",
    "discover_body": {},
    "discover_fixed": {"type": 1},
    "discover_id": "task_id",
    "status_path": "/tasks/{scan_id}",
    "results_path": "",
    "results_field": "task_result",
    "meta_path": "",
    "status_field": "task_status",
    "scan_id_field": "task_id",
    "scan_id_echo": True,
    "progress_field": "",
    "tenancy": "none",
    "unknown_id_state": "pending",
    "words": {"pending": ["PENDING"], "complete": ["SUCCESS"], "failed": ["FAILURE"]},
    "codes": {"accepted": [201]},
    "keys": {"queue": ["celery"], "inflight": ["unacked", "unacked_index"]},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tenancy": "tenants"}, "contract tenancy 'tenants': must be one of header, none"),
        ({"unknown_id_state": "PENDING"}, "unknown_id_state 'PENDING': name the canonical state"),
        ({"scan_id_echo": "yes"}, "field 'scan_id_echo' must be true or false, got 'yes'"),
        ({"discover_fixed": 1}, "jobs.toml: field 'discover_fixed' must be a table (JSON object)"),
        ({"codes": {"accepted": ["201"]}}, "codes.accepted must be a list of HTTP codes"),
        ({"codes": {"accepted": [2001]}}, "codes.accepted: 2001 is not an HTTP status code"),
        ({"words": {"pending": ["PENDING"], "running": ["PENDING"]}},
         "'PENDING' is listed under running and pending"),
        ({"results_field": "a..b"}, "results_field 'a..b': a dotted path has an empty segment"),
        ({"keys": {"queues": ["celery"]}}, "unknown key class"),
    ],
)  # fmt: skip
def test_a_bad_job_queue_field_is_one_line_naming_file_field_and_fix(
    change: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError) as caught:
        contract_from_mapping({**CELERY, **change}, source="jobs.toml")
    said = str(caught.value)
    assert message in said
    assert "\n" not in said
    assert said.startswith("jobs.toml: ")


def test_the_celery_contract_reads_and_every_create_carries_the_fixed_fields() -> None:
    c = contract_from_mapping(CELERY)
    assert (c.has_results, c.tenants, c.words.state("PENDING")) == (False, False, "pending")
    assert c.discover_json({"asset": "BTC"}, tenant="t1") == {"type": 1}
    assert c.discover_json(None, fail=True) == {"type": 1, "simulate": {"fail_strategy": 0}}
    plain = Contract(filters_field="", discover_fixed={"type": 2})
    assert plain.discover_json({"asset": "ETH"}) == {"asset": "ETH", "type": 2}


def test_only_the_accepted_codes_yield_a_scan_id() -> None:
    c = contract_from_mapping(CELERY)
    assert completion_from_answer("discover", c, 201, {"task_id": "t1"}).scan_id == "t1"
    assert completion_from_answer("discover", c, 200, {"task_id": "t1"}).scan_id == ""
    default = contract_from_mapping({})
    assert completion_from_answer("discover", default, 202, {"scan_id": "s"}).scan_id == "s"


@pytest.mark.parametrize(
    ("result", "items"), [(42, 1), ("boom", 1), ([1, 2, 3], 3), ({"a": 1}, 1), (None, -1)]
)
def test_the_result_carried_by_the_status_answer_is_recorded_as_items(
    result: Any, items: int
) -> None:
    c = contract_from_mapping(CELERY)
    body = {"task_id": "t1", "task_status": "SUCCESS", "task_result": result}
    done = completion_from_answer("status", c, 200, body)
    assert (done.body_status, done.raw_status, done.items) == ("complete", "SUCCESS", items)
    assert done.body_scan_ids == "t1"


def test_validate_names_the_classes_a_contract_makes_not_applicable() -> None:
    path = ROOT / "tests" / "zoo" / "pending_jobs.toml"
    load_contract(path)
    result = subprocess.run(
        [sys.executable, "-m", "harness", "validate", "--contract", str(path)],
        capture_output=True, text=True, timeout=60, check=False, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].endswith("pending_jobs.toml: a valid contract")
    moot = sorted(line.split(":")[0].strip() for line in lines[1:])
    assert moot == ["cross_tenant_leak", "progress_regression", "results_404", "zero_progress"]
    assert all("not applicable (" in line for line in lines[1:])


def test_the_driver_probes_never_issued_ids_and_fetches_no_results(tmp_path: Path) -> None:
    """Without tenants a probe asks the status of a never-issued id; without a results
    endpoint nothing is fetched from one."""
    seen: list[tuple[str, str, Any]] = []

    def serve(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content) if request.content else None
        seen.append((request.method, request.url.path, body))
        if request.method == "POST":
            return httpx.Response(201, json={"task_id": "t-1"})
        task = request.url.path.rsplit("/", 1)[-1]
        status = "SUCCESS" if task == "t-1" else "PENDING"
        return httpx.Response(200, json={"task_id": task, "task_status": status})

    contract = contract_from_mapping(CELERY)
    scenario = Scenario(name="q", tenants=2, scans_per_tenant=1, probes=1.0, duration=1.0,
                        recovery=1.0, poll_interval=1.0, linger=0.1)  # fmt: skip
    plan = make_plan(scenario, seed=0)
    assert "wrong_scan" in expected_classes(plan, contract, scan_deadline_s=1.0)
    assert not {"results_404", "cross_tenant_leak"} & set(expected_classes(plan, contract))

    async def play() -> None:
        with HistoryWriter(tmp_path, proc="driver-0") as rec:
            client = ScanClient(
                "http://svc", rec, contract=contract, transport=httpx.MockTransport(serve)
            )
            async with client:
                now = time.monotonic()
                timing = Timing(t0=now, scale=0.01, retention_s=0.2, scan_deadline_s=0.1,
                                end=now + 1.0)  # fmt: skip
                await ScriptedDriver(client, plan, timing).run()

    asyncio.run(play())
    assert all(path.startswith("/tasks") for _, path, _ in seen)
    assert [b for m, _, b in seen if m == "POST"] == [{"type": 1}, {"type": 1}]
    ops = load_history(tmp_path).ops
    assert set(ops[S.KIND]) == {"discover", "status"}
    probes = ops[ops[S.SCAN_ID].str.startswith(S.NEVER_ISSUED_PREFIX)]
    assert len(probes) >= 2
    assert set(probes[S.BODY_STATUS]) == {"pending"}
