"""A locust user that records every request into scanproof's history.

:class:`RecordingUser` is a ``FastHttpUser`` (geventhttpclient, locust's fast
client) whose requests are written to the history schema (one invoke before,
one completion after, classified by :mod:`harness._answers`, the same table as
the scripted driver's) *and* reported to locust's statistics under a name per
kind, so locust's web UI, CSV and HTML reports keep working. A request is a
locust failure when scanproof counts it ``fail`` or ``info`` (no connection, a
5xx); a 404 or ``not_found`` is an answer, judged later by the checkers.

Where the history goes:

- one process (headless or web UI): ``RUN_DIR/locust-w0.jsonl``, flushed per line;
- ``--master`` / ``--worker``: each worker buffers its lines and sends them every
  0.5 s over locust's own messaging; the master writes ``RUN_DIR/locust-w<i>.jsonl``
  (no shared disk needed). When the test stops, the master asks every worker to
  stop its users and send what is left, and waits for all of them.

When locust quits, the master (or the single process) judges the merged history
with ``scanproof check`` unless ``SCANPROOF_LOCUST_JUDGE=0`` (``scanproof run
--driver locust`` judges it itself).

>>> class MyUser(RecordingUser):  # doctest: +SKIP
...     @task
...     def poll(self) -> None:
...         self.status("alice", "scan_123")
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any

import gevent
from gevent import GreenletExit
from locust import FastHttpUser, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness._answers import (
    DEFAULT_TIMEOUT_S,
    WORKER_HEADER,
    completion_from_answer,
    completion_from_exception,
    parse_body,
)
from harness._shard import Completion, EventRecorder, HistoryWriter, check_proc
from harness.run_record import RUN_JSON, new_record, write_record
from harness.schema import Kind
from scenarios.locust._workload import (
    STOPPED_MID_REQUEST,
    Settings,
    Timing,
    check_window,
    resolve_timing,
)
from scenarios.locust._workload import settings_from_env as _settings_from_env

log = logging.getLogger("scanproof.locust")

MSG_LINES = "scanproof_history"  # worker -> master: {"proc", "lines", "final"}
MSG_STOP = "scanproof_stop"  # master -> worker: stop your users and send the rest
FLUSH_EVERY_S = 0.5
FINAL_WAIT_S = 30.0


class _State:
    """This process's recording state (one per locust process)."""

    def __init__(self) -> None:
        self.settings: Settings = _settings_from_env(os.environ)
        self.recorder: EventRecorder | None = None
        self.buffer: list[str] = []
        self.timing: Timing | None = None
        self.meta: dict[str, Any] = {}
        self.shards: dict[str, IO[str]] = {}  # master: proc -> open shard
        self.final: set[str] = set()  # master: procs that sent their last lines
        self.lock = threading.Lock()  # gevent-patched: a greenlet lock


STATE = _State()
KNOWN_SCANS: list[tuple[str, str]] = []  # (tenant, scan id) of this process, for probes
_KNOWN_MAX = 500


def read_meta(host: str, settings: Settings) -> dict[str, Any]:
    """The app's meta endpoint as a dict; {} when it has none."""
    path = settings.contract.meta_path
    if not path:
        return {}
    try:
        with urllib.request.urlopen(host.rstrip("/") + path, timeout=DEFAULT_TIMEOUT_S) as r:
            body = json.loads(r.read())
    except (OSError, ValueError) as exc:
        log.warning("no meta at %s%s (%s); using SCANPROOF_* fallbacks", host, path, exc)
        return {}
    return body if isinstance(body, dict) else {}


def timing_for(host: str) -> Timing:
    """The run's real-time parameters, read once per process."""
    with STATE.lock:
        if STATE.timing is None:
            STATE.meta = read_meta(host, STATE.settings)
            STATE.timing = resolve_timing(STATE.meta, STATE.settings.fallback)
        return STATE.timing


def remember_scan(tenant: str, scan_id: str) -> None:
    KNOWN_SCANS.append((tenant, scan_id))
    if len(KNOWN_SCANS) > _KNOWN_MAX:
        del KNOWN_SCANS[: len(KNOWN_SCANS) - _KNOWN_MAX]


class RecordingUser(FastHttpUser):
    """A FastHttpUser whose requests are recorded; see the module docstring."""

    abstract = True
    # Retry policy, stated as the scripted client's: no retries, 5 s timeouts.
    max_retries = 0
    network_timeout = DEFAULT_TIMEOUT_S
    connection_timeout = DEFAULT_TIMEOUT_S

    def _record(
        self,
        kind: Kind,
        name: str,
        method: str,
        path: str,
        *,
        tenant: str,
        scan_id: str = "",
        filters: Mapping[str, Any] | None = None,
        fail: bool = False,
    ) -> Completion:
        recorder = STATE.recorder
        if recorder is None:
            raise RuntimeError("scanproof recording is not set up (locust init did not run)")
        c = STATE.settings.contract
        op = recorder.invoke(
            kind=kind,
            tenant=tenant,
            scan_id=scan_id,
            filters=json.dumps(filters, sort_keys=True) if filters else "",
        )
        try:
            with self.client.request(
                method,
                path,
                name=name,
                headers=c.auth(tenant),
                json=c.discover_body(filters, fail=fail) if method == "POST" else None,
                catch_response=True,
            ) as resp:
                error = getattr(resp, "error", None)
                if resp.status_code == 0 and error is not None:
                    done = completion_from_exception(error)
                else:
                    body, parse_error = parse_body(resp.content)
                    done = completion_from_answer(
                        kind,
                        c,
                        resp.status_code,
                        body,
                        worker_header=resp.headers.get(WORKER_HEADER),
                        error=parse_error,
                    )
                if done.outcome == "ok":
                    resp.success()
                else:
                    resp.failure(done.error or f"HTTP {done.http_status} ({done.outcome})")
        except GreenletExit:
            # the test stopped: locust counts nothing, the history says what we know
            recorder.complete(op, Completion(outcome="info", error=STOPPED_MID_REQUEST))
            raise
        except Exception as exc:
            recorder.complete(op, completion_from_exception(exc))
            raise
        recorder.complete(op, done)
        return done

    def discover(
        self, tenant: str, *, filters: Mapping[str, Any] | None = None, fail: bool = False
    ) -> str | None:
        """Start a scan as ``tenant``; its id, or None when the service did not accept it."""
        path = STATE.settings.contract.discover_path
        done = self._record(
            "discover", "discover", "POST", path, tenant=tenant, filters=filters, fail=fail
        )
        return done.scan_id or None

    def status(self, tenant: str, scan_id: str, *, name: str = "status") -> Completion:
        path = STATE.settings.contract.status_url(scan_id)
        return self._record("status", name, "GET", path, tenant=tenant, scan_id=scan_id)

    def results(self, tenant: str, scan_id: str, *, name: str = "results") -> Completion:
        path = STATE.settings.contract.results_url(scan_id)
        return self._record("results", name, "GET", path, tenant=tenant, scan_id=scan_id)


# --- where the lines go ------------------------------------------------------------------


def _proc(environment: Environment) -> str:
    runner = environment.runner
    index = getattr(runner, "worker_index", 0) if runner is not None else 0
    return check_proc(f"locust-w{index}")


def _write_run_record(environment: Environment) -> None:
    """A run.json with check settings, so the directory can be judged (plain locust)."""
    settings = STATE.settings
    if (settings.run_dir / RUN_JSON).exists() or not environment.host:
        return
    timing = timing_for(environment.host)
    record = new_record(
        config={
            "driver": "locust",
            "host": environment.host,
            "seed": settings.seed,
            "scenario": {"name": settings.workload.name, "workload": "locust users"},
        }
    )
    record["meta"] = STATE.meta
    record["config"]["time_scale"] = timing.time_scale
    record["check"] = check_window(timing, settings.workload.poll_interval * timing.time_scale)
    record["retry_policies"] = {
        "client": f"locust FastHttpUser: no retries; {DEFAULT_TIMEOUT_S} s timeouts"
    }
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    write_record(settings.run_dir, record)


def _send(environment: Environment, *, final: bool) -> None:
    runner = environment.runner
    if not isinstance(runner, WorkerRunner) or STATE.recorder is None:
        return
    with STATE.lock:
        lines, STATE.buffer[:] = "".join(STATE.buffer), []
    if lines or final:
        runner.send_message(
            MSG_LINES, {"proc": STATE.recorder.proc, "lines": lines, "final": final}
        )


def _flusher(environment: Environment) -> None:
    while True:  # ends with the process (the greenlet is killed on quit)
        gevent.sleep(FLUSH_EVERY_S)
        try:
            _send(environment, final=False)
        except Exception:  # a failing send is logged, never fatal to the load test
            log.exception("could not send history lines to the master")


def _on_lines(environment: Environment, msg: Any, **_: Any) -> None:
    data = msg.data
    proc = check_proc(str(data["proc"]))
    shard = STATE.shards.get(proc)
    if shard is None:
        STATE.settings.run_dir.mkdir(parents=True, exist_ok=True)
        shard = (STATE.settings.run_dir / f"{proc}.jsonl").open("a", encoding="utf-8")
        STATE.shards[proc] = shard
    if data["lines"]:
        shard.write(data["lines"])
        shard.flush()
    if data.get("final"):
        STATE.final.add(proc)


def _on_stop_request(environment: Environment, msg: Any, **_: Any) -> None:
    runner = environment.runner
    assert isinstance(runner, WorkerRunner)
    runner.stop()  # users killed; their last lines are in the buffer
    # locust's own final stats report only goes out on quit, after a 0.5 s window;
    # send it now so the master's request counts include every recorded request
    send_stats = getattr(runner, "_send_stats", None)
    if callable(send_stats):
        send_stats()
    _send(environment, final=True)


def _on_init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        runner.register_message(MSG_LINES, _on_lines)
    elif isinstance(runner, WorkerRunner):
        STATE.recorder = EventRecorder(proc=_proc(environment), sink=STATE.buffer.append)
        runner.register_message(MSG_STOP, _on_stop_request)
        gevent.spawn(_flusher, environment)
    else:
        STATE.recorder = HistoryWriter(STATE.settings.run_dir, proc=_proc(environment))


def _on_test_start(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        STATE.final.clear()
        _write_run_record(environment)
        log.info("scanproof: recording into %s", STATE.settings.run_dir)


def _on_test_stopping(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        return
    expected = len(runner.clients)
    for client_id in list(runner.clients):
        runner.send_message(MSG_STOP, None, client_id)
    deadline = time.monotonic() + FINAL_WAIT_S
    while len(STATE.final) < expected and time.monotonic() < deadline:
        gevent.sleep(0.05)
    if len(STATE.final) < expected:
        log.error(
            "scanproof: only %d of %d workers sent their last history lines within %.0f s",
            len(STATE.final),
            expected,
            FINAL_WAIT_S,
        )


def _on_test_stop(environment: Environment, **_: Any) -> None:
    _send(environment, final=False)


def _on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        _send(environment, final=False)
        return
    for shard in STATE.shards.values():
        shard.close()
    if isinstance(STATE.recorder, HistoryWriter):
        STATE.recorder.close()
    run_dir = STATE.settings.run_dir
    if STATE.settings.judge and (run_dir / RUN_JSON).exists():
        # the checkers need pandas; they run in their own process, away from gevent
        done = subprocess.run(
            [sys.executable, "-m", "harness", "check", str(run_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        print(done.stdout + done.stderr, file=sys.stderr, flush=True)


_LISTENERS: tuple[tuple[Any, Callable[..., None]], ...] = (
    (events.init, _on_init),
    (events.test_start, _on_test_start),
    (events.test_stopping, _on_test_stopping),
    (events.test_stop, _on_test_stop),
    (events.quitting, _on_quitting),
)
for _hook, _listener in _LISTENERS:
    _hook.add_listener(_listener)


def shard_paths(run_dir: Path) -> list[Path]:
    """The locust shards of a run directory."""
    return sorted(run_dir.glob("locust-w*.jsonl"))
