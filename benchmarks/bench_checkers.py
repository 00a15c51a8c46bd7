"""How fast the checkers judge a large history, in how much memory, and what recording costs.

    python benchmarks/bench_checkers.py --ops 1000000
    python benchmarks/bench_checkers.py --ops 1000000,2000000,5000000,10000000 \\
        --record 0 --client-requests 0 --json checkers.json

Builds a synthetic history (20 ops per scan: discover, polls with rising
progress, results, a cross-tenant probe; about 1% injected anomalies) with the
dtypes ``load_history`` gives, and times ``derive_facts`` + all checkers. Each
size (and each repeat, and each variant) runs in a child process of its own,
so the peak RSS reported is that size's alone: ``ru_maxrss`` of the child,
which holds the interpreter, the history and the judge's working set. The table
also shows the history frame's own size and the judge's peak above the RSS it
started from (the kernel's high-water mark, reset just before judging), and
the peak's growth per op between the smallest and largest size.
A child whose RSS passes ``--rss-limit-gib`` is killed (the machine is shared).
``--baseline-checkers FILE`` judges each size with another copy of
``checkers.py`` too (e.g. ``git show HEAD:harness/judging/checkers.py``),
alternating with the current one, for side-by-side ratios.

Then it times the recorder (``HistoryWriter.invoke`` + ``complete``) over
``--record`` ops to a temp dir, then sends sequential status requests through a
real 4-worker cluster with the recorder on and off in alternating blocks and
prints the throughput ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from harness.history import schema as S
from harness.history.tables import Completion, History, HistoryWriter
from harness.judging.checkers import CheckConfig

OPS_PER_SCAN = 20
MS = 1_000_000
MIB = 1024 * 1024
CONFIG = CheckConfig(retention_s=3.0, scan_deadline_s=3.0)


def machine_line() -> str:
    return _common.machine_line(f"pandas {pd.__version__}", f"pyarrow {pa.__version__}")


def peak_rss_mib() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_peak() -> bool:
    """Restart the kernel's RSS high-water mark (VmHWM) of this process (Linux >= 4.0)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def hwm_mib() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def rss_mib() -> float:
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _str_col(strings: pa.Array) -> pd.Series:
    return pd.Series(pd.array(strings, dtype="str"))


def _numbered(prefix: str, numbers: np.ndarray) -> pd.Series:
    """``prefix + str(n)`` for each n, built in Arrow (no Python string per row)."""
    digits = pc.cast(pa.array(numbers), pa.string())
    return _str_col(pc.binary_join_element_wise(prefix, digits, ""))


def _pick(words: list[str], codes: np.ndarray) -> pd.Series:
    """``words[code]`` for each code."""
    small = pa.array(codes.astype(np.int32))
    return _str_col(pa.DictionaryArray.from_arrays(small, pa.array(words)).dictionary_decode())


def synthetic_history(n_ops: int, seed: int = 0) -> History:
    """The history ``load_history`` would give for ``n_ops`` ops (a multiple of 20 of them),
    column by column, so building it costs little more memory than holding it."""
    rng = np.random.default_rng(seed)
    n_scans = n_ops // OPS_PER_SCAN
    n = n_scans * OPS_PER_SCAN
    scan = np.repeat(np.arange(n_scans, dtype=np.int64), OPS_PER_SCAN)
    step = np.tile(np.arange(OPS_PER_SCAN, dtype=np.int64), n_scans)
    t_invoke = scan * 50 * MS + step * 100 * MS
    # kind: 0 discover, 1 status, 2 results (S.KINDS)
    kind = np.where(step == 0, 0, np.where(step >= OPS_PER_SCAN - 2, 2, 1))
    is_status, is_results = kind == 1, kind == 2
    is_probe = step == OPS_PER_SCAN - 1  # asked by the next tenant, not the owner
    tenant = np.where(is_probe, (scan + 1) % 100, scan % 100)
    completed = np.clip(step - 1, 0, 14)
    noise = rng.random(n) < 0.01
    # body_status: 0 "", 1 scanning, 2 complete, 3 not_found
    state = np.where(completed >= 14, 2, 1)
    state = np.where(is_status & noise, 3, state)
    state = np.where(is_status, state, np.where(is_results, np.where(is_probe, 3, 2), 0))
    scan_ids = _numbered("scan_", scan)
    body_scan_ids = scan_ids.where((kind != 0) & ~is_probe, "")
    states = ["", "scanning", "complete", "not_found"]
    cols: dict[str, Any] = {
        S.OP: _numbered("b:", np.arange(n)),
        S.PROC: _pick(["b"], np.zeros(n, dtype=np.int8)),
        S.KIND: _pick(list(S.KINDS), kind),
        S.TENANT: _pick([f"tenant{i}" for i in range(100)], tenant),
        S.SCAN_ID: scan_ids,
        S.FILTERS: _pick([""], np.zeros(n, dtype=np.int8)),
        S.PINNED_WORKER: np.full(n, -1, dtype=np.int64),
        S.T_INVOKE: t_invoke,
        S.T_COMPLETE: t_invoke + 5 * MS,
        S.OUTCOME: _pick(["ok"], np.zeros(n, dtype=np.int8)),
        S.WORKER: step % 4,
        S.HTTP_STATUS: np.where(is_results & is_probe, 404, 200),
        S.BODY_STATUS: _pick(states, state),
        S.RAW_STATUS: _pick(states, np.where(is_status, state, 0)),
        S.COMPLETED: np.where(is_status, np.clip(step - 1, 0, 14), -1),
        S.TOTAL: np.where(is_status, 14, -1),
        S.FOUND: np.full(n, -1, dtype=np.int64),
        S.HAS_PROGRESS: is_status,
        S.ITEMS: np.full(n, -1, dtype=np.int64),
        S.BODY_SCAN_IDS: body_scan_ids,
        S.BODY_USER_IDS: _pick([""], np.zeros(n, dtype=np.int8)),
        S.ERROR: _pick([""], np.zeros(n, dtype=np.int8)),
    }
    ops = pd.DataFrame(cols, copy=False)
    return History(ops=ops, faults=pd.DataFrame(columns=list(S.FAULT_COLUMNS)))


def _load_judge(checkers_file: str) -> Callable[..., Any]:
    """``judge`` of the installed checkers, or of another copy of ``checkers.py``."""
    if not checkers_file:
        from harness.judging.checkers import judge

        return judge
    older: Callable[..., Any] = _common.attribute_of(checkers_file, "judge")
    return older


def measure_once(n_ops: int, checkers_file: str = "") -> dict[str, Any]:
    """Build and judge one history in this process (a fresh child per call, see main)."""
    judge = _load_judge(checkers_file)
    judge(synthetic_history(20_000), CONFIG)  # warm imports and caches
    gc.collect()
    rss_empty = rss_mib()
    t0 = time.perf_counter()
    history = synthetic_history(n_ops)
    build_s = time.perf_counter() - t0
    gc.collect()
    rss_history = rss_mib()
    peak_build = peak_rss_mib()
    judge_from = rss_mib() if reset_peak() else float("nan")
    t0 = time.perf_counter()
    verdict = judge(history, CONFIG)
    judge_s = time.perf_counter() - t0
    judge_peak = hwm_mib() - judge_from
    n = len(history.ops)
    return {
        "ops": n,
        "variant": "baseline" if checkers_file else "current",
        "build_s": round(build_s, 3),
        "judge_s": round(judge_s, 3),
        "ops_per_s": round(n / judge_s),
        "rss_empty_mib": round(rss_empty, 1),
        "history_rss_mib": round(rss_history - rss_empty, 1),
        "history_frame_mib": round(history.ops.memory_usage(deep=True).sum() / MIB, 1),
        "peak_build_mib": round(peak_build, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "judge_peak_above_start_mib": round(judge_peak, 1),
        "verdict": verdict.verdict,
        "anomalies": {k: r.count for k, r in verdict.classes.items() if r.count},
    }


RSS_LIMIT_GIB = 12.0  # a child that grows past this is killed: the machine is shared


def _rss_of(pid: int) -> float:
    with contextlib.suppress(OSError, ValueError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_child(argv: list[str], rss_limit_gib: float = RSS_LIMIT_GIB) -> dict[str, Any]:
    """Run this script (or another) with ``argv`` in a fresh interpreter; its last
    stdout line is a JSON object. It is killed if its RSS passes ``rss_limit_gib``: then
    the answer is ``{"killed": why}``."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen([sys.executable, *argv], stdout=out, stderr=err, text=True)
        worst = 0.0
        while proc.poll() is None:
            worst = max(worst, _rss_of(proc.pid))
            if worst > rss_limit_gib * 1024:
                proc.kill()
                proc.wait()
                return {"killed": f"passed {rss_limit_gib} GiB RSS ({worst:,.0f} MiB): killed"}
            time.sleep(0.05)
        out.seek(0)
        err.seek(0)
        if proc.returncode != 0:
            raise SystemExit(f"child {argv} failed ({proc.returncode}):\n{err.read()[-3000:]}")
        result: dict[str, Any] = json.loads(out.read().strip().splitlines()[-1])
    return result


def bench_check(
    sizes: list[int], repeat: int, baseline: str, rss_limit_gib: float = RSS_LIMIT_GIB
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    variants = [""] + ([baseline] if baseline else [])
    print(
        "| ops | variant | judge s | ops/s | peak RSS MiB | history frame MiB | "
        "judge peak above start MiB | peak RSS per op | verdict, anomalies |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n in sizes:
        for r in range(repeat):
            order = variants if r % 2 == 0 else variants[::-1]  # alternate old and new
            for checkers_file in order:
                argv = [__file__, "--child", str(n)]
                if checkers_file:
                    argv += ["--baseline-checkers", checkers_file]
                row = run_child(argv, rss_limit_gib)
                if "killed" in row:
                    variant = "baseline" if checkers_file else "current"
                    print(f"| {n:,} | {variant} | {row['killed']} |", flush=True)
                    continue
                rows.append(row)
                print(
                    f"| {row['ops']:,} | {row['variant']} | {row['judge_s']:.2f} | "
                    f"{row['ops_per_s']:,} | {row['peak_rss_mib']:,.0f} | "
                    f"{row['history_frame_mib']:,.0f} | "
                    f"{row['judge_peak_above_start_mib']:,.0f} | "
                    f"{row['peak_rss_mib'] * MIB / row['ops']:.0f} B | "
                    f"{row['verdict']}, {row['anomalies']} |",
                    flush=True,
                )
    for variant in ("current", "baseline"):
        mine = [r for r in rows if r["variant"] == variant]
        small = min(mine, key=lambda r: (r["ops"], r["peak_rss_mib"]), default=None)
        large = max(mine, key=lambda r: (r["ops"], -r["peak_rss_mib"]), default=None)
        if small and large and large["ops"] > small["ops"]:
            slope = (large["peak_rss_mib"] - small["peak_rss_mib"]) * MIB
            frame = (large["history_frame_mib"] - small["history_frame_mib"]) * MIB
            extra = large["ops"] - small["ops"]
            print(
                f"{variant}: peak RSS grows {slope / extra:.0f} B per op from {small['ops']:,} "
                f"to {large['ops']:,} ops (the history frame itself {frame / extra:.0f} B per op)"
            )
    return rows


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

    def invoke(self, **_: object) -> str:
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
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--ops", default="1000000", help="history sizes, comma-separated (each in its own child)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs per size (and variant)")
    parser.add_argument(
        "--baseline-checkers",
        default="",
        metavar="FILE",
        help="also judge with this copy of checkers.py, alternating with the current one",
    )
    parser.add_argument("--record", type=int, default=100_000, help="0 skips")
    parser.add_argument("--client-requests", type=int, default=2000, help="per block; 0 skips")
    parser.add_argument("--client-blocks", type=int, default=6)
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument(
        "--rss-limit-gib", type=float, default=RSS_LIMIT_GIB, help="kill a child past this RSS"
    )
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:  # one measurement, in a fresh process: print it as JSON
        print(json.dumps(measure_once(args.child, args.baseline_checkers)))
        return
    machine = machine_line()
    command = "python " + " ".join(sys.argv)
    print(machine)
    print(f"$ {command}")
    sizes = [int(s.replace("_", "")) for s in args.ops.split(",") if s]
    rows = bench_check(sizes, args.repeat, args.baseline_checkers, args.rss_limit_gib)
    if args.record:
        bench_record(args.record)
    if args.client_requests:
        bench_client_overhead(args.client_requests, args.client_blocks)
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine, "command": command, "check": rows}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
