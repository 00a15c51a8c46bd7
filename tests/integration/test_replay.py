"""``scanproof replay``: the table of what came back, and the exit code a CI job can use."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main

# F15b by hand: a scan started on worker 0, probed by another tenant on that worker.
F15B = """\
name = "f15b-by-hand"
workers = 2
tenants = 2
found = ["cross_tenant_leak"]

[[steps]]
rule = "discover"
tenant = 0
pin = 0

[[steps]]
rule = "probe"
scan = 0
tenant = 1
pin = 0
"""


@pytest.fixture
def f15b(tmp_path: Path) -> Path:
    path = tmp_path / "f15b.toml"
    path.write_text(F15B)
    return path


@pytest.mark.processes
@pytest.mark.real_redis
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("preset", "code", "line"),
    [
        ("claimed-fix", 1, "reproduced: cross_tenant_leak 3/3"),
        ("sound", 0, "no anomaly came back"),
    ],
)
def test_replay_reports_repeats_and_exits_1_only_when_an_anomaly_came_back(
    f15b: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    preset: str,
    code: int,
    line: str,
) -> None:
    argv = ["replay", str(f15b), "--repeat", "3", "--preset", preset, "--redis", "server"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == code
    out = capsys.readouterr().out
    assert line in out
    assert any(row.startswith("cross_tenant_leak") and "/ 3" in row for row in out.splitlines())
    assert len(list((tmp_path / "out").glob("repeat-*.jsonl"))) == 3  # one history per repeat


def test_check_validates_without_running(f15b: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(f15b), "--check"]) == 0
    assert "a valid replay file 'f15b-by-hand': 2 steps" in capsys.readouterr().out


def test_bad_file_exits_2_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(F15B.replace("pin = 0\n", "pin = 5\n", 1))
    assert main(["replay", str(bad), "--check"]) == 2
    err = capsys.readouterr().err.strip()
    assert "steps[0]: pin=5 but workers = 2" in err
    assert len(err.splitlines()) == 1


def test_bad_repeat_exits_2(f15b: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", str(f15b), "--repeat", "0"]) == 2
    assert "--repeat 0: must be 1..1000" in capsys.readouterr().err
