"""Locust benchmark: the recording user's throughput against plain FastHttpUser.

Starts one cluster (``--workers`` workers of the reference service's ``sound``
preset behind the router, embedded Redis) and runs locust headless twice per
round against it, one run per user class of ``scenarios/locust/bench_users.py``,
with the same users, spawn rate and run time; the order alternates between
rounds. Both send ``GET /status/<unknown id>`` (a not_found answer, one Redis
lookup): ``RecordingStatusUser`` records every request into a history shard,
``PlainStatusUser`` does not. Reports requests per second of each run and the
median of the rounds' recording/plain ratios.

Usage::

    python benchmarks/bench_locust.py --rounds 3 --users 20 --run-time 10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from harness.cluster import Cluster
from harness.history.record import package_version

USERS_FILE = Path(__file__).resolve().parent.parent / "scenarios" / "locust" / "bench_users.py"
CLASSES = ("RecordingStatusUser", "PlainStatusUser")


def _run(
    user_class: str, host: str, tmp: Path, users: int, run_time: int, tag: str
) -> tuple[float, int, int]:
    """One locust run; (requests/s, requests, history lines)."""
    run_dir = tmp / tag
    env = dict(os.environ, SCANPROOF_RUN_DIR=str(run_dir), SCANPROOF_LOCUST_JUDGE="0")
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(USERS_FILE),
        "--headless",
        "--host",
        host,
        "--users",
        str(users),
        "--spawn-rate",
        str(users),
        "--run-time",
        f"{run_time}s",
        "--only-summary",
        # final statistics (the CSV is rewritten once a second and can miss the last one)
        "--json-file",
        str(run_dir / "locust"),
        user_class,
    ]
    subprocess.run(cmd, env=env, check=False, capture_output=True, timeout=run_time + 60)
    entries = json.loads((run_dir / "locust.json").read_text())
    requests = sum(int(e["num_requests"]) for e in entries)
    first = min(float(e["start_time"]) for e in entries)
    last = max(float(e["last_request_timestamp"]) for e in entries)
    lines = sum(1 for p in run_dir.glob("*.jsonl") for _ in p.open())
    return requests / (last - first), requests, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--run-time", type=int, default=10, help="seconds per locust run")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args()
    rows: list[dict[str, float]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        Cluster.start(workers=args.workers, preset="sound") as cluster,
    ):
        for r in range(args.rounds):
            order = CLASSES if r % 2 == 0 else CLASSES[::-1]
            got: dict[str, tuple[float, int, int]] = {}
            for cls in order:
                got[cls] = _run(
                    cls, cluster.router_url, Path(tmp), args.users, args.run_time, f"{r}-{cls}"
                )
            rec, plain = got["RecordingStatusUser"], got["PlainStatusUser"]
            row = {
                "round": r,
                "first": order[0],
                "recording_rps": rec[0],
                "plain_rps": plain[0],
                "ratio": rec[0] / plain[0],
                "recording_requests": rec[1],
                "history_lines": rec[2],
            }
            rows.append(row)
            print(
                f"round {r} ({order[0]} first): recording {rec[0]:8.1f} req/s "
                f"({rec[1]} requests, {rec[2]} history lines)  plain {plain[0]:8.1f} req/s  "
                f"ratio {row['ratio']:.3f}",
                flush=True,
            )
    ratios = [row["ratio"] for row in rows]
    print(
        f"median ratio recording/plain: {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f}-{max(ratios):.3f}); users {args.users}, "
        f"{args.run_time} s per run, {args.workers} workers; locust {package_version('locust')}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs"
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
