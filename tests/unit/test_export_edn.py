"""scanproof export --format edn: Jepsen-style ops, read back with a tiny EDN reader."""

from __future__ import annotations

import doctest
import re
from pathlib import Path
from typing import Any

import pytest

import harness.export.edn as edn_module
from harness.cli._main import main
from harness.history.outcomes import Completion
from harness.history.writer import HistoryWriter

_TOKEN = re.compile(r'\s*(?:([\[\]{}])|("(?:[^"\\]|\\.)*")|(:[^\s,\[\]{}]+)|([^\s,\[\]{}]+)|(,))')


class Kw(str):
    """An EDN keyword, read as its name."""


def read_edn(text: str) -> Any:
    """Enough EDN for one op line: maps, vectors, strings, keywords, ints, true/false/nil."""
    tokens = [m for m in _TOKEN.finditer(text) if m.group(0).strip() and m.group(5) is None]
    pos = 0

    def value() -> Any:
        nonlocal pos
        m = tokens[pos]
        pos += 1
        bracket, string, keyword, atom = m.group(1), m.group(2), m.group(3), m.group(4)
        if bracket in ("{", "["):
            items = []
            while tokens[pos].group(1) not in ("}", "]"):
                items.append(value())
            pos += 1
            if bracket == "[":
                return items
            assert len(items) % 2 == 0, text
            return dict(zip(items[::2], items[1::2], strict=True))
        if string is not None:
            return string[1:-1].encode().decode("unicode_escape")
        if keyword is not None:
            return Kw(keyword[1:])
        if atom in ("true", "false"):
            return atom == "true"
        if atom == "nil":
            return None
        return int(atom)  # anything else is a bug in the writer

    out = value()
    assert pos == len(tokens), f"trailing tokens in {text!r}"
    return out


def test_the_module_examples_hold() -> None:
    assert doctest.testmod(edn_module).failed == 0


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """Two overlapping polls, a lost connection (info), a refused discover (fail), and an
    invoke that never completed."""
    d = tmp_path / "run"
    d.mkdir()
    ok = {"outcome": "ok", "http_status": 200, "body_scan_ids": "scan_1", "worker": 1}
    with HistoryWriter(d, proc="driver-0") as w:
        a = w.invoke(kind="discover", tenant="alice")
        w.complete(a, Completion(outcome="ok", http_status=202, scan_id="scan_1", worker=0))
        p1 = w.invoke(kind="status", tenant="alice", scan_id="scan_1")
        p2 = w.invoke(kind="status", tenant='bob "q"', scan_id="scan_1")
        w.complete(p2, Completion(outcome="ok", http_status=404, body_status="not_found"))
        w.complete(
            p1, Completion(body_status="scanning", completed=3, total=14, has_progress=True, **ok)
        )  # type: ignore[arg-type]
        lost = w.invoke(kind="results", tenant="alice", scan_id="scan_1")
        w.complete(lost, Completion(outcome="info", error="ReadTimeout: timed out"))
        bad = w.invoke(kind="discover", tenant="carol")
        w.complete(bad, Completion(outcome="fail", http_status=503, error="HTTP 503"))
        w.invoke(kind="status", tenant="carol", scan_id="scan_9")  # never completed
    return d


def test_export_writes_one_jepsen_op_per_line_that_reads_back(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(run_dir), "--format", "edn"]) == 0
    assert "history.edn: 12 operations (edn)" in capsys.readouterr().out
    ops = [read_edn(line) for line in (run_dir / "history.edn").read_text().splitlines()]
    assert len(ops) == 12
    for i, op in enumerate(ops):
        assert set(op) == {"index", "type", "process", "time", "f", "value"}
        assert op["index"] == i
        assert op["type"] in ("invoke", "ok", "fail", "info")
        assert op["f"] in ("discover", "status", "results")
        assert isinstance(op["process"], int)
    times = [op["time"] for op in ops]
    assert times == sorted(times)
    assert times[0] >= 0
    # every invoke completes once, on the same process, which has one op outstanding
    outstanding: dict[int, str] = {}
    crashed: set[int] = set()
    for op in ops:
        p, oid = op["process"], op["value"]["op"]
        if op["type"] == "invoke":
            assert p not in outstanding
            assert p not in crashed
            outstanding[p] = oid
        else:
            assert outstanding.pop(p) == oid
            if op["type"] == "info":
                crashed.add(p)
    assert outstanding == {}
    by = {(op["value"]["op"], op["type"]): op for op in ops}
    done = [op for op in ops if op["type"] != "invoke"]
    assert [op["type"] for op in done] == ["ok", "ok", "ok", "info", "fail", "info"]
    scanning = next(op for op in done if op["value"].get("state") == "scanning")
    assert (scanning["value"]["progress"], scanning["value"]["http"]) == ([3, 14], 200)
    lost = next(op for op in done if op["value"].get("state") == "not_found")
    assert (lost["value"]["tenant"], lost["value"]["http"]) == ('bob "q"', 404)
    assert any(op["value"].get("error") == "ReadTimeout: timed out" for op in done)
    assert len(by) == 12


def test_export_to_stdout_and_a_bad_directory(
    tmp_path: Path, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["export", str(run_dir), "--out", "-"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12
    assert all(line.startswith("{:index ") for line in lines)
    assert main(["export", str(tmp_path / "nope")]) == 2
    assert "no such run directory" in capsys.readouterr().err
