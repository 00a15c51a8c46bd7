"""A service that never does the job never passes the gate (it is unknown, exit 3).

Apps from tests/apps/: one that answers 500 to everything, one that answers an
HTML page with 200, one that raises on every request, and an ``--app``
attribute that is not an ASGI app at all (``app = 42``). Each runs through a
short ``scanproof gate``; the exit code, the one line that says why, and the
recorded verdict are checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.processes]
ROOT = Path(__file__).resolve().parents[2]
SHORT = ["--scenario", "steady", "--retention-s", "5", "--scan-deadline-s", "5",
         "--duration", "3", "--workers", "2", "--quiet"]  # fmt: skip


def _gate(app: str, out: Path) -> subprocess.CompletedProcess[str]:
    # No meta endpoint: the judging window comes from the command line, and only the
    # scan endpoints are tried (a meta endpoint answering nonsense is refused earlier).
    contract = out.parent / "no-meta.toml"
    contract.write_text('meta_path = ""\n')
    argv = ["gate", "--app", app, *SHORT, "--contract", str(contract), "--out", str(out)]
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("app", "answers"),
    [
        ("tests.apps.dead:app", "(answers: HTTP 500 x "),
        ("tests.apps.dead:html", "(answers: HTTP 200 (not JSON) x "),
        ("tests.apps.dead:crash", "(answers: HTTP 500 (not JSON) x "),
    ],
)
def test_gate_of_an_app_that_accepts_no_scan_exits_3_saying_why(
    tmp_path: Path, app: str, answers: str
) -> None:
    out = tmp_path / "run"
    result = _gate(app, out)
    assert result.returncode == 3, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    said = [ln.strip() for ln in result.stdout.splitlines() if "no scan was accepted" in ln]
    assert len(said) == 1, result.stdout
    assert said[0].startswith(f"no scan was accepted by {app}: 0 of ")
    assert answers in said[0]
    assert "verdict: UNKNOWN" in result.stdout
    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["verdict"] == "unknown"
    assert not any(c["exercised"] for c in verdict["anomalies"].values())
    report = (out / "report.md").read_text()
    assert report.startswith(f"## UNKNOWN: no scan was accepted by {app}")
    assert "| exercised |" in report
    assert "no (expected)" in report


def test_an_app_attribute_that_is_not_asgi_never_passes(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = _gate("tests.apps.not_asgi:app", out)
    assert result.returncode in (2, 3), result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    named = [ln for ln in (result.stdout + result.stderr).splitlines() if "not_asgi:app" in ln]
    assert named, result.stdout + result.stderr
    assert "verdict: PASS" not in result.stdout
    if (out / "verdict.json").exists():  # refused before the run started, or judged unknown
        assert json.loads((out / "verdict.json").read_text())["verdict"] == "unknown"
