"""How fast the checkers judge a large history, and what recording costs per op.

    python benchmarks/bench_checkers.py --ops 1000000

Builds a synthetic history in memory (20 ops per scan: discover, polls with
rising progress, results, a cross-tenant probe; about 1% injected anomalies),
times ``derive_facts`` + all checkers, then times the recorder
(``HistoryWriter.invoke`` + ``complete``) over ``--record`` ops to a temp dir,
then sends sequential status requests through a real 4-worker cluster with the
recorder on and off in alternating blocks and prints the throughput ratio.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from harness.history import schema as S
from harness.history.tables import Completion, History, HistoryWriter
from harness.judging.checkers import CheckConfig, judge

OPS_PER_SCAN = 20
MS = 1_000_000


def synthetic_history(n_ops: int, seed: int = 0) -> History:
    rng = np.random.default_rng(seed)
    n_scans = n_ops // OPS_PER_SCAN
    scan = np.repeat(np.arange(n_scans), OPS_PER_SCAN)
    step = np.tile(np.arange(OPS_PER_SCAN), n_scans)
    start = scan.astype(np.int64) * 50 * MS
    t_invoke = start + step.astype(np.int64) * 100 * MS
    kind = np.where(step == 0, "discover", np.where(step >= OPS_PER_SCAN - 2, "results", "status"))
    owner = np.char.add("tenant", (scan % 100).astype(str))
    tenant = np.where(
        step == OPS_PER_SCAN - 1, np.char.add("tenant", ((scan + 1) % 100).astype(str)), owner
    )
    completed = np.clip(step - 1, 0, 14)
    body_status = np.where(completed >= 14, "complete", "scanning")
    noise = rng.random(len(scan)) < 0.01
    body_status = np.where((kind == "status") & noise, "not_found", body_status)
    scan_ids = np.char.add("scan_", scan.astype(str))
    is_probe = tenant != owner
    http = np.where(kind == "results", np.where(is_probe, 404, 200), 200)
    ops = pd.DataFrame(
        {
            S.OP: np.char.add("b:", np.arange(len(scan)).astype(str)),
            S.PROC: "b",
            S.KIND: kind,
            S.TENANT: tenant,
            S.SCAN_ID: scan_ids,
            S.FILTERS: "",
            S.PINNED_WORKER: -1,
            S.T_INVOKE: t_invoke,
            S.T_COMPLETE: t_invoke + 5 * MS,
            S.OUTCOME: "ok",
            S.WORKER: step % 4,
            S.HTTP_STATUS: http,
            S.BODY_STATUS: np.where(
                kind == "status",
                body_status,
                np.where(kind == "results", np.where(is_probe, "not_found", "complete"), ""),
            ),
            S.COMPLETED: np.where(kind == "status", completed, -1),
            S.TOTAL: np.where(kind == "status", 14, -1),
            S.FOUND: -1,
            S.HAS_PROGRESS: kind == "status",
            S.BODY_SCAN_IDS: np.where((kind == "discover") | is_probe, "", scan_ids),
            S.BODY_USER_IDS: "",
            S.ERROR: "",
        }
    )
    return History(ops=ops, faults=pd.DataFrame(columns=list(S.FAULT_COLUMNS)))


def bench_check(n_ops: int) -> None:
    history = synthetic_history(n_ops)
    config = CheckConfig(retention_s=3.0, scan_deadline_s=3.0)
    judge(synthetic_history(20_000), config)  # warm imports and caches
    t0 = time.perf_counter()
    verdict = judge(history, config)
    dt = time.perf_counter() - t0
    found = {n: r.count for n, r in verdict.classes.items() if r.count}
    print(f"check: {len(history.ops):,} ops in {dt:.2f} s = {len(history.ops) / dt:,.0f} ops/s")
    print(f"       verdict {verdict.verdict}, anomalies {found}")


def bench_record(n_ops: int) -> None:
    done = Completion(outcome="ok", http_status=200, body_status="scanning", completed=3, total=14)
    with tempfile.TemporaryDirectory() as d, HistoryWriter(Path(d), proc="bench") as w:
        t0 = time.perf_counter()
        for _ in range(n_ops):
            op = w.invoke(kind="status", tenant="alice", scan_id="scan_0123456789abcdef")
            w.complete(op, done)
        dt = time.perf_counter() - t0
    print(
        f"record: {n_ops:,} ops in {dt:.2f} s = {dt / n_ops * 1e6:.1f} us per op (invoke+complete)"
    )


class _NullWriter(HistoryWriter):
    """Records nothing: the baseline for what recording costs a real request."""

    def invoke(self, **_: object) -> str:  # type: ignore[override]
        return "null:0"

    def complete(self, op_id: str, completion: Completion) -> None:
        del op_id, completion


async def _loop(client: object, n: int) -> float:
    from harness.run.client import ScanClient

    assert isinstance(client, ScanClient)
    t0 = time.perf_counter()
    for _ in range(n):
        await client.status("alice", "scan_unknown")
    return time.perf_counter() - t0


def bench_client_overhead(n: int, blocks: int) -> None:
    """Sequential status requests through the router, recorded vs not, blocks alternating."""
    import asyncio

    from harness import Cluster
    from harness.run.client import ScanClient

    with tempfile.TemporaryDirectory() as d, Cluster.start(workers=4, preset="sound") as cluster:
        real = HistoryWriter(Path(d), proc="bench")
        null = _NullWriter(Path(d), proc="null")
        totals = {"recorded": 0.0, "unrecorded": 0.0}

        async def run() -> None:
            for writer in (real, null):  # warm up connections and code paths
                async with ScanClient(cluster.router_url, writer) as client:
                    await _loop(client, 200)
            for b in range(blocks):
                order = [(real, "recorded"), (null, "unrecorded")]
                for writer, name in order if b % 2 == 0 else order[::-1]:
                    async with ScanClient(cluster.router_url, writer) as client:
                        totals[name] += await _loop(client, n)

        asyncio.run(run())
        real.close()
        null.close()
    per = {k: v / (n * blocks) * 1e6 for k, v in totals.items()}
    ratio = totals["unrecorded"] / totals["recorded"]
    print(
        f"client: {per['recorded']:.0f} us per recorded request, {per['unrecorded']:.0f} us "
        f"unrecorded; throughput ratio recorded/unrecorded = {ratio:.3f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=1_000_000)
    parser.add_argument("--record", type=int, default=100_000)
    parser.add_argument("--client-requests", type=int, default=2000, help="per block; 0 skips")
    parser.add_argument("--client-blocks", type=int, default=6)
    args = parser.parse_args()
    print(f"machine: {platform.node()} {platform.machine()} {platform.python_version()}")
    bench_check(args.ops)
    bench_record(args.record)
    if args.client_requests:
        bench_client_overhead(args.client_requests, args.client_blocks)


if __name__ == "__main__":
    main()
