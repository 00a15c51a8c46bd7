"""``scanproof replay``: the table of what came back, and the exit code a CI job can use."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli import main
from tests.processes import assert_all_gone, descendants, record, spawn

ZOO = Path(__file__).resolve().parents[1] / "zoo"

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
    out, err = capsys.readouterr()
    assert line in out
    # a progress line per repeat (the two lanes share them)
    shown = "cross_tenant_leak" if code else "nothing"
    repeats = [ln for ln in err.splitlines() if ln.startswith("replay: repeat ")]
    assert sorted(ln.split(":")[1] for ln in repeats) == [f" repeat {k} of 3" for k in (1, 2, 3)]
    assert all(f": {shown} (" in ln for ln in repeats), repeats
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


# A scan, then a wait of a day of service time (864 s at time scale 0.01).
LONG_WAIT = """\
name = "long-wait"
workers = 2
tenants = 1

[[steps]]
rule = "discover"
pin = 0

[[steps]]
rule = "wait"
seconds = 86400.0
"""


@pytest.mark.slow  # ~5 s
@pytest.mark.processes
@pytest.mark.real_redis
@pytest.mark.timeout(90)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "SIGTERM"])
def test_ctrl_c_while_both_lanes_wait_ends_replay_at_once(tmp_path: Path, signum: int) -> None:
    """SIGINT (or SIGTERM: a CI job's cancel, ``timeout``) once both lanes' repeats have
    started their scan and sleep in the wait: exit 130 within 3 s and every process of
    both clusters gone."""
    path = tmp_path / "long.toml"
    path.write_text(LONG_WAIT)
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "harness", "replay", str(path), "--repeat", "2",
        "--app", "tests.zoo.jobs:app", "--contract", str(ZOO / "jobs.toml"),
        "--time-scale", "0.01", "--scan-deadline-s", "10", "--redis", "server",
        "--out", str(out),
    ]  # fmt: skip
    proc = spawn(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    shards = [out / "repeat-0.jsonl", out / "repeat-1.jsonl"]
    deadline = time.monotonic() + 60
    # both discovers answered (a history line is written as it happens): both wait
    while not all(s.exists() and '"e":"complete"' in s.read_text() for s in shards):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the repeats never started"
        time.sleep(0.05)
    tree = record(descendants(proc.pid))
    assert len(tree) >= 2 * 5, tree  # two clusters: Redis, router, zygote, 2 workers
    proc.send_signal(signum)
    began = time.monotonic()
    assert proc.wait(timeout=30) == 130
    took = time.monotonic() - began
    assert took <= 3.0, f"exit took {took:.1f} s after {signal.Signals(signum).name}"
    assert_all_gone(tree, seconds=2.0)
