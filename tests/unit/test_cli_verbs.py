"""Verbs that need no cluster: validate, check on bad input, thresholds, flags."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli._options import parse_flags
from harness.errors import UsageError
from harness.judging.thresholds import Limit, load_thresholds


def _scanproof(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=cwd,
    )


def test_validate_accepts_a_good_scenario(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('name = "mine"\n[[faults]]\nat = 0.5\nfault = "worker_kill"\n')
    result = _scanproof("validate", str(f))
    assert result.returncode == 0, result.stderr
    assert "a valid scenario 'mine'" in result.stdout
    assert "1 faults" in result.stdout


def test_validate_names_the_bad_field_in_one_line(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text('name = "mine"\n[[faults]]\nat = 0.5\nfault = "worker_kil"\n')
    result = _scanproof("validate", str(f))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "faults[0]" in lines[0]
    assert "'worker_kil'" in lines[0]
    assert "Traceback" not in result.stderr


def test_validate_contract(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text('status_path = "/s"\n')
    result = _scanproof("validate", "--contract", str(f))
    assert result.returncode == 2
    assert "must contain {scan_id}" in result.stderr


def test_check_of_a_missing_run_dir_is_usage_error(tmp_path: Path) -> None:
    result = _scanproof("check", str(tmp_path / "nope"))
    assert result.returncode == 2
    assert "no run.json" in result.stderr


def test_unknown_scenario_is_one_line_exit_2(tmp_path: Path) -> None:
    result = _scanproof("run", "--scenario", "chaos-monkey", "--out", str(tmp_path / "r"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "'chaos-monkey'" in result.stderr
    assert "valid: steady" in result.stderr


def test_thresholds_from_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.scanproof.gate]\nstatus_not_found = 3\nzero_progress = 0\n"
    )
    monkeypatch.chdir(tmp_path)
    assert load_thresholds(None) == {"status_not_found": Limit(count=3), "zero_progress": Limit()}


def test_thresholds_file_errors(tmp_path: Path) -> None:
    f = tmp_path / "t.toml"
    f.write_text("status_not_fuond = 1\n")
    with pytest.raises(UsageError, match="unknown anomaly class 'status_not_fuond'"):
        load_thresholds(f)
    f.write_text("status_not_found = -1\n")
    with pytest.raises(UsageError, match="must be a whole number >= 0"):
        load_thresholds(f)


def test_parse_flags() -> None:
    assert parse_flags(["a=true", "b=3", "c=bounded", 'd="x"']) == {
        "a": True,
        "b": 3,
        "c": "bounded",
        "d": "x",
    }
    with pytest.raises(UsageError, match="expected NAME=VALUE"):
        parse_flags(["nonsense"])
