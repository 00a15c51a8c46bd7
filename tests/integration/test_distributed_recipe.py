"""The distributed locust recipe of docs/deployments.md, run as written.

The two shell blocks marked ``<!-- recipe: distributed-locust master -->`` and
``... worker -->`` are read from the page and run with bash: one master and two
worker processes on loopback. Only the values a user would change are replaced
(run directory, contract, port, bind address, users and run time, time scale).
The target is not scanproof's router: it is ``tests/zoo/jobs.py``, served by one
gunicorn master with two uvicorn workers that share a ``redis-server`` started
here. The kernel balances connections between them, as in a deployment.

The workers get no ``SCANPROOF_*`` variable at all: the contract and the time base
must reach them from the master.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cluster._proc import free_port, wait_until
from harness.history import schema as S
from harness.history.tables import load_history

pytestmark = [pytest.mark.processes, pytest.mark.real_redis, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "deployments.md"
CONTRACT = ROOT / "tests" / "zoo" / "jobs.toml"
RUN_S = 10
MASTER_TIMEOUT_S = 90


def recipe(part: str) -> str:
    """The shell block that follows ``<!-- recipe: distributed-locust PART -->``."""
    text = PAGE.read_text(encoding="utf-8")
    found = re.search(
        rf"<!-- recipe: distributed-locust {part} -->\n```sh\n(.*?)\n```", text, re.DOTALL
    )
    assert found is not None, f"{PAGE}: no recipe block for the {part}"
    return found.group(1)


def _replace(block: str, changes: dict[str, str]) -> str:
    for old, new in changes.items():
        assert old in block, f"the recipe no longer says {old!r}; update this test"
        block = block.replace(old, new)
    return block


def _accepts(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc``'s process group (each started here leads one) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


@contextlib.contextmanager
def _started(
    argv: list[str], *, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("w") as out:
        proc = subprocess.Popen(
            argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield proc
    finally:
        _stop(proc)


@contextlib.contextmanager
def _served(attr: str, tmp_path: Path) -> Iterator[str]:
    """``tests.zoo.jobs:<attr>`` under one gunicorn with two uvicorn workers; its URL."""
    redis_port, port = free_port(), free_port()
    redis = ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1"]
    redis += ["--save", "", "--appendonly", "no"]
    gunicorn = [sys.executable, "-m", "gunicorn", f"tests.zoo.jobs:{attr}"]
    gunicorn += ["-k", "uvicorn.workers.UvicornWorker", "-w", "2", "-b", f"127.0.0.1:{port}"]
    env = dict(os.environ, REDIS_URL=f"redis://127.0.0.1:{redis_port}/0")
    with (
        _started(redis, env=env, log=tmp_path / "redis.log"),
        _started(gunicorn, env=env, log=tmp_path / "gunicorn.log"),
    ):
        wait_until(lambda: _accepts(redis_port), timeout=20, what="redis-server", interval=0.05)
        wait_until(lambda: _accepts(port), timeout=30, what="gunicorn", interval=0.05)
        yield f"http://127.0.0.1:{port}"


def _master_block(run_dir: Path, port: int) -> str:
    return _replace(
        recipe("master"),
        {
            "runs/load1": str(run_dir),
            "my-contract.toml": str(CONTRACT),
            "SCANPROOF_TIME_SCALE=0.01": "SCANPROOF_TIME_SCALE=0.03",  # jobs run 1-2 s
            "0.0.0.0": "127.0.0.1",  # loopback only
            "5557": str(port),
            "-u 50 -r 10 -t 60s": f"-u 6 -r 6 -t {RUN_S}s",
        },
    )


def _worker_env() -> dict[str, str]:
    """A worker host's environment: MASTER_HOST, and no SCANPROOF_* of any kind."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCANPROOF_")}
    env["MASTER_HOST"] = "127.0.0.1"
    return env


def _distributed(
    target: str, tmp_path: Path, *, kill_worker_after_lines: bool = False
) -> tuple[int, str, Path]:
    """Run the recipe: the master's exit code, its console, and its run directory."""
    run_dir = tmp_path / "runs" / "load1"
    port = free_port()
    master_env = dict(os.environ, TARGET=target)
    worker = ["bash", "-c", _replace(recipe("worker"), {"5557": str(port)})]
    master_argv = ["bash", "-c", _master_block(run_dir, port)]
    with (
        _started(master_argv, env=master_env, log=tmp_path / "master.log") as master,
        _started(worker, env=_worker_env(), log=tmp_path / "worker0.log") as first,
        _started(worker, env=_worker_env(), log=tmp_path / "worker1.log"),
    ):
        if kill_worker_after_lines:
            # a worker host dies once both have sent history: mid-run
            shards = [run_dir / "locust-w0.jsonl", run_dir / "locust-w1.jsonl"]
            wait_until(
                lambda: all(p.exists() and p.stat().st_size > 0 for p in shards),
                timeout=60,
                what="both workers' first history lines",
                interval=0.1,
            )
            _stop(first)
        code = master.wait(timeout=MASTER_TIMEOUT_S)
    return code, (tmp_path / "master.log").read_text(errors="replace"), run_dir


@pytest.mark.timeout(MASTER_TIMEOUT_S + 60)
@pytest.mark.parametrize(
    ("attr", "exit_code", "verdict"),
    [("app", 0, "pass"), ("app_per_process", 1, "fail")],
    ids=["correct", "per-process"],
)
def test_the_recipe_judges_the_merged_history_at_the_master(
    attr: str, exit_code: int, verdict: str, tmp_path: Path
) -> None:
    with _served(attr, tmp_path) as target:
        code, console, run_dir = _distributed(target, tmp_path)
    said = console[-3000:]
    assert sorted(p.name for p in run_dir.glob("*.jsonl")) == [
        "locust-w0.jsonl",
        "locust-w1.jsonl",
    ], said
    ops = load_history(run_dir).ops
    per_worker = ops.groupby(S.PROC).size()
    assert set(per_worker.index) == {"locust-w0", "locust-w1"}, said
    assert per_worker.min() > 50, per_worker  # both workers drove load
    # the workers spoke the jobs API, which only the master's contract describes
    assert (ops[S.KIND] == "discover").sum() > 0
    assert (ops[S.HTTP_STATUS] == 201).any(), said
    record = json.loads((run_dir / "run.json").read_text())
    assert record["config"]["contract"]["discover_path"] == "/jobs"
    assert record["check"]["sources"]["time_scale"] == {"source": "environment", "value": 0.03}
    judged = json.loads((run_dir / "verdict.json").read_text())
    assert judged["ops"]["total"] == len(ops)
    assert (code, judged["verdict"]) == (exit_code, verdict), said
    # scanproof check re-judges the directory with the same exit code
    again = subprocess.run(
        [sys.executable, "-m", "harness", "check", str(run_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == exit_code, again.stdout[-2000:] + again.stderr[-2000:]
    classes = judged["anomalies"]
    if verdict == "fail":
        # two processes behind one URL, each with its own records
        assert classes["status_not_found"]["verdict"] == "fail", said
    else:
        assert classes["status_not_found"]["opportunities"] > 100, said


@pytest.mark.timeout(MASTER_TIMEOUT_S + 60)
def test_a_worker_host_that_dies_mid_run_leaves_a_judged_history(tmp_path: Path) -> None:
    started = time.monotonic()
    with _served("app", tmp_path) as target:
        code, console, run_dir = _distributed(target, tmp_path, kill_worker_after_lines=True)
    said = console[-3000:]
    assert "locust worker(s) went missing" in console, said
    # the master did not wait out its 30 s for the dead worker's last lines
    assert time.monotonic() - started < RUN_S + 45, said
    judged = json.loads((run_dir / "verdict.json").read_text())
    assert (code, judged["verdict"]) == (0, "pass"), said
    ops = load_history(run_dir).ops
    per_worker = ops.groupby(S.PROC).size()
    assert set(per_worker.index) == {"locust-w0", "locust-w1"}, said
    assert judged["ops"]["total"] == len(ops)
