"""``scanproof run|gate --target URL``: a deployment that is already running.

The tests start the deployment themselves, as a user would: a ``redis-server`` and
one gunicorn master with 4 uvicorn workers serving the reference service (the kernel
balances connections, not scanproof), or zoo apps under plain uvicorn. scanproof
starts nothing but, with several targets, its router.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.cluster._proc import free_port
from tests.scanproof_cli import ROOT
from tests.scanproof_cli import scanproof as _scanproof

pytestmark = [pytest.mark.processes, pytest.mark.timeout(300)]
META = "/api/v1/opportunities/_meta"


def _wait_http(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            import httpx

            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except Exception:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{url} did not answer in 60 s:\n{log.read_text()[-2000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("redis") / "redis.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, log.read_text()
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def gunicorn(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """One gunicorn master with 4 workers (the reference, claimed-fix): (URL, master pid)."""
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    env = {**os.environ, "REDIS_URL": redis_url, "REFIMPL_PRESET": "claimed-fix"}
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "reference_impl.app:app",
                "-k",
                "uvicorn.workers.UvicornWorker",
                "-w",
                "4",
                "-b",
                f"127.0.0.1:{port}",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(url + META, proc, log)
        yield url, proc.pid
    finally:
        _stop(proc)


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _kill_scenario(tmp_path: Path) -> Path:
    return _write(
        tmp_path / "kill.toml",
        'name = "hooked-kill"\ntenants = 2\nscans_per_tenant = 2\nduration = 500.0\n'
        'workers = 4\n\n[[faults]]\nat = 0.3\nfault = "worker_kill"\nworker = 1\n'
        "down = 50.0\n",
    )


def _fault_rows(run_dir: Path) -> list[dict[str, object]]:
    import pandas as pd

    rows: list[dict[str, object]] = pd.read_parquet(run_dir / "faults.parquet").to_dict("records")
    return rows


# ------------------------------------------------------------------ refusals (fast)


class _Counter:
    """A loopback listener that only counts connections: proof that nothing was sent."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def counter() -> Iterator[_Counter]:
    listener = _Counter()
    try:
        yield listener
    finally:
        listener.close()


def test_a_fault_with_no_hook_is_refused_before_any_request(
    tmp_path: Path, counter: _Counter
) -> None:
    out = tmp_path / "run"
    done = _scanproof("gate", "--target", counter.url, "--scenario", "kill", "--out", str(out))
    assert done.returncode == 2, done.stderr
    line = done.stderr.strip().splitlines()[-1]
    assert "fault 'worker_kill' needs hook 'worker_kill'" in line
    assert counter.accepted == 0
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--cmd", "python -m http.server {port}"], "--cmd and --target"),
        (["--preset", "sound"], "--preset with --target"),
        (["--scenario", "evict"], "--redis redis://HOST:PORT/DB"),
        (["--scenario", "partition"], "cannot run with --target"),
        (["--driver", "locust", "--max-rps", "5"], "--driver locust --max-rps"),
    ],
)
def test_what_a_target_run_cannot_do_is_refused_in_one_line(
    tmp_path: Path, counter: _Counter, extra: list[str], named: str
) -> None:
    done = _scanproof("run", "--target", counter.url, *extra, "--out", str(tmp_path / "r"))
    assert done.returncode == 2, done.stderr
    assert named in done.stderr.strip().splitlines()[-1]
    assert counter.accepted == 0


@pytest.mark.parametrize("url", ["https://127.0.0.1:1", "http://127.0.0.1:1/api", "127.0.0.1:80"])
def test_a_target_that_is_not_an_http_url_is_refused(tmp_path: Path, url: str) -> None:
    done = _scanproof("run", "--target", url, "--out", str(tmp_path / "r"))
    assert done.returncode == 2
    assert f"--target {url}" in done.stderr.strip().splitlines()[-1]


# ---------------------------------------------------------- gunicorn, kernel balanced


@pytest.mark.slow
def test_one_gunicorn_master_with_four_workers_shows_the_multi_worker_failure(
    tmp_path: Path, gunicorn: tuple[str, int]
) -> None:
    url, _ = gunicorn
    out = tmp_path / "run"
    done = _scanproof(
        "gate", "--target", url, "--no-keep-alive", "--scenario", "steady", "--duration", "6",
        "--out", str(out), timeout=240,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-3000:]
    assert f"target {url}: at most 50 requests/s (default" in done.stderr
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["anomalies"]["status_not_found"]["count"] > 0
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["targets"] == [url]
    assert record["config"]["worker_attribution"] == "unknown"
    assert record["config"]["driver"]["keep_alive"] is False
    report = (out / "report.md").read_text()
    assert "worker attribution `unknown (set worker_header in the contract)`" in report
    assert "1 target URL" in report  # gunicorn's workers are its own, not ours
    assert "4 workers" not in report


_KILL_ONE = (
    f'{sys.executable} -c "import os, signal, psutil; '
    "kids = psutil.Process({master}).children(); "
    "print('SIGKILL gunicorn worker', kids[0].pid); os.kill(kids[0].pid, signal.SIGKILL)\""
)


@pytest.mark.slow
def test_a_kill_hook_is_recorded_landed_with_its_output(
    tmp_path: Path, gunicorn: tuple[str, int]
) -> None:
    url, master = gunicorn
    before = {p.pid for p in psutil.Process(master).children()}
    contract = _write(
        tmp_path / "c.toml",
        "[hooks]\nworker_kill = '''" + _KILL_ONE.replace("{master}", str(master)) + "'''\n"
        f'probe = "{url}{META}"\n',
    )
    out = tmp_path / "run"
    done = _scanproof(
        "run", "--target", url, "--contract", str(contract), "--scenario",
        str(_kill_scenario(tmp_path)), "--duration", "5", "--out", str(out), timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [kill] = [r for r in _fault_rows(out) if r["fault"] == "worker_kill"]
    assert kill["landed"], kill
    assert "hook worker_kill exit 0" in str(kill["evidence"])
    assert "SIGKILL gunicorn worker" in str(kill["evidence"])
    assert "probe " in str(kill["evidence"])
    hooks = json.loads(str(kill["params"]))["hooks"]
    assert hooks[0]["exit"] == 0
    killed = int(str(hooks[0]["output"]).split()[-1])
    assert killed in before
    assert not psutil.pid_exists(killed)
    # the master replaced it: still 4 workers
    deadline = time.monotonic() + 30
    while len(psutil.Process(master).children()) < 4:
        assert time.monotonic() < deadline
        time.sleep(0.1)


@pytest.mark.slow
def test_a_failing_hook_is_recorded_not_landed_and_the_report_warns(
    tmp_path: Path, gunicorn: tuple[str, int]
) -> None:
    url, _ = gunicorn
    contract = _write(
        tmp_path / "c.toml", '[hooks]\nworker_kill = "echo no such pod >&2; exit 1"\n'
    )
    out = tmp_path / "run"
    done = _scanproof(
        "run", "--target", url, "--contract", str(contract), "--scenario",
        str(_kill_scenario(tmp_path)), "--duration", "5", "--out", str(out), timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    [kill] = [r for r in _fault_rows(out) if r["fault"] == "worker_kill"]
    assert not kill["landed"]
    assert "hook worker_kill exit 1" in str(kill["evidence"])
    assert "no such pod" in str(kill["evidence"])
    warnings = json.loads((out / "run.json").read_text())["warnings"]
    assert any("did not land" in w and "exit 1" in w for w in warnings), warnings
    assert "no such pod" in (out / "report.md").read_text()


# ------------------------------------------------------- not the reference: zoo jobs


@pytest.fixture
def jobs_apps(redis_url: str, tmp_path: Path) -> Iterator[list[str]]:
    """Two uvicorn processes of the zoo's correct jobs app sharing one Redis."""
    procs: list[subprocess.Popen[bytes]] = []
    urls: list[str] = []
    try:
        for i in range(2):
            port = free_port()
            log = tmp_path / f"jobs{i}.log"
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "uvicorn",
                            "tests.zoo.jobs:app",
                            "--port",
                            str(port),
                        ],
                        cwd=ROOT,
                        env={**os.environ, "REDIS_URL": redis_url, "WORKER_ID": str(i)},
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
            urls.append(f"http://127.0.0.1:{port}")
            _wait_http(urls[-1] + "/jobs/none", procs[-1], log)
        yield urls
    finally:
        for proc in procs:
            _stop(proc)


@pytest.mark.slow
def test_two_targets_of_another_service_pass_through_scanproofs_router(
    tmp_path: Path, jobs_apps: list[str]
) -> None:
    out = tmp_path / "run"
    args = [f"--target={u}" for u in jobs_apps]
    done = _scanproof(
        "gate", *args, "--contract", "tests/zoo/jobs.toml", "--scenario", "steady",
        "--time-scale", "0.01", "--scan-deadline-s", "6", "--duration", "4", "--max-rps", "40",
        "--out", str(out),
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    record = json.loads((out / "run.json").read_text())
    assert record["config"]["worker_attribution"] == "target URL"
    assert record["config"]["driver"]["max_rps"] == 40
    assert record["config"]["app"] == ""
    assert record["config"]["preset"] is None
    assert "per target URL (scanproof's router)" in (out / "report.md").read_text()
