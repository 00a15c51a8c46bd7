"""A locust user that records every request into scanproof's history.

:class:`RecordingUser` is a ``FastHttpUser`` (geventhttpclient, locust's fast
client) whose requests are written to the history schema (one invoke before,
one completion after, classified by :mod:`harness.history.outcomes`, the same table as
the scripted driver's) *and* reported to locust's statistics under a name per
kind, so locust's web UI, CSV and HTML reports keep working. A request is a
locust failure when scanproof counts it ``fail`` or ``info`` (no connection, a
5xx), or when its answer shows an anomaly the user can see at once
(:mod:`scenarios.locust._live`): then the failure's message starts with the
anomaly class, e.g. ``wrong_scan: the answer carried another scan's id``. Any
other 404 or ``not_found`` is an answer, judged later by the checkers.

What the users saw so far is shown live: a "scanproof anomalies" tab in the web
UI (locust's ``extended_tabs`` / ``extended_stats``), a ``scanproof live:`` line
in the console every 5 s, and ``$SCANPROOF_LIVE_FILE`` (JSON, every second) for
``scanproof run --driver locust``. Workers send their counts to the master with
their statistics (``report_to_master``).

Where the history goes:

- one process (headless or web UI): ``RUN_DIR/locust-w0.jsonl``, flushed per line;
- ``--master`` / ``--worker``: each worker buffers its lines and sends them every
  0.5 s over locust's own messaging; the master writes ``RUN_DIR/locust-w<i>.jsonl``
  (no shared disk needed). When the test stops, the master asks every worker to
  stop its users and send what is left, and waits for all of them but those locust
  marked missing (a worker host that died: its history ends at its last flush,
  and its requests then in flight have no completion, judged ``info``).

A master sends its settings (seed, workload, contract, time values, keep-alive:
:func:`scenarios.locust._workload.settings_message`) to every worker that
connects, so the workers' own ``SCANPROOF_*`` variables do not matter. With
``SCANPROOF_KEEP_ALIVE=0`` every request says ``Connection: close``: behind a
balancer of connections (one gunicorn master, a kernel's ``SO_REUSEPORT``) each
request may land on another worker, as it does behind a per-request balancer.

When locust quits, the master (or the single process) judges the merged history
with ``scanproof check`` unless ``SCANPROOF_LOCUST_JUDGE=0`` (``scanproof run
--driver locust`` judges it itself), and locust exits by the verdict: 0 pass,
1 fail, 3 unknown (``environment.process_exit_code``).

>>> class MyUser(RecordingUser):  # doctest: +SKIP
...     @task
...     def poll(self) -> None:
...         self.status("alice", "scan_123")
"""

from __future__ import annotations

import contextlib
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

import configargparse
import gevent
from gevent import GreenletExit
from locust import FastHttpUser, events
from locust.env import Environment
from locust.runners import STATE_MISSING, MasterRunner, WorkerRunner

from harness.errors import UsageError
from harness.history.outcomes import (
    DEFAULT_TIMEOUT_S,
    completion_from_answer,
    completion_from_exception,
    parse_body,
)
from harness.history.record import (
    RUN_JSON,
    CheckSettings,
    RunConfig,
    RunRecord,
    new_record,
    now_iso,
    write_record,
)
from harness.history.schema import Kind
from harness.history.writer import Completion, EventRecorder, HistoryWriter, check_proc
from scenarios.locust._live import MEANING, LiveTally, Seen
from scenarios.locust._live import merge as merge_live
from scenarios.locust._live import summary_line as live_summary
from scenarios.locust._workload import (
    STOPPED_MID_REQUEST,
    Settings,
    Timing,
    adopt_settings,
    contract_mapping,
    resolve_timing,
    settings_message,
)
from scenarios.locust._workload import settings_from_env as _settings_from_env

log = logging.getLogger("scanproof.locust")

MSG_LINES = "scanproof_history"  # worker -> master: {"proc", "lines", "final"}
MSG_STOP = "scanproof_stop"  # master -> worker: stop your users and send the rest
SETTINGS_OPTION = "scanproof_settings"  # master -> workers, as a locust option (JSON)
FLUSH_EVERY_S = 0.5
FINAL_WAIT_S = 30.0
MSG_LIVE = "scanproof_live"  # report_to_master key: a worker's live tally
LIVE_TAB = "scanproof"  # the web UI tab's key
CONSOLE_EVERY_S = 5.0  # the live line in the console / log
LIVE_FILE_EVERY_S = 1.0  # SCANPROOF_LIVE_FILE, for scanproof run --driver locust


class _State:
    """This process's recording state (one per locust process)."""

    def __init__(self) -> None:
        try:
            self.settings: Settings = _settings_from_env(os.environ)
        except UsageError as exc:  # bad input: one line and exit 2, as scanproof's verbs
            print(f"scanproof: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None
        self.refused = ""  # the master's settings were refused at test start: exit 2
        self.recorder: EventRecorder | None = None
        self.buffer: list[str] = []
        self.timing: Timing | None = None
        self.meta: dict[str, Any] = {}
        self.record: RunRecord | None = None  # run.json, when this process wrote it
        self.shards: dict[str, IO[str]] = {}  # master: proc -> open shard
        self.final: set[str] = set()  # master: procs that sent their last lines
        self.lock = threading.Lock()  # gevent-patched: a greenlet lock
        self.tally: LiveTally | None = None  # what this process's users saw so far
        self.worker_live: dict[str, dict[str, Any]] = {}  # master: client id -> tally
        self.live_file = os.environ.get("SCANPROOF_LIVE_FILE", "")
        self.started = 0.0  # time.monotonic() at test start


STATE = _State()
KNOWN_SCANS: list[tuple[str, str]] = []  # (tenant, scan id) of this process, for probes
_KNOWN_MAX = 500


def read_meta(host: str, settings: Settings) -> dict[str, Any]:
    """The app's meta endpoint as a dict; {} when it has none, or (with a warning in the
    log that names the endpoint and the fix) when it answers anything but a JSON object."""
    path = settings.contract.meta_path
    if not path:
        return {}
    url = host.rstrip("/") + path
    try:
        with urllib.request.urlopen(url, timeout=DEFAULT_TIMEOUT_S) as r:
            raw, status = r.read(), r.status
            kind = r.headers.get("content-type", "no content type")
    except OSError as exc:
        log.warning("no meta at %s (%s); using SCANPROOF_* fallbacks", url, exc)
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        # the same words as harness.run.client.read_meta, which stops a scripted run here
        log.warning(
            "the app's meta endpoint %s answered %s (%s) %r, not a JSON object; set "
            'meta_path = "" in the --contract file if the app has no meta endpoint; '
            "using SCANPROOF_* fallbacks",
            url,
            status,
            kind,
            raw[:60].decode(errors="replace"),
        )
        return {}
    return body


def timing_for(host: str) -> Timing:
    """The run's real-time parameters, read once per process."""
    if STATE.refused:  # the run is stopping with exit 2: no user may start (and
        raise GreenletExit  # locust ends a user on GreenletExit without a traceback)
    with STATE.lock:
        if STATE.timing is None:
            STATE.meta = read_meta(host, STATE.settings)
            settings = STATE.settings
            STATE.timing = resolve_timing(
                STATE.meta,
                settings.fallback,
                contract=settings.contract,
                poll_interval_s=settings.workload.poll_interval,
            )
            STATE.tally = LiveTally(
                retention_s=STATE.timing.window.retention_s,
                scan_deadline_s=STATE.timing.window.scan_deadline_s,
                progress=bool(settings.contract.progress_field),
            )
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
        tally = STATE.tally or _tally_for(self)
        headers = c.auth(tenant)
        if not STATE.settings.keep_alive:
            headers = {**headers, "Connection": "close"}
        asked = time.monotonic()
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
                headers=headers,
                json=c.discover_json(filters, tenant=tenant, fail=fail)
                if kind == "discover"
                else None,
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
                        headers=resp.headers,
                        error=parse_error,
                    )
                anomaly = _live(tally, kind, tenant, scan_id, done, asked=asked)
                if anomaly is not None:
                    # an answer the user can see is wrong: a locust failure named by its class
                    resp.failure(f"{anomaly}: {MEANING[anomaly]}")
                elif done.outcome == "ok":
                    resp.success()
                else:
                    resp.failure(done.error or f"HTTP {done.http_status} ({done.outcome})")
        except GreenletExit:
            # the test stopped: locust counts nothing, the history says what we know
            recorder.complete(op, Completion(outcome="info", error=STOPPED_MID_REQUEST))
            raise
        except Exception as exc:
            recorder.complete(op, completion_from_exception(exc))
            tally.error()
            raise
        recorder.complete(op, done)
        return done

    def discover(
        self, tenant: str, *, filters: Mapping[str, Any] | None = None, fail: bool = False
    ) -> str | None:
        """Start a scan as ``tenant``; its id, or None when the service did not accept it."""
        c = STATE.settings.contract
        done = self._record(
            "discover",
            "discover",
            c.discover_method,
            c.discover_path,
            tenant=tenant,
            filters=filters,
            fail=fail,
        )
        return done.scan_id or None

    def status(self, tenant: str, scan_id: str, *, name: str = "status") -> Completion:
        path = STATE.settings.contract.status_url(scan_id)
        return self._record("status", name, "GET", path, tenant=tenant, scan_id=scan_id)

    def results(self, tenant: str, scan_id: str, *, name: str = "results") -> Completion:
        path = STATE.settings.contract.results_url(scan_id)
        return self._record("results", name, "GET", path, tenant=tenant, scan_id=scan_id)


def _tally_for(user: RecordingUser) -> LiveTally:
    """The process's tally; users that never called :func:`timing_for` set it up here."""
    timing_for(user.host or user.environment.host or "")
    assert STATE.tally is not None
    return STATE.tally


def _live(
    tally: LiveTally, kind: Kind, tenant: str, scan_id: str, done: Completion, *, asked: float
) -> str | None:
    """Count one completion in the live tally; the anomaly class it shows, or None."""
    if done.outcome != "ok":
        tally.error()
        return None
    now = time.monotonic()
    if kind == "discover" and done.scan_id:
        tally.accepted(tenant, done.scan_id, asked=asked, now=now)
    return tally.observe(kind, tenant, scan_id, Seen.of(done), asked=asked, now=now)


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
    window = timing.window
    record = new_record(
        config=RunConfig(
            driver={"name": "locust"},
            host=environment.host,
            seed=settings.seed,
            scenario={"name": settings.workload.name, "workload": "locust users"},
            contract=contract_mapping(settings.contract),
            contract_file=settings.contract_file,
            time_scale=timing.time_scale,
        )
    ).but(
        meta=STATE.meta,
        check=CheckSettings(
            retention_s=window.retention_s,
            scan_deadline_s=window.scan_deadline_s,
            sources=window.to_json()["sources"],
        ),
        retry_policies={
            "client": f"locust FastHttpUser: no retries; {DEFAULT_TIMEOUT_S} s timeouts"
        },
    )
    settings.run_dir.mkdir(parents=True, exist_ok=True)
    write_record(settings.run_dir, record)
    STATE.record = record


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


def _on_parser(parser: Any, **_: Any) -> None:
    # locust sends a master's custom options with every spawn message, before the
    # worker's test_start: the way the master's settings reach its workers
    parser.add_argument(
        f"--{SETTINGS_OPTION.replace('_', '-')}",
        default="",
        include_in_web_ui=False,
        help=configargparse.SUPPRESS,
    )


def _adopt_master_settings(environment: Environment) -> None:
    """Worker, at test start: the master's settings, when it sent them."""
    options = environment.parsed_options
    raw = getattr(options, SETTINGS_OPTION, "") if options is not None else ""
    if not raw:
        log.warning("scanproof: the master sent no settings; using this worker's SCANPROOF_*")
        return
    with STATE.lock:
        STATE.settings = adopt_settings(STATE.settings, json.loads(raw))
        STATE.timing = None  # resolved again, with the master's values, by the first user


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


# --- what the users saw so far: console, web UI, live file ----------------------------


def live_snapshot() -> dict[str, Any]:
    """This process's tally plus every worker's last report (on a master)."""
    own = [STATE.tally.snapshot()] if STATE.tally is not None else []
    return merge_live(own + list(STATE.worker_live.values()))


def _on_report_to_master(client_id: str, data: dict[str, Any], **_: Any) -> None:
    if STATE.tally is not None:
        data[MSG_LIVE] = STATE.tally.snapshot()


def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    if MSG_LIVE in data:
        STATE.worker_live[client_id] = data[MSG_LIVE]


def live_rows(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """The web UI tab's rows: one per anomaly class seen, then the answers counted."""
    ops = int(snapshot.get("ops", 0))
    rows = [
        {
            "name": cls,
            "count": n,
            "share": f"{100 * n / ops:.1f}%" if ops else "",
            "meaning": MEANING[cls],
        }
        for cls, n in snapshot.get("anomalies", {}).items()
    ]
    rows.append(
        {
            "name": "(answers seen)",
            "count": ops,
            "share": "",
            "meaning": f"{snapshot.get('errors', 0)} got no answer (fail/info); the "
            "verdict at the end judges the whole history",
        }
    )
    return rows


def _extend_web_ui(environment: Environment) -> None:
    """A "scanproof" tab in locust's web UI with the live anomaly counts."""
    from flask import Response, request  # locust's web UI is Flask; only loaded with it

    web_ui = environment.web_ui
    assert web_ui is not None
    web_ui.template_args["extended_tabs"] = [{"title": "scanproof anomalies", "key": LIVE_TAB}]
    web_ui.template_args["extended_tables"] = [
        {
            "key": LIVE_TAB,
            "structure": [
                {"key": "name", "title": "anomaly class"},
                {"key": "count", "title": "answers (live)"},
                {"key": "share", "title": "share of answers"},
                {"key": "meaning", "title": "what the user saw"},
            ],
        }
    ]

    def _add_live(response: Response) -> Response:
        if request.path != "/stats/requests" or not response.is_json:
            return response
        body = response.get_json()
        extended = [e for e in body.get("extended_stats", []) if e.get("key") != LIVE_TAB]
        extended.append({"key": LIVE_TAB, "data": live_rows(live_snapshot())})
        response.set_data(json.dumps({**body, "extended_stats": extended}))
        return response

    app: Any = web_ui.app
    app.after_request(_add_live)


def _console(environment: Environment) -> None:
    """Every few seconds while users run: the live anomaly line in the console (and log)."""
    last = ""
    while True:  # ends with the process
        gevent.sleep(CONSOLE_EVERY_S)
        runner = environment.runner
        if runner is None or runner.state not in ("spawning", "running"):
            continue
        line = live_summary(live_snapshot())
        if line != last:
            log.info("scanproof live: %s", line)
            last = line


def _write_live_file(environment: Environment, path: Path) -> None:
    """The live counts for ``scanproof run --driver locust`` (replaced whole, never torn)."""
    runner = environment.runner
    data = {
        **live_snapshot(),
        "users": runner.user_count if runner is not None else 0,
        "elapsed_s": round(time.monotonic() - STATE.started, 1),
    }
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, path)


def _live_file_writer(environment: Environment) -> None:
    path = Path(STATE.live_file)
    while True:  # ends with the process
        gevent.sleep(LIVE_FILE_EVERY_S)
        if STATE.started:
            try:
                _write_live_file(environment, path)
            except OSError:
                log.exception("could not write the live counts to %s", path)


def _on_init(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    hooks: Any = environment.events
    if isinstance(runner, MasterRunner):
        runner.register_message(MSG_LINES, _on_lines)
        hooks.worker_report.add_listener(_on_worker_report)
        if environment.parsed_options is not None:
            settings = json.dumps(settings_message(STATE.settings))
            setattr(environment.parsed_options, SETTINGS_OPTION, settings)
    elif isinstance(runner, WorkerRunner):
        STATE.recorder = EventRecorder(proc=_proc(environment), sink=STATE.buffer.append)
        runner.register_message(MSG_STOP, _on_stop_request)
        hooks.report_to_master.add_listener(_on_report_to_master)
        gevent.spawn(_flusher, environment)
    else:
        STATE.recorder = HistoryWriter(STATE.settings.run_dir, proc=_proc(environment))
    if not isinstance(runner, WorkerRunner):
        gevent.spawn(_console, environment)
        if STATE.live_file:
            gevent.spawn(_live_file_writer, environment)
        if environment.web_ui is not None:
            _extend_web_ui(environment)


def _on_test_start(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        _adopt_master_settings(environment)
    else:
        STATE.final.clear()
        STATE.started = time.monotonic()
        try:
            _write_run_record(environment)
        except UsageError as exc:
            # e.g. an app with no meta endpoint and no SCANPROOF_SCAN_DEADLINE_S: nothing
            # can be judged, so stop at once with scanproof's exit code for bad input
            STATE.refused = str(exc)
            log.error("scanproof: %s", exc)
            environment.process_exit_code = 2
            if environment.runner is not None:
                gevent.spawn(environment.runner.quit)
            return
        log.info("scanproof: recording into %s", STATE.settings.run_dir)


def _on_test_stopping(environment: Environment, **_: Any) -> None:
    runner = environment.runner
    if not isinstance(runner, MasterRunner):
        return
    for client_id in list(runner.clients):
        runner.send_message(MSG_STOP, None, client_id)
    deadline = time.monotonic() + FINAL_WAIT_S
    # a worker that dies meanwhile is marked missing within a few heartbeats: stop
    # waiting for it then, rather than for the whole FINAL_WAIT_S
    while len(STATE.final) < _alive(runner) and time.monotonic() < deadline:
        gevent.sleep(0.05)
    if len(STATE.final) < _alive(runner):
        log.error(
            "scanproof: only %d of %d workers sent their last history lines within %.0f s",
            len(STATE.final),
            _alive(runner),
            FINAL_WAIT_S,
        )
    lost = [i for i, c in runner.clients.items() if c.state == STATE_MISSING]
    if lost:
        log.warning(
            "scanproof: %d locust worker(s) went missing (%s): their history ends at "
            "their last flush; requests they had in flight are judged info",
            len(lost),
            ", ".join(lost),
        )


def _alive(runner: MasterRunner) -> int:
    """Workers the master still hears from (not marked missing)."""
    return sum(1 for c in runner.clients.values() if c.state != STATE_MISSING)


def _on_test_stop(environment: Environment, **_: Any) -> None:
    _send(environment, final=False)


def _on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        _send(environment, final=False)
        return
    if environment.runner is not None:
        # On SIGTERM locust fires quitting before it stops the users: stop them first, or a
        # user stopped mid-request meets a closed history file ("Bad file descriptor"),
        # locust keeps it running and its shutdown waits for the whole run time.
        environment.runner.stop()
    for shard in STATE.shards.values():
        shard.close()
    if isinstance(STATE.recorder, HistoryWriter):
        STATE.recorder.close()
    run_dir = STATE.settings.run_dir
    if STATE.record is not None:  # locust ended its run: the history is whole
        write_record(run_dir, STATE.record.but(status="complete", ended_at=now_iso()))
    if STATE.live_file and STATE.started:
        with contextlib.suppress(OSError):
            _write_live_file(environment, Path(STATE.live_file))
    print(f"scanproof live, at the end: {live_summary(live_snapshot())}", file=sys.stderr)
    if STATE.refused:
        print(f"scanproof: refused: {STATE.refused}", file=sys.stderr, flush=True)
        environment.process_exit_code = 2
        return
    if STATE.settings.judge and (run_dir / RUN_JSON).exists():
        # the checkers need pandas; they run in their own process, away from gevent
        done = subprocess.run(
            [sys.executable, "-m", "harness", "check", str(run_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        print(done.stdout + done.stderr, file=sys.stderr, flush=True)
        # locust exits by scanproof's verdict: 0 pass, 1 fail, 3 unknown (a check that
        # could not judge exits 2 or 3: never 0)
        environment.process_exit_code = done.returncode


_LISTENERS: tuple[tuple[Any, Callable[..., None]], ...] = (
    (events.init_command_line_parser, _on_parser),
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
