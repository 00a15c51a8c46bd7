"""Soak: a long ``steady`` run, sampled for memory, history growth and throughput.

Runs ``scanproof run --scenario <steady> --preset sound`` as a subprocess for
``--minutes`` and samples every ``--every`` seconds, walking ``/proc`` for the
run's process tree: the resident set (RSS) and CPU of every process by role
(``scanproof``: the runner and scripted driver; ``router``; ``zygote``;
``worker``: the zygote's forked children, summed; ``redis``; ``locust``), the
history's size on disk (the run directory's ``*.jsonl``: bytes, lines and ops
completed), ops/s over the last interval, and the machine's busy cores (the
machine is shared: ``other_cores`` is what other tenants used).

The workload is the catalogue's ``steady`` (no faults) with one change, written
to ``steady-soak.toml`` in the output directory: ``scans_per_tenant`` is raised
so that each tenant starts a scan about every 450 service seconds (4.5 s at the
reference service's 0.01). The catalogue's 3 scans per tenant start in the first
half of each third of the active phase, so a 30-minute run would load the
service in three 5-minute bursts; with a scan per slot each tenant is a steady
stream of one scan at a time, and ``--tenants`` (concurrent scan streams) is the
rate knob: about 23 ops/s per tenant on ``sound`` at 0.01.

At the end it judges the history at every ``--slice-minutes`` cut (the shards'
prefixes as they were at the cut, each judged as a whole run with
``harness.judging.run_dir.judge_run_dir``), so "the verdict stays stable" is a
row per cut with that slice's new anomalies; then it writes ``soak.csv``,
``soak.png`` (memory per role, history ops, ops/s) and ``soak.json`` into the
output directory and prints the run's verdict and a summary: RSS growth per role
over the active phase (first 10% of samples vs last 10%), mean ops/s, error rate,
status latency and the poll gap (see ``history_stats``).

``--probe`` plays a short run (``--probe-seconds``, 20) for each of
``--probe-values`` (tenants; users with ``--driver locust``) and reports the
achieved ops/s, error rate, p99 status latency, poll gap and verdict of each, and
the highest setting the machine sustains: verdict pass, errors <= 0.5%, and the
driver keeps up (the p90 gap between a tenant's polls of a scan is at most 1.5
poll intervals; a saturated machine stretches it).

Usage::

    python benchmarks/soak.py --probe
    python benchmarks/soak.py --minutes 30 --tenants 12
    python benchmarks/soak.py --minutes 1            # a quick check of the script
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from _common import machine_line

ROLES = ("scanproof", "router", "zygote", "worker", "redis", "locust", "link", "other")
SLOT_SERVICE_S = 450.0  # one scan per tenant per slot: ~165 s scan + linger + slack
DEFAULT_SCALE = 0.01  # the reference service's time scale (its meta states it)
KEEPS_UP = 1.5  # --probe: a setting keeps up while the poll gap's p90 is within 1.5 intervals
PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


# --- the process tree --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    cmdline: str
    rss: int  # bytes
    cpu_s: float  # user + system seconds so far


def _read_proc(pid: int) -> Proc | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        statm = Path(f"/proc/{pid}/statm").read_text()
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is fields[0]
    return Proc(
        pid=pid,
        ppid=int(fields[1]),
        cmdline=raw.replace(b"\0", b" ").decode(errors="replace").strip(),
        rss=int(statm.split()[1]) * PAGE,
        cpu_s=(int(fields[11]) + int(fields[12])) / TICK,
    )


def process_tree(root: int) -> list[Proc]:
    """``root`` and every descendant, read from /proc."""
    procs: dict[int, Proc] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            proc = _read_proc(int(entry.name))
            if proc is not None:
                procs[proc.pid] = proc
    children: dict[int, list[int]] = {}
    for proc in procs.values():
        children.setdefault(proc.ppid, []).append(proc.pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            tree.append(procs[pid])
            todo.extend(children.get(pid, []))
    return tree


def role_of(proc: Proc, root: int, by_pid: dict[int, Proc]) -> str:
    cmd = proc.cmdline
    if proc.pid == root:
        return "scanproof"
    if "harness.cluster._zygote" in cmd:
        parent = by_pid.get(proc.ppid)
        forked = parent is not None and "harness.cluster._zygote" in parent.cmdline
        return "worker" if forked else "zygote"
    for needle, role in (
        ("harness.cluster._worker", "worker"),  # --start-method spawn
        ("harness.cluster.router", "router"),
        ("harness.cluster.redis", "redis"),
        ("redis-server", "redis"),
        ("locust", "locust"),
        ("harness.cluster.link", "link"),
    ):
        if needle in cmd:
            return role
    return "other"


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (every core, not idle or iowait)."""
    parts = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = [int(x) for x in parts]
    return (sum(ticks[:8]) - ticks[3] - ticks[4]) / TICK


# --- the history on disk -----------------------------------------------------


@dataclass
class HistoryMeter:
    """Reads the run directory's shards as they grow; counts only whole lines."""

    run_dir: Path
    offsets: dict[str, int] = field(default_factory=dict)  # shard -> bytes of whole lines read
    lines: int = 0
    ops: int = 0  # completions
    errors: int = 0  # completions whose outcome is fail or info

    def poll(self) -> None:
        for path in sorted(self.run_dir.glob("*.jsonl")):
            start = self.offsets.get(path.name, 0)
            try:
                with path.open("rb") as fh:
                    fh.seek(start)
                    chunk = fh.read()
            except OSError:
                continue
            end = chunk.rfind(b"\n") + 1
            chunk = chunk[:end]
            self.offsets[path.name] = start + end
            self.lines += chunk.count(b"\n")
            self.ops += chunk.count(b'"e":"complete"')
            self.errors += chunk.count(b'"outcome":"fail"') + chunk.count(b'"outcome":"info"')

    @property
    def size(self) -> int:
        return sum(self.offsets.values())


# --- one run -----------------------------------------------------------------


@dataclass
class RunResult:
    out: Path
    run_dir: Path
    samples: list[dict[str, float]]
    cuts: list[tuple[float, int, dict[str, int]]]  # (s since the first op, ops, shard offsets)
    verdict: dict[str, Any]
    exit_code: int
    wall_s: float
    command: list[str]
    stats: dict[str, float] = field(default_factory=dict)


def write_scenario(path: Path, scans_per_tenant: int) -> None:
    """The catalogue's steady, with ``scans_per_tenant`` raised (see the module docstring)."""
    from scenarios.catalogue import get_scenario

    steady = dataclasses.replace(get_scenario("steady"), scans_per_tenant=scans_per_tenant)
    lines = []
    for name, value in dataclasses.asdict(steady).items():
        if name == "faults":
            continue
        lines.append(f"{name} = {json.dumps(value)}")  # str, int, float, bool: TOML-compatible
    path.write_text("\n".join(lines) + "\n")


def scanproof_command(
    args: argparse.Namespace, run_dir: Path, scenario: Path, seconds: float, setting: int
) -> list[str]:
    cmd = [sys.executable, "-m", "harness", "run", "--scenario", str(scenario)]
    cmd += ["--preset", args.preset, "--seed", str(args.seed), "--duration", f"{seconds:g}"]
    cmd += ["--out", str(run_dir), "--json"]
    if args.driver == "locust":
        cmd += ["--driver", "locust", "--users", str(setting), "--spawn-rate", str(setting)]
    else:
        cmd += ["--tenants", str(setting)]
    if args.redis:
        cmd += ["--redis", args.redis]
    if args.time_scale:
        cmd += ["--time-scale", f"{args.time_scale:g}"]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    return cmd


def run_once(
    args: argparse.Namespace,
    out: Path,
    seconds: float,
    setting: int,
    *,
    slice_s: float,
    every: float,
    echo: bool,
) -> RunResult:
    """Play one run of ``seconds`` as a subprocess and sample it until it exits."""
    out.mkdir(parents=True, exist_ok=True)
    run_dir = out / "run"
    scale = args.time_scale or DEFAULT_SCALE
    scans = args.scans_per_tenant or max(1, round(seconds / (SLOT_SERVICE_S * scale)))
    scenario = out / "steady-soak.toml"
    write_scenario(scenario, scans)
    cmd = scanproof_command(args, run_dir, scenario, seconds, setting)
    meter = HistoryMeter(run_dir)
    samples: list[dict[str, float]] = []
    cuts: list[tuple[float, int, dict[str, int]]] = []
    begin = time.monotonic()
    first_op_at: float | None = None
    prev: tuple[float, int, float] | None = None  # time, ops, machine busy seconds
    prev_cpu: dict[int, float] = {}  # pid -> CPU seconds at the previous sample
    stdout = (out / "scanproof-verdict.json").open("wb")
    stderr = (out / "scanproof.log").open("wb")
    with stdout, stderr:
        child = subprocess.Popen(cmd, stdout=stdout, stderr=stderr, stdin=subprocess.DEVNULL)
        try:
            next_at = begin
            while True:
                exited = child.poll() is not None
                now = time.monotonic()
                tree = process_tree(child.pid)
                by_pid = {p.pid: p for p in tree}
                meter.poll()
                busy = machine_busy_s()
                rss = dict.fromkeys(ROLES, 0.0)
                count = dict.fromkeys(ROLES, 0.0)
                cpu = dict.fromkeys(ROLES, 0.0)  # CPU seconds since the previous sample
                worker_max = 0.0
                for proc in tree:
                    role = role_of(proc, child.pid, by_pid)
                    rss[role] += proc.rss / MIB
                    count[role] += 1
                    cpu[role] += proc.cpu_s - prev_cpu.get(proc.pid, 0.0)
                    if role == "worker":
                        worker_max = max(worker_max, proc.rss / MIB)
                t = now - begin
                row: dict[str, float] = {
                    "t_s": round(t, 2),
                    "load1": os.getloadavg()[0],
                    "history_bytes": meter.size,
                    "history_lines": meter.lines,
                    "ops": meter.ops,
                    "errors": meter.errors,
                    "ops_per_s": 0.0,
                    "cluster_up": float(count["router"] > 0),
                }
                if prev is not None:
                    dt = now - prev[0]
                    row["ops_per_s"] = round((meter.ops - prev[1]) / dt, 1)
                    row["ours_cores"] = round(sum(cpu.values()) / dt, 3)
                    row["machine_cores"] = round((busy - prev[2]) / dt, 3)
                    row["other_cores"] = round(
                        max(0.0, row["machine_cores"] - row["ours_cores"]), 3
                    )
                for role in ROLES:
                    row[f"rss_mib_{role}"] = round(rss[role], 1)
                    row[f"n_{role}"] = count[role]
                    if prev is not None:
                        row[f"cores_{role}"] = round(cpu[role] / (now - prev[0]), 3)
                row["rss_mib_worker_max"] = round(worker_max, 1)
                samples.append(row)
                prev = (now, meter.ops, busy)
                prev_cpu = {proc.pid: proc.cpu_s for proc in tree}
                if first_op_at is None and meter.ops:
                    first_op_at = now
                if first_op_at is not None and slice_s and count["router"] > 0:
                    since = now - first_op_at
                    if since >= slice_s * (len(cuts) + 1):
                        cuts.append((since, meter.ops, dict(meter.offsets)))
                if echo:
                    print(
                        f"[{t / 60:6.1f} min] ops {meter.ops:>9,}  {row['ops_per_s']:7.1f} ops/s  "
                        f"history {meter.size / MIB:7.1f} MiB  RSS MiB: "
                        + "  ".join(
                            f"{r} {rss[r]:.0f}" for r in ROLES if count[r] and r != "other"
                        ),
                        flush=True,
                    )
                if exited:
                    break
                next_at += every
                while child.poll() is None and time.monotonic() < next_at:
                    time.sleep(min(0.2, max(0.0, next_at - time.monotonic())))
        except KeyboardInterrupt:
            # A terminal's Ctrl-C reached scanproof too: let it tear its cluster down and
            # write its record; pass the signal on only when it did not get it.
            try:
                child.wait(timeout=15)
            except subprocess.TimeoutExpired:
                child.send_signal(signal.SIGINT)
                child.wait()
    wall = time.monotonic() - begin
    verdict: dict[str, Any] = {}
    with contextlib.suppress(OSError, json.JSONDecodeError):
        verdict = json.loads((out / "scanproof-verdict.json").read_text())
    if not verdict:
        with contextlib.suppress(OSError, json.JSONDecodeError):
            verdict = json.loads((run_dir / "verdict.json").read_text())
    result = RunResult(out, run_dir, samples, cuts, verdict, child.returncode, wall, cmd)
    result.stats = history_stats(run_dir)
    return result


def _pct(values: list[float], q: float) -> float:
    """The q-quantile of sorted ``values`` (0 when empty)."""
    return values[min(len(values) - 1, int(q * len(values)))] if values else 0.0


def history_stats(run_dir: Path) -> dict[str, float]:
    """From the shards: ops, errors, status latency, ops/s over the active phase (first
    invoke to the final heal), and the poll gap: the time between consecutive status
    invokes of one tenant about one scan, against the poll interval. A driver that keeps
    up polls on its interval; one that falls behind (a saturated machine) stretches it."""
    try:
        record = json.loads((run_dir / "run.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    check = record.get("check") or {}
    heal = int(check.get("final_heal_ns") or 0)
    interval = float(((check.get("sources") or {}).get("poll_interval_s") or {}).get("value", 0))
    invokes: dict[str, tuple[int, str]] = {}  # op -> (invoke ns, kind), until it completes
    last_poll: dict[tuple[str, str], int] = {}  # (tenant, scan) -> its last status invoke
    latencies: list[float] = []
    gaps: list[float] = []
    ops = errors = first = in_phase = 0
    for path in sorted(run_dir.glob("*.jsonl")):
        with path.open("rb") as fh:
            for raw in fh:
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue
                kind = event.get("e")
                if kind == "invoke":
                    t = int(event["t_invoke_ns"])
                    invokes[event["op"]] = (t, event.get("kind", ""))
                    first = t if not first else min(first, t)
                    if event.get("kind") == "status" and (not heal or t <= heal):
                        key = (event.get("tenant", ""), event.get("scan_id", ""))
                        if key in last_poll:
                            gaps.append((t - last_poll[key]) / 1e6)
                        last_poll[key] = t
                elif kind == "complete":
                    t_inv, op_kind = invokes.pop(event["op"], (0, ""))
                    ops += 1
                    errors += event.get("outcome") != "ok"
                    if t_inv and (not heal or t_inv <= heal):
                        in_phase += 1
                        if op_kind == "status" and event.get("outcome") == "ok":
                            latencies.append((int(event["t_complete_ns"]) - t_inv) / 1e6)
    ops += len(invokes)  # never completed: info
    errors += len(invokes)
    latencies.sort()
    gaps.sort()
    phase_s = (heal - first) / 1e9 if heal and first and heal > first else 0.0
    return {
        "ops": ops,
        "errors": errors,
        "error_rate": errors / ops if ops else 0.0,
        "active_s": round(phase_s, 1),
        "active_ops_per_s": round(in_phase / phase_s, 1) if phase_s else 0.0,
        "status_p50_ms": round(_pct(latencies, 0.5), 1),
        "status_p99_ms": round(_pct(latencies, 0.99), 1),
        "poll_interval_ms": round(interval * 1000, 1),
        "poll_gap_p50_ms": round(_pct(gaps, 0.5), 1),
        "poll_gap_p90_ms": round(_pct(gaps, 0.9), 1),
    }


# --- the verdict at each cut -------------------------------------------------


def judge_cuts(result: RunResult) -> list[dict[str, Any]]:
    """Judge the history as it stood at each cut: a copy of the shards' prefixes with
    the final run.json, judged as a whole run. Each row: the cut, its verdict, counts
    per class so far and the anomalies new in the slice since the previous cut."""
    if not result.cuts or not (result.run_dir / "run.json").exists():
        return []
    from harness.judging.run_dir import judge_run_dir

    record = json.loads((result.run_dir / "run.json").read_text())
    record["temp_dirs"] = []  # a copy: nothing of the run's to clean up
    rows: list[dict[str, Any]] = []
    previous: dict[str, int] = {}
    final_counts = {
        name: int(entry.get("count", 0))
        for name, entry in (result.verdict.get("anomalies") or {}).items()
    }
    active_end = max(
        (s["t_s"] for s in result.samples if s.get("cluster_up")), default=float("inf")
    )
    first_t = min((s["t_s"] for s in result.samples if s["ops"]), default=0.0)
    for k, (since, ops, offsets) in enumerate(result.cuts):
        if first_t + since >= active_end:
            break
        copy = result.out / f"cut-{k}"
        shutil.rmtree(copy, ignore_errors=True)
        copy.mkdir()
        (copy / "run.json").write_text(json.dumps(record))
        for name, size in offsets.items():
            with (result.run_dir / name).open("rb") as src, (copy / name).open("wb") as dst:
                left = size
                while left > 0:
                    chunk = src.read(min(left, 16 * MIB))
                    if not chunk:
                        break
                    dst.write(chunk)
                    left -= len(chunk)
        began = time.monotonic()
        verdict = judge_run_dir(copy, partial=True)
        took = time.monotonic() - began
        counts = {name: c.count for name, c in verdict.classes.items()}
        label = f"{int(since // 60)}:{int(since % 60):02d} after the first op"
        rows.append(_cut_row(label, verdict.verdict, counts, previous, ops))
        rows[-1]["judge_s"] = round(took, 1)
        previous = counts
        shutil.rmtree(copy, ignore_errors=True)
    if result.verdict:
        rows.append(
            _cut_row(
                "end (the run's verdict)",
                str(result.verdict.get("verdict", "?")),
                final_counts,
                previous,
                int(result.stats.get("ops", 0)),
            )
        )
    return rows


def _cut_row(
    label: str, verdict: str, counts: dict[str, int], previous: dict[str, int], ops: int
) -> dict[str, Any]:
    new = {name: n - previous.get(name, 0) for name, n in counts.items()}
    return {
        "cut": label,
        "ops": ops,
        "verdict": verdict,
        "anomalies_so_far": sum(counts.values()),
        "new_in_slice": {name: n for name, n in new.items() if n},
        "counts": counts,
    }


# --- summary, CSV, plot ------------------------------------------------------


def growth(samples: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per role: mean RSS over the first 10% of the active samples vs the last 10%."""
    active = [s for s in samples if s.get("cluster_up") and s["ops"]]
    if len(active) < 2:
        return {}
    k = max(1, len(active) // 10)
    head, tail = active[:k], active[-k:]
    rows: dict[str, dict[str, float]] = {}
    for role in (*ROLES, "worker_max"):
        key = f"rss_mib_{role}"
        if not any(s.get(key) for s in active):
            continue
        first = sum(s[key] for s in head) / len(head)
        last = sum(s[key] for s in tail) / len(tail)
        rows[role] = {
            "first_mib": round(first, 1),
            "last_mib": round(last, 1),
            "growth_mib": round(last - first, 1),
            "growth_pct": round(100 * (last - first) / first, 1) if first else 0.0,
            "max_mib": round(max(s[key] for s in active), 1),
        }
    return rows


def write_csv(path: Path, samples: list[dict[str, float]]) -> None:
    columns: list[str] = []
    for row in samples:
        columns += [c for c in row if c not in columns]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        writer.writerows(samples)


def plot(path: Path, samples: list[dict[str, float]], title: str, cuts: list[float]) -> None:
    """Three panels over minutes since start; dotted lines mark the judged cuts (``cuts``,
    seconds since start)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_s"] / 60 for s in samples]
    fig, (mem, hist, rate) = plt.subplots(3, 1, figsize=(10, 10), sharex=True)
    for role in (*ROLES, "worker_max"):
        key = f"rss_mib_{role}"
        if any(s.get(key) for s in samples):
            label = "worker (largest one)" if role == "worker_max" else role
            if role == "worker":
                label = "workers (sum)"
            mem.plot(t, [s.get(key, 0.0) for s in samples], label=label)
    mem.set_ylabel("RSS (MiB)")
    mem.legend(loc="upper left", fontsize="small", ncol=4)
    mem.set_title(title, fontsize="medium")
    hist.plot(t, [s["ops"] / 1000 for s in samples], color="tab:blue")
    hist.set_ylabel("ops recorded (thousands)", color="tab:blue")
    size = hist.twinx()
    size.plot(t, [s["history_bytes"] / MIB for s in samples], color="tab:orange", ls="--")
    size.set_ylabel("history *.jsonl (MiB)", color="tab:orange")
    rate.plot(t[1:], [s["ops_per_s"] for s in samples[1:]], color="tab:green", label="ops/s")
    rate.set_ylabel("ops/s (per interval)")
    cores = rate.twinx()
    cores.plot(
        t[1:],
        [s.get("ours_cores", 0.0) for s in samples[1:]],
        color="tab:red",
        lw=0.8,
        label="cores: the run",
    )
    cores.plot(
        t[1:],
        [s.get("other_cores", 0.0) for s in samples[1:]],
        color="tab:gray",
        lw=0.8,
        label="cores: other tenants",
    )
    cores.set_ylabel("CPU cores")
    cores.legend(loc="lower right", fontsize="small")
    rate.set_xlabel("minutes since start")
    for at in cuts:
        for ax in (mem, hist, rate):
            ax.axvline(at / 60, color="black", lw=0.6, ls=":")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _classes_line(verdict: dict[str, Any]) -> str:
    parts = []
    for name, entry in (verdict.get("anomalies") or {}).items():
        parts.append(f"{name} {entry.get('count', 0)}/{entry.get('opportunities', 0)}")
    return ", ".join(parts)


# --- the two modes -----------------------------------------------------------


def soak(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    seconds = args.minutes * 60
    setting = args.users if args.driver == "locust" else args.tenants
    print(
        f"soak: {args.minutes:g} min, {args.driver} driver, "
        f"{'users' if args.driver == 'locust' else 'tenants'} {setting}, "
        f"sample every {args.every:g} s; output {out}",
        flush=True,
    )
    result = run_once(
        args, out, seconds, setting, slice_s=args.slice_minutes * 60, every=args.every, echo=True
    )
    print(f"$ {' '.join(result.command)}")
    print(f"scanproof exited {result.exit_code} after {result.wall_s / 60:.1f} min")
    cuts = judge_cuts(result)
    rows = growth(result.samples)
    write_csv(out / "soak.csv", result.samples)
    title = (
        f"soak: steady, {args.preset}, {args.driver} {setting}, {args.minutes:g} min "
        f"({datetime.now(UTC):%Y-%m-%d} {platform.node()})"
    )
    first_t = min((s["t_s"] for s in result.samples if s["ops"]), default=0.0)
    n_judged = sum(1 for row in cuts if not str(row["cut"]).startswith("end"))
    judged = [first_t + c[0] for c in result.cuts][:n_judged]
    plot(out / "soak.png", result.samples, title, judged)
    stats = result.stats
    active = [s for s in result.samples if s.get("cluster_up") and s["ops"]]
    interval_rates = [s["ops_per_s"] for s in active[1:]]
    print()
    print("RSS per role over the active phase (mean of the first 10% of samples vs the last 10%)")
    print(
        f"{'role':<22}{'first MiB':>10}{'last MiB':>10}{'growth MiB':>12}{'growth':>9}"
        f"{'max MiB':>9}"
    )
    for role, g in rows.items():
        label = "worker (largest one)" if role == "worker_max" else role
        if role == "worker":
            label = "workers (sum)"
        print(
            f"{label:<22}{g['first_mib']:>10.1f}{g['last_mib']:>10.1f}{g['growth_mib']:>12.1f}"
            f"{g['growth_pct']:>8.1f}%{g['max_mib']:>9.1f}"
        )
    after = [s["rss_mib_scanproof"] for s in result.samples if not s.get("cluster_up") and s["ops"]]
    if after:
        print(f"scanproof while judging and reporting (cluster down): peak {max(after):.0f} MiB")
    print()
    if stats:
        print(
            f"ops {int(stats['ops']):,} ({result.samples[-1]['history_bytes'] / MIB:.0f} MiB "
            f"of history), mean {stats['active_ops_per_s']:.1f} ops/s over the "
            f"{stats['active_s']:.0f} s active phase (per {args.every:g} s interval: "
            f"{min(interval_rates, default=0):.0f}-{max(interval_rates, default=0):.0f}), "
            f"errors {int(stats['errors'])} ({100 * stats['error_rate']:.3f}%), status latency "
            f"p50 {stats['status_p50_ms']:.1f} ms, p99 {stats['status_p99_ms']:.1f} ms, poll gap "
            f"p50 {stats['poll_gap_p50_ms']:.1f} ms, p90 {stats['poll_gap_p90_ms']:.1f} ms "
            f"(interval {stats['poll_interval_ms']:.0f} ms)"
        )
    if cuts:
        print()
        print("verdict of the history at each cut (judged as a whole run)")
        print(f"{'cut':<26}{'ops':>10}{'verdict':>9}{'anomalies':>11}  new in the slice")
        for row in cuts:
            new = ", ".join(f"{k} {v}" for k, v in row["new_in_slice"].items()) or "none"
            print(
                f"{row['cut']:<26}{row['ops']:>10,}{row['verdict']:>9}"
                f"{row['anomalies_so_far']:>11}  {new}"
            )
    print()
    print(
        f"verdict: {str(result.verdict.get('verdict', 'none (no verdict.json)')).upper()}"
        + (
            f" ({'; '.join(result.verdict.get('reasons', []))})"
            if result.verdict.get("reasons")
            else ""
        )
    )
    print(f"classes (count/opportunities): {_classes_line(result.verdict)}")
    print(
        f"files: {out / 'soak.csv'}, {out / 'soak.png'}, {out / 'soak.json'}, run: {result.run_dir}"
    )
    return {
        "mode": "soak",
        "minutes": args.minutes,
        "driver": args.driver,
        "setting": setting,
        "command": result.command,
        "exit_code": result.exit_code,
        "wall_s": round(result.wall_s, 1),
        "verdict": result.verdict.get("verdict"),
        "reasons": result.verdict.get("reasons", []),
        "stats": stats,
        "rss_growth": rows,
        "cuts": cuts,
        "samples": len(result.samples),
    }


@dataclass
class ProbeRow:
    setting: int  # tenants, or locust users
    ops_per_s: float  # over the active phase
    error_rate: float
    status_p99_ms: float
    poll_gap_p90_ms: float  # between one tenant's polls of one scan
    poll_interval_ms: float  # what the scenario asks for
    cores_run: float  # mean CPU cores the run's processes used while the cluster was up
    cores_other: float  # mean cores other tenants of the machine used meanwhile
    verdict: str
    classes: str
    exit_code: int
    keeps_up: bool = False
    sustained: bool = False

    @property
    def per_setting(self) -> float:
        return self.ops_per_s / self.setting


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def probe(args: argparse.Namespace, out: Path) -> dict[str, Any]:
    values = sorted(int(v) for v in args.probe_values.split(",") if v)
    knob = "users" if args.driver == "locust" else "tenants"
    one = knob[:-1]
    print(f"probe: {args.probe_seconds:g} s of steady per setting, {knob} {values}", flush=True)
    rows: list[ProbeRow] = []
    for value in values:
        result = run_once(
            args,
            out / f"{knob}-{value}",
            args.probe_seconds,
            value,
            slice_s=0.0,
            every=2.0,
            echo=False,
        )
        stats = result.stats
        up = [s for s in result.samples if s.get("cluster_up") and s["ops"]]
        row = ProbeRow(
            setting=value,
            ops_per_s=stats.get("active_ops_per_s", 0.0),
            error_rate=stats.get("error_rate", 0.0),
            status_p99_ms=stats.get("status_p99_ms", 0.0),
            poll_gap_p90_ms=stats.get("poll_gap_p90_ms", 0.0),
            poll_interval_ms=stats.get("poll_interval_ms", 0.0),
            cores_run=round(_mean([s.get("ours_cores", 0.0) for s in up]), 2),
            cores_other=round(_mean([s.get("other_cores", 0.0) for s in up]), 2),
            verdict=str(result.verdict.get("verdict", "none")),
            classes=_classes_line(result.verdict),
            exit_code=result.exit_code,
        )
        rows.append(row)
        print(
            f"{knob} {value:>4}: {row.ops_per_s:7.1f} ops/s ({row.per_setting:.1f} per {one}), "
            f"errors {100 * row.error_rate:.2f}%, status p99 {row.status_p99_ms:.0f} ms, "
            f"poll gap p90 {row.poll_gap_p90_ms:.0f} ms (interval {row.poll_interval_ms:.0f}), "
            f"cores: run {row.cores_run:.2f} other {row.cores_other:.2f}, verdict {row.verdict}",
            flush=True,
        )
        if not args.keep:
            shutil.rmtree(result.run_dir, ignore_errors=True)
    best: ProbeRow | None = None
    for row in rows:
        row.keeps_up = 0 < row.poll_gap_p90_ms <= KEEPS_UP * row.poll_interval_ms
        row.sustained = row.verdict == "pass" and row.error_rate <= 0.005 and row.keeps_up
        if row.sustained:
            best = row
    print()
    print(
        f"{knob:>8}{'ops/s':>9}{'per ' + one:>12}{'errors':>9}{'p99 ms':>8}{'gap p90':>9}"
        f"{'cores':>7}{'other':>7}{'verdict':>9}  sustained"
    )
    for row in rows:
        print(
            f"{row.setting:>8}{row.ops_per_s:>9.1f}{row.per_setting:>12.1f}"
            f"{100 * row.error_rate:>8.2f}%{row.status_p99_ms:>8.0f}{row.poll_gap_p90_ms:>9.0f}"
            f"{row.cores_run:>7.2f}{row.cores_other:>7.2f}{row.verdict:>9}  "
            f"{'yes' if row.sustained else 'no'}"
        )
    print()
    if best is None:
        print(
            f"no setting was sustained (pass, errors <= 0.5%, poll gap p90 <= {KEEPS_UP:g} x "
            f"the poll interval); try lower values"
        )
    else:
        flag = (
            f"--driver locust --users {best.setting}"
            if knob == "users"
            else (f"--tenants {best.setting}")
        )
        print(
            f"highest sustained: {knob} {best.setting} ({best.ops_per_s:.0f} ops/s). The soak:\n"
            f"  python benchmarks/soak.py --minutes 30 {flag} --preset {args.preset}"
        )
    return {
        "mode": "probe",
        "seconds": args.probe_seconds,
        "driver": args.driver,
        "knob": knob,
        "rows": [{**dataclasses.asdict(r), "per_setting": r.per_setting} for r in rows],
        "best": best.setting if best else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0, help="active phase (default 30)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--tenants", type=int, default=12, help="concurrent scan streams")
    parser.add_argument("--driver", choices=("scripted", "locust"), default="scripted")
    parser.add_argument("--users", type=int, default=20, help="--driver locust: users")
    parser.add_argument("--preset", default="sound")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--redis", default="", help="scanproof's --redis (default: embedded)")
    parser.add_argument("--time-scale", type=float, default=0.0, help="default: the app's")
    parser.add_argument("--workers", type=int, default=0, help="default: the scenario's (4)")
    parser.add_argument(
        "--scans-per-tenant",
        type=int,
        default=0,
        help=f"default: one per {SLOT_SERVICE_S:g} service seconds of the active phase",
    )
    parser.add_argument(
        "--slice-minutes", type=float, default=5.0, help="judge the history at every cut (0: no)"
    )
    parser.add_argument("--probe", action="store_true", help="try --probe-values, then stop")
    parser.add_argument(
        "--probe-values", default="4,8,12,16,24", help="tenants (users with --driver locust)"
    )
    parser.add_argument("--probe-seconds", type=float, default=20.0)
    parser.add_argument("--keep", action="store_true", help="--probe: keep the runs' directories")
    parser.add_argument(
        "--out", type=Path, default=None, help="default: scanproof-runs/soak-<time>"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the summary here")
    args = parser.parse_args()
    out = args.out or Path("scanproof-runs") / f"soak-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    if out.exists() and any(out.iterdir()):
        parser.error(f"--out {out}: not empty")
    out.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    print(f"$ python {' '.join(sys.argv)}", flush=True)
    summary = probe(args, out) if args.probe else soak(args, out)
    summary["machine"] = machine_line()
    text = json.dumps(summary, indent=2, default=str) + "\n"
    (out / ("probe.json" if args.probe else "soak.json")).write_text(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    main()
