"""``scanproof run --driver locust``: locust in its own process, the nemesis in ours.

Importing locust monkey-patches the interpreter with gevent, so the harness never
imports it: the runner starts ``python -m locust`` headless against the router
with the locustfile ``scenarios/locust/scan_load.py``, tells it through the
environment where to record and which workload to follow, and awaits it while
the nemesis plays the fault schedule.

>>> cmd = locust_command("http://127.0.0.1:9", Path("r"), users=5, spawn_rate=5, run_s=12.3)
>>> cmd[cmd.index("--run-time") + 1]
'13s'
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import os
import signal
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from harness.contract import Contract
from harness.errors import InfrastructureError
from harness.scenario import Scenario

LOCUSTFILE = Path(__file__).resolve().parent.parent / "scenarios" / "locust" / "scan_load.py"
LOCUST_LOG = "locust.log"
# locust exits 1 when any request failed (a 5xx or a refused connection during a
# fault is expected in a chaos run); anything else means locust itself failed
_LOCUST_OK_CODES = (0, 1)
_STOP_GRACE_S = 15.0


def package_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def locust_command(
    router_url: str, run_dir: Path, *, users: int, spawn_rate: float, run_s: float
) -> list[str]:
    """The headless locust command line of a run (its reports land in ``run_dir``)."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        router_url,
        "--users",
        str(users),
        "--spawn-rate",
        repr(spawn_rate),
        "--run-time",
        f"{max(1, math.ceil(run_s))}s",
        "--only-summary",
        "--csv",
        str(run_dir / "locust"),
        "--html",
        str(run_dir / "locust.html"),
        # the CSV is rewritten once a second and may miss the last second; the JSON
        # file is written at exit from the final statistics
        "--json-file",
        str(run_dir / "locust"),
    ]


def locust_env(
    run_dir: Path, *, seed: int, workload: Scenario, contract: Contract
) -> dict[str, str]:
    """The environment the locustfile reads (see ``scenarios/locust/_workload.py``)."""
    fields = dataclasses.asdict(workload)
    fields.pop("faults")
    env = dict(os.environ)
    env.update(
        SCANPROOF_RUN_DIR=str(run_dir),
        SCANPROOF_SEED=str(seed),
        SCANPROOF_WORKLOAD=json.dumps(fields, sort_keys=True),
        SCANPROOF_CONTRACT_JSON=json.dumps(
            {k: v for k, v in dataclasses.asdict(contract).items() if v is not None}
        ),
        SCANPROOF_LOCUST_JUDGE="0",  # the runner judges the run itself
    )
    return env


async def run_locust(cmd: list[str], env: dict[str, str], run_dir: Path) -> None:
    """Run locust to its end; raises InfrastructureError when locust itself failed."""
    log_path = run_dir / LOCUST_LOG
    with log_path.open("ab") as log:
        proc = await asyncio.create_subprocess_exec(
            *cmd, env=env, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL
        )
        try:
            code = await proc.wait()
        finally:
            if proc.returncode is None:  # interrupted: let locust write its reports, then go
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), _STOP_GRACE_S)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()
    if code not in _LOCUST_OK_CODES:
        tail = log_path.read_text(errors="replace").splitlines()[-15:]
        raise InfrastructureError(
            f"locust exited with {code}; last lines of {log_path}:\n" + "\n".join(tail)
        )
