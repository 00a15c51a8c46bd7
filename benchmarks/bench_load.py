"""How long loading a large recorded history takes, and in how much memory.

    python benchmarks/bench_load.py --ops 1000000
    python benchmarks/bench_load.py --ops 1000000,10000000 --json load.json

Writes the synthetic history of ``bench_checkers.py`` (20 ops per scan, ~1%
anomalies) as the recorder leaves it: ``--shards`` files ``driver-N.jsonl``
(scans dealt round-robin to the drivers), one ``invoke`` line and one
``complete`` line per op, with the keys, order and compact separators of
``HistoryWriter`` (written in bulk here: the recorder's own cost per op is
``bench_checkers.py --record``). Then, each step in a child process of its own
so each peak RSS is that step's alone:

- ``jsonl``: ``load_history`` (read and pair the shards into the ops table), then
  ``write_tables`` (the ops and faults tables as Parquet), timed apart;
- ``parquet``: reading the ops table back with ``pandas.read_parquet``.

A child whose RSS passes ``--rss-limit-gib`` is killed (the machine is shared).
``--dir DIR`` keeps the shards (and reuses them when the sizes match) instead of
a temp dir that is removed at the end.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import _common
import numpy as np
import pandas as pd
from bench_checkers import (
    MIB,
    RSS_LIMIT_GIB,
    machine_line,
    peak_rss_mib,
    run_child,
    synthetic_history,
)

from harness.history import schema as S
from harness.history.tables import OPS_TABLE, History, load_history, write_tables

CHUNK = 250_000  # rows encoded per write while generating
_INVOKE = [S.EVENT, S.OP, S.PROC, S.KIND, S.TENANT, S.SCAN_ID, S.FILTERS, S.PINNED_WORKER,
           S.T_INVOKE, S.FORMAT]  # fmt: skip
_COMPLETE = [S.OUTCOME, S.WORKER, S.HTTP_STATUS, S.BODY_STATUS, S.RAW_STATUS, S.COMPLETED,
             S.TOTAL, S.FOUND, S.HAS_PROGRESS, S.ITEMS, S.BODY_SCAN_IDS, S.BODY_USER_IDS,
             "_done_scan_id", S.ERROR, S.EVENT, S.OP, S.T_COMPLETE, S.FORMAT]  # fmt: skip


def _lines(frame: pd.DataFrame) -> str:
    text: str = frame.to_json(orient="records", lines=True)
    return text if text.endswith("\n") else text + "\n"


def write_shards(n_ops: int, shards: int, directory: Path) -> dict[str, Any]:
    """The synthetic history as ``shards`` recorder shards in ``directory``."""
    t0 = time.perf_counter()
    ops = synthetic_history(n_ops).ops
    n = len(ops)
    scan_no = np.arange(n) // 20
    driver = scan_no % shards
    for k in range(shards):
        rows = np.flatnonzero(driver == k)
        proc = f"driver-{k}"
        with (directory / f"{proc}.jsonl").open("w") as out:
            for start in range(0, len(rows), CHUNK):
                part = ops.iloc[rows[start : start + CHUNK]].reset_index(drop=True)
                seq = np.arange(start, start + len(part))
                op_ids = [f"{proc}:{i}" for i in seq]
                is_disc = (part[S.KIND] == "discover").to_numpy()
                invoke = pd.DataFrame(
                    {
                        S.EVENT: S.EV_INVOKE,
                        S.OP: op_ids,
                        S.PROC: proc,
                        S.KIND: part[S.KIND],
                        S.TENANT: part[S.TENANT],
                        # discover learns its scan id from the answer
                        S.SCAN_ID: part[S.SCAN_ID].where(~is_disc, ""),
                        S.FILTERS: part[S.FILTERS],
                        S.PINNED_WORKER: part[S.PINNED_WORKER],
                        S.T_INVOKE: part[S.T_INVOKE],
                        S.FORMAT: S.HISTORY_FORMAT,
                    }
                )[_INVOKE]
                complete = part.assign(
                    **{
                        S.EVENT: S.EV_COMPLETE,
                        S.OP: op_ids,
                        S.FORMAT: S.HISTORY_FORMAT,
                        "_done_scan_id": part[S.SCAN_ID].where(is_disc, ""),
                    }
                )[_COMPLETE].rename(columns={"_done_scan_id": S.SCAN_ID})
                out.write(_lines(invoke))
                out.write(_lines(complete))
    size = sum(p.stat().st_size for p in directory.glob("*.jsonl"))
    return {"ops": n, "write_s": round(time.perf_counter() - t0, 1), "jsonl_bytes": size}


def _load_history(tables_file: str) -> Callable[[Path], History]:
    """``load_history`` of the installed tables module, or of another copy of it."""
    if not tables_file:
        return load_history
    loader: Callable[[Path], History] = _common.attribute_of(tables_file, "load_history")
    return loader


def _step(step: str, directory: Path, tables_file: str = "") -> dict[str, Any]:
    """One timed step in this (fresh) process."""
    if step == "jsonl":
        load = _load_history(tables_file)
        t0 = time.perf_counter()
        history = load(directory)
        load_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        ops_path, _ = write_tables(history, directory)
        parquet_s = time.perf_counter() - t0
        return {
            "step": step,
            "variant": "baseline" if tables_file else "current",
            "ops": len(history.ops),
            "load_s": round(load_s, 2),
            "write_parquet_s": round(parquet_s, 2),
            "ops_frame_mib": round(history.ops.memory_usage(deep=True).sum() / MIB, 1),
            "parquet_bytes": ops_path.stat().st_size,
            "peak_rss_mib": round(peak_rss_mib(), 1),
        }
    t0 = time.perf_counter()
    ops = pd.read_parquet(directory / OPS_TABLE)
    return {
        "step": step,
        "ops": len(ops),
        "load_s": round(time.perf_counter() - t0, 2),
        "ops_frame_mib": round(ops.memory_usage(deep=True).sum() / MIB, 1),
        "peak_rss_mib": round(peak_rss_mib(), 1),
    }


def _prepared(directory: Path, n_ops: int, shards: int) -> dict[str, Any] | None:
    """The generation record of shards already in ``directory`` for this size, if any."""
    stamp = directory / "bench_load.json"
    if not stamp.exists():
        return None
    done: dict[str, Any] = json.loads(stamp.read_text())
    return done if done.get("asked") == [n_ops, shards] else None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ops", default="1000000", help="history sizes, comma-separated")
    parser.add_argument("--shards", type=int, default=4, help="driver-N.jsonl files")
    parser.add_argument("--dir", type=Path, help="keep (and reuse) the shards here, per size")
    parser.add_argument("--repeat", type=int, default=1, help="loads per size (and variant)")
    parser.add_argument("--json", type=Path, help="write every measurement here")
    parser.add_argument(
        "--rss-limit-gib", type=float, default=RSS_LIMIT_GIB, help="kill a child past this RSS"
    )
    parser.add_argument(
        "--baseline-tables",
        default="",
        metavar="FILE",
        help="also load with this copy of harness/history/tables.py, alternating",
    )
    parser.add_argument("--child", nargs=2, metavar=("STEP", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_step(args.child[0], Path(args.child[1]), args.baseline_tables)))
        return
    machine = machine_line()
    command = "python " + " ".join(sys.argv)
    print(machine)
    print(f"$ {command}")
    print(
        "| ops | variant | shards (MiB JSONL) | load_history s | ops/s | write Parquet s | "
        "peak RSS MiB | ops frame MiB | Parquet MiB | read Parquet s | its peak RSS MiB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rows: list[dict[str, Any]] = []
    for n_ops in [int(s.replace("_", "")) for s in args.ops.split(",") if s]:
        temp = None
        if args.dir:
            directory = args.dir / f"ops-{n_ops}"
            directory.mkdir(parents=True, exist_ok=True)
        else:
            temp = tempfile.mkdtemp(prefix="bench-load-")
            directory = Path(temp)
        try:
            made = _prepared(directory, n_ops, args.shards)
            if made is None:
                for old in directory.glob("*.jsonl"):
                    old.unlink()
                made = write_shards(n_ops, args.shards, directory)
                made["asked"] = [n_ops, args.shards]
                (directory / "bench_load.json").write_text(json.dumps(made))
            variants = [""] + ([args.baseline_tables] if args.baseline_tables else [])
            loads = []
            for r in range(args.repeat):
                for tables_file in variants if r % 2 == 0 else variants[::-1]:
                    argv = [__file__, "--child", "jsonl", str(directory)]
                    loads.append(
                        run_child([*argv, "--baseline-tables", tables_file], args.rss_limit_gib)
                    )
            if all("killed" in loaded for loaded in loads):
                back = {"killed": "no Parquet table: every load was killed"}
            else:
                argv = [__file__, "--child", "parquet", str(directory)]
                back = run_child(argv, args.rss_limit_gib)
        finally:
            if temp:
                shutil.rmtree(temp, ignore_errors=True)
        rows.append({"generated": made, "jsonl": loads, "parquet": back})
        for loaded in loads:
            if "killed" in loaded or "killed" in back:
                print(f"| {n_ops:,} | {loaded.get('killed') or back.get('killed')} |", flush=True)
                continue
            _print_row(loaded, made, back, args.shards)
        print(f"  (generating the shards took {made['write_s']} s, not timed above)")
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine, "command": command, "load": rows}, indent=1) + "\n"
        )


def _print_row(
    loaded: dict[str, Any], made: dict[str, Any], back: dict[str, Any], shards: int
) -> None:
    print(
        f"| {loaded['ops']:,} | {loaded['variant']} | {shards} "
        f"({made['jsonl_bytes'] / MIB:,.0f}) | "
        f"{loaded['load_s']:.2f} | {loaded['ops'] / loaded['load_s']:,.0f} | "
        f"{loaded['write_parquet_s']:.2f} | {loaded['peak_rss_mib']:,.0f} | "
        f"{loaded['ops_frame_mib']:,.0f} | {loaded['parquet_bytes'] / MIB:,.0f} | "
        f"{back['load_s']:.2f} | {back['peak_rss_mib']:,.0f} |",
        flush=True,
    )


if __name__ == "__main__":
    main()
