"""Worker restart-to-ready time: forking from the preloaded parent vs spawning a fresh interpreter.

For each app and start method, restarts one worker ``--restarts`` times
(SIGKILL, then a new process until it accepts connections and the router has
it back in rotation) and reports the median and 90th percentile of the total,
and of the start part alone. A request through the new worker checks that
"ready" means serving.

Usage::

    python benchmarks/bench_restart.py --restarts 20
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
from pathlib import Path

import httpx

from harness.cluster import Cluster
from harness.cluster.supervisor import START_METHODS
from harness.targets.reference import DEFAULT_APP

APPS = ("benchmarks.apps.kv:app", DEFAULT_APP)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restarts", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for app in APPS:
        for method in START_METHODS:
            with Cluster.start(app=app, workers=2, start_method=method) as cluster:
                for _ in range(args.restarts):
                    cluster.restart(1)
                    url = cluster.workers[1].url
                    assert httpx.get(f"{url}/openapi.json").status_code == 200
                totals = [r.total_s * 1000 for r in cluster.restarts]
                starts = [r.start_s * 1000 for r in cluster.restarts]
            row = {
                "app": app,
                "method": method,
                "restarts": len(totals),
                "total_median_ms": statistics.median(totals),
                "total_p90_ms": _quantile(totals, 0.9),
                "start_median_ms": statistics.median(starts),
            }
            rows.append(row)
            print(
                f"{app:28} {method:5}  restart-to-ready median {row['total_median_ms']:6.1f} ms"
                f"  p90 {row['total_p90_ms']:6.1f} ms"
                f"  (start part {row['start_median_ms']:.1f} ms)",
                flush=True,
            )
    result = {"machine": platform.platform(), "python": platform.python_version(), "rows": rows}
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
