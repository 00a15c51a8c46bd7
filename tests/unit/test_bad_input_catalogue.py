"""The bad-input catalogue: every mistake a user can make is refused before anything
starts, with exit 2 and one line naming the value and the fix, no traceback, and
nothing left behind (no run directory, no output directory, no report files).

Each case is a real invocation of the command line (``harness.cli.main``) from an
empty working directory holding only the files the case needs. None of them may
start a process: they are all refused before a cluster would exist.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from harness.cli import main
from harness.cluster.redis._local import port_holder
from harness.errors import InfrastructureError, UsageError
from harness.run.client import read_meta
from harness.run.runner import RunOptions, run_chaos
from scenarios.catalogue import get_scenario

NOT_UTF8 = b'name = "caf\xe9"\n'  # Latin-1, as an old editor saves it
CLAIMS = b'title = "t"\n[[claims]]\nid = "1"\nstatement = "s"\npredicate = "results_404 == 0"\n'
REPLAY = b'name = "r"\n[[steps]]\nrule = "discover"\ntenant = 0\npin = 0\n'
OLD_SHARD = b'{"v": 1, "event": "invoke", "op_id": "driver-0:0"}\n'
# an external Redis nobody listens on: every case must be refused before connecting
NOBODY = "redis://127.0.0.1:1/0"
REMOTE = "redis://10.255.255.1:6379/0"
KILL_THEN_FLUSH = b"""name = "kill-then-flush"
[[faults]]
at = 0.1
fault = "worker_kill"
[[faults]]
at = 0.5
fault = "flush"
"""


@dataclass(frozen=True)
class Case:
    """One invocation: argv, the files it needs, and the words its one line must hold."""

    argv: tuple[str, ...]
    message: str
    files: dict[str, bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)


def _case(
    id_: str,
    argv: str,
    message: str,
    files: dict[str, bytes] | None = None,
    env: dict[str, str] | None = None,
) -> object:
    return pytest.param(Case(tuple(argv.split()), message, files or {}, env or {}), id=id_)


RUN = "run --quiet --out out"
CASES = [
    # ---- numbers on the command line: finite, positive where a duration is meant (point 6)
    _case(
        "duration-nan",
        f"{RUN} --duration nan",
        "--duration nan: must be a finite number of seconds > 0",
    ),
    _case(
        "duration-inf",
        f"{RUN} --duration inf",
        "--duration inf: must be a finite number of seconds > 0",
    ),
    _case(
        "duration-zero",
        f"{RUN} --duration 0",
        "--duration 0: must be a finite number of seconds > 0",
    ),
    _case("duration-negative", f"{RUN} --duration -5", "--duration -5: must be a finite number"),
    _case("gate-duration-nan", "gate --quiet --out out --duration nan", "--duration nan: must be"),
    _case(
        "retention-negative",
        f"{RUN} --retention-s -1",
        "--retention-s -1: must be a finite number of seconds > 0",
    ),
    _case("retention-nan", f"{RUN} --retention-s nan", "--retention-s nan: must be a finite"),
    _case(
        "deadline-negative",
        f"{RUN} --scan-deadline-s -2",
        "--scan-deadline-s -2: must be a finite number of seconds > 0",
    ),
    _case("time-scale-nan", f"{RUN} --time-scale nan", "--time-scale nan: must be a finite number"),
    _case("time-scale-inf", f"{RUN} --time-scale inf", "--time-scale inf: must be a finite number"),
    _case(
        "spawn-rate-inf",
        f"{RUN} --driver locust --spawn-rate inf",
        "--spawn-rate inf: must be a finite number of users per second > 0",
    ),
    _case(
        "env-duration-nan",
        RUN,
        "--duration nan: must be a finite number",
        env={"SCANPROOF_DURATION": "nan"},
    ),
    _case(
        "explore-shrink-nan",
        "explore --out out --shrink-budget nan",
        "--shrink-budget nan: must be a finite",
    ),
    _case(
        "explore-lanes-too-many",
        "explore --out out --lanes 9",
        "--lanes 9: must be 1..4 (each lane is one cluster)",
    ),
    _case(
        "replay-lanes-zero",
        "replay shrunk.toml --lanes 0",
        "--lanes 0: must be a whole number >= 1",
    ),
    _case(
        "replay-lanes-too-many",
        "replay shrunk.toml --lanes 5",
        "--lanes 5: must be 1..4 (each lane is one cluster)",
    ),
    _case(
        "explore-retention-negative",
        "explore --out out --retention-s -1",
        "--retention-s -1: must be",
    ),
    _case(
        "matrix-alpha-nan",
        "matrix --quiet --out out --alpha nan",
        "--alpha nan: must be a finite number",
    ),
    _case(
        "matrix-duration-inf", "matrix --quiet --out out --duration inf", "--duration inf: must be"
    ),
    _case("gate-alpha-nan", "gate --alpha nan", "--alpha nan: must be a finite number"),
    _case("gate-alpha-two", "gate --alpha 2", "--alpha 2: must be a number between 0 and 1"),
    _case("compare-alpha-one", "compare a b --alpha 1", "--alpha 1: must be a number between 0"),
    # ---- whole numbers: one line, not argparse's usage block (point 9)
    _case("workers-abc", f"{RUN} --workers abc", "--workers abc: must be a whole number >= 1"),
    _case("workers-zero", f"{RUN} --workers 0", "--workers 0: must be a whole number >= 1"),
    _case("workers-negative", f"{RUN} --workers -1", "--workers -1: must be a whole number >= 1"),
    _case("up-workers-zero", "up --workers 0", "--workers 0: must be a whole number >= 1"),
    _case(
        "env-workers-abc",
        RUN,
        "--workers abc: must be a whole number",
        env={"SCANPROOF_WORKERS": "abc"},
    ),
    _case("seed-abc", f"{RUN} --seed abc", "--seed abc: must be a whole number >= 0"),
    _case("tenants-zero", f"{RUN} --tenants 0", "--tenants 0: must be a whole number >= 1"),
    _case("users-abc", f"{RUN} --users abc", "--users abc: must be a whole number >= 1"),
    _case(
        "replay-repeat-zero",
        "replay r.toml --repeat 0",
        "--repeat 0: must be 1..1000",
        files={"r.toml": REPLAY},
    ),
    _case(
        "matrix-seeds-zero",
        "matrix --quiet --out out --seeds 0",
        "--seeds 0: must be a whole number >= 1",
    ),
    _case("bad-choice", f"{RUN} --driver gatling", "--driver: invalid choice: 'gatling'"),
    _case(
        "unknown-option",
        f"{RUN} --no-such-option",
        "unrecognized arguments: --no-such-option; see scanproof run --help",
    ),
    # ---- --out (points 5 and 8)
    _case(
        "out-is-a-file",
        "run --quiet --out f",
        "--out f: it is a file, not a directory",
        files={"f": b"x"},
    ),
    _case(
        "out-under-a-file",
        "run --quiet --out f/run",
        "--out f/run: f is a file, not a directory",
        files={"f": b"x"},
    ),
    _case(
        "out-in-proc",
        "run --quiet --out /proc/scanproof-x",
        "--out /proc/scanproof-x: cannot create it",
    ),
    _case(
        "out-old-shards",
        "run --quiet --out old",
        "--out old is not empty (driver-0.jsonl) but holds no run",
        files={"old/driver-0.jsonl": OLD_SHARD},
    ),
    _case(
        "gate-out-old-shards",
        "gate --quiet --out old",
        "--out old is not empty (driver-0.jsonl)",
        files={"old/driver-0.jsonl": OLD_SHARD},
    ),
    _case(
        "out-holds-a-run",
        "run --quiet --out done",
        "--out done already holds a run",
        files={"done/run.json": b"{}"},
    ),
    _case(
        "matrix-out-not-empty",
        "matrix --quiet --out m",
        "--out m is not empty (notes.txt) but holds no matrix",
        files={"m/notes.txt": b"x"},
    ),
    _case(
        "claims-out-not-empty",
        "claims c.toml --quiet --out m",
        "--out m is not empty",
        files={"c.toml": CLAIMS, "m/x": b""},
    ),
    _case(
        "explore-out-not-empty",
        "explore --out m",
        "--out m already holds an exploration",
        files={"m/examples/ex-0.jsonl": OLD_SHARD},
    ),
    # ---- files that are not UTF-8 (point 5), one of each kind
    _case(
        "scenario-latin1",
        f"{RUN} --scenario s.toml",
        "s.toml: not UTF-8 text (byte 0xe9",
        files={"s.toml": NOT_UTF8},
    ),
    _case(
        "contract-latin1",
        f"{RUN} --contract c.toml",
        "--contract c.toml: not UTF-8 text",
        files={"c.toml": NOT_UTF8},
    ),
    _case(
        "thresholds-latin1",
        "gate --quiet --out out --thresholds t.toml",
        "--thresholds t.toml: not UTF-8 text",
        files={"t.toml": NOT_UTF8},
    ),
    _case(
        "pyproject-latin1",
        "gate --quiet --out out",
        "pyproject.toml: not UTF-8 text",
        files={"pyproject.toml": NOT_UTF8},
    ),
    _case(
        "claims-latin1",
        "claims c.toml --quiet --out out",
        "c.toml: not UTF-8 text",
        files={"c.toml": NOT_UTF8},
    ),
    _case(
        "replay-latin1",
        "replay r.toml --check",
        "r.toml: not UTF-8 text",
        files={"r.toml": NOT_UTF8},
    ),
    _case(
        "validate-latin1",
        "validate --thresholds t.toml",
        f"t.toml: not UTF-8 text (byte 0xe9 at offset {NOT_UTF8.index(0xE9)}); "
        "save the file as UTF-8",
        files={"t.toml": NOT_UTF8},
    ),
    # ---- numbers in files: TOML's nan and inf (point 6)
    _case(
        "scenario-duration-nan",
        "validate s.toml",
        "s.toml: field 'duration' = nan: must be a finite number",
        files={"s.toml": b'name = "x"\nduration = nan\n'},
    ),
    _case(
        "scenario-poll-inf",
        f"{RUN} --scenario s.toml",
        "s.toml: field 'poll_interval' = inf: must be a finite number",
        files={"s.toml": b'name = "x"\npoll_interval = inf\n'},
    ),
    _case(
        "scenario-fault-duration-inf",
        "validate s.toml",
        "faults[0]: field 'duration' = inf",
        files={
            "s.toml": b'name = "x"\n[[faults]]\nat = 0.5\nfault = "redis_stall"\nduration = inf\n'
        },
    ),
    _case(
        "scenario-recovery-negative",
        "validate s.toml",
        "recovery=-1.0 must be a finite number of service seconds >= 0",
        files={"s.toml": b'name = "x"\nrecovery = -1\n'},
    ),
    _case(
        "contract-retention-inf",
        "validate --contract c.toml",
        "contract retention_s inf: must be a finite number of seconds",
        files={"c.toml": b"retention_s = inf\n"},
    ),
    _case(
        "replay-seconds-nan",
        "replay r.toml --check",
        "field 'seconds' = nan: must be a finite number",
        files={"r.toml": b'[[steps]]\nrule = "wait"\nseconds = nan\n'},
    ),
    _case(
        "claims-duration-inf",
        "claims c.toml --quiet --out out",
        "duration = inf must be a finite number > 0 seconds",
        files={"c.toml": b"duration = inf\n" + CLAIMS},
    ),
    # ---- Redis URLs (points 5 and 9)
    _case(
        "redis-port-not-a-number",
        "up --redis redis://host:notaport/0",
        "--redis redis://host:notaport/0: port 'notaport' must be a number 1..65535",
    ),
    _case(
        "redis-port-too-big",
        f"{RUN} --redis redis://host:99999/0",
        "port '99999' must be a number 1..65535",
    ),
    _case(
        "redis-db-not-a-number",
        f"{RUN} --redis redis://host:6379/zero",
        "DB index 'zero' must be a whole number >= 0",
    ),
    _case(
        "redis-db-negative",
        "up --redis redis://host:6379/-1",
        "DB index '-1' must be a whole number >= 0",
    ),
    _case(
        "redis-scheme",
        f"{RUN} --redis http://host:6379",
        "--redis 'http://host:6379': unknown backend; use auto, embedded, server or redis://",
    ),
    _case(
        "matrix-redis-port",
        "matrix --quiet --out out --redis redis://h:x/0",
        "port 'x' must be a number",
    ),
    _case(
        "explore-external-redis",
        f"explore --out out --redis {NOBODY}",
        "explore flushes Redis before every example",
    ),
    # ---- the external-Redis opt-ins against the whole schedule, before it starts (point 7)
    _case(
        "opt-in-destructive",
        f"{RUN} --redis {NOBODY} --scenario expire",
        "fault 'expire_keys' at 0.3 of the active phase: refusing destructive action "
        "'expire' on external Redis redis://127.0.0.1:1/0; pass --allow-destructive",
    ),
    _case(
        "opt-in-after-a-kill",
        f"{RUN} --redis {NOBODY} --scenario k.toml",
        "fault 'flush' at 0.5 of the active phase: refusing destructive action 'flush'",
        files={"k.toml": KILL_THEN_FLUSH},
    ),
    _case(
        "gate-opt-in-destructive",
        f"gate --quiet --out out --redis {NOBODY} --scenario k.toml",
        "pass --allow-destructive",
        files={"k.toml": KILL_THEN_FLUSH},
    ),
    _case(
        "opt-in-remote",
        f"{RUN} --redis {REMOTE} --allow-destructive --scenario expire",
        "refusing fault 'expire' on non-loopback Redis host '10.255.255.1'; "
        "pass --allow-remote-faults",
    ),
    _case(
        "unsupported-fault",
        f"{RUN} --redis {NOBODY} --allow-destructive --scenario redis-outage",
        "fault 'redis_stall' needs Redis support for 'stall', which only a Redis scanproof "
        "starts has (--redis server), not --redis redis://127.0.0.1:1/0",
    ),
    # ---- report on a directory that is not a run (point 9)
    _case(
        "report-not-a-run",
        "report notes",
        "notes: not a run directory (no run.json, verdict.json or history shards *.jsonl)",
        files={"notes/todo.txt": b"x"},
    ),
]


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(root.rglob("*"))
    }


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_refused_up_front_in_one_line(
    case: Case,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a default run directory would land here
    for name in [n for n in os.environ if n.startswith("SCANPROOF_")]:
        monkeypatch.delenv(name)
    for name, value in case.env.items():
        monkeypatch.setenv(name, value)
    for name, data in case.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    before = _tree(tmp_path)
    code = main(list(case.argv))
    out, err = capsys.readouterr()
    assert code == 2, err
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1, err
    verb = case.argv[0]
    assert err.startswith(f"scanproof {verb}: "), err
    assert case.message in err, err
    assert _tree(tmp_path) == before  # no run directory, no report, no probe left behind


def test_the_installed_command_prints_one_line_not_a_usage_block(tmp_path: Path) -> None:
    """What a user sees from a shell for ``--workers abc``: argparse's 11-line usage
    block is replaced by the value and the fix."""
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--workers", "abc"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr == "scanproof run: --workers abc: must be a whole number >= 1\n"
    assert list(tmp_path.iterdir()) == []


def test_an_old_shard_is_left_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Point 8: a directory of old history shards is refused, not appended to."""
    monkeypatch.chdir(tmp_path)
    shard = tmp_path / "old" / "driver-0.jsonl"
    shard.parent.mkdir()
    shard.write_bytes(OLD_SHARD)
    assert main(["run", "--quiet", "--out", "old", "--duration", "1"]) == 2
    assert "pass a new or empty directory" in capsys.readouterr().err
    assert shard.read_bytes() == OLD_SHARD
    assert sorted(p.name for p in shard.parent.iterdir()) == ["driver-0.jsonl"]


# --------------------------------------------------------- the library refuses the same
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"workers": 0}, "--workers 0: must be a whole number >= 1"),
        ({"tenants": -1}, "--tenants -1: must be a whole number >= 1"),
        ({"duration_s": math.nan}, "--duration nan: must be a finite number of seconds > 0"),
        ({"duration_s": math.inf}, "--duration inf: must be a finite number of seconds > 0"),
        ({"retention_s": -1.0}, "--retention-s -1: must be a finite number of seconds > 0"),
        ({"scan_deadline_s": 0.0}, "--scan-deadline-s 0: must be a finite number"),
        ({"spawn_rate": math.inf}, "--spawn-rate inf: must be a finite number of users"),
        (
            {"redis": NOBODY, "scenario": get_scenario("expire")},
            "fault 'expire_keys' at 0.3 of the active phase: refusing destructive action",
        ),
    ],
)
def test_run_chaos_refuses_before_a_cluster_starts(
    change: dict[str, object], message: str, tmp_path: Path
) -> None:
    """``--workers 0`` names --workers (not "scenario mixed") and starts nothing."""
    kwargs: dict[str, object] = {"scenario": get_scenario("mixed"), "out": tmp_path / "run"}
    options = RunOptions(**(kwargs | change))  # type: ignore[arg-type]
    with pytest.raises(UsageError) as info:
        run_chaos(options)
    assert message in str(info.value)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ infrastructure words
def _answer(monkeypatch: pytest.MonkeyPatch, response: httpx.Response) -> None:
    def get(url: str, **_: object) -> httpx.Response:
        response.request = httpx.Request("GET", url)
        return response

    monkeypatch.setattr(httpx, "get", get)


def test_a_meta_endpoint_answering_html_names_the_endpoint_and_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _answer(monkeypatch, httpx.Response(200, html="<html><body>It works!</body></html>"))
    with pytest.raises(InfrastructureError) as info:
        read_meta("http://127.0.0.1:9", "/_meta")
    assert str(info.value) == (
        "the app's meta endpoint http://127.0.0.1:9/_meta answered 200 (text/html; "
        "charset=utf-8) '<html><body>It works!</body></html>', not a JSON object; set "
        'meta_path = "" in the --contract file if the app has no meta endpoint'
    )


def test_a_meta_endpoint_answering_a_list_is_not_a_meta(monkeypatch: pytest.MonkeyPatch) -> None:
    _answer(monkeypatch, httpx.Response(200, json=[1, 2]))
    with pytest.raises(InfrastructureError, match=r"answered 200 \(application/json\) '\[1,2\]'"):
        read_meta("http://127.0.0.1:9", "/_meta")


def test_a_missing_meta_endpoint_is_no_meta(monkeypatch: pytest.MonkeyPatch) -> None:
    _answer(monkeypatch, httpx.Response(404, html="<h1>Not Found</h1>"))
    assert read_meta("http://127.0.0.1:9", "/_meta") == {}


def test_the_holder_of_a_taken_port_is_named() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_holder(port).startswith(f"pid {os.getpid()} (")
    assert port_holder(port) == ""
