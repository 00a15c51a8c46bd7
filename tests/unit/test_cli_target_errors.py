"""A bad preset, flag or time scale is refused before anything starts: exit 2, one line.

Every verb that starts the reference service checks its target up front
(``harness.targets.reference``), so a typo never becomes a worker that fails to
import (exit 3) nor leaves a run directory behind.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.cli import main
from harness.targets.reference import PRESET_NAMES

VALID_PRESETS = "valid presets are " + ", ".join(PRESET_NAMES)
BAD_PRESET = (["--preset", "no-such"], "--preset no-such: " + VALID_PRESETS)
BAD_FLAG_NAME = (["--flag", "no_such_flag=true"], "--flag no_such_flag=true: no such flag; valid")
BAD_FLAG_VALUE = (
    ["--flag", "no_scan_liveness=yes"],
    '--flag no_scan_liveness="yes": must be true or false',
)
BAD_RETRY_POLICY = (
    ["--flag", "retry_policy=forever"],
    '--flag retry_policy="forever": must be one of redis-py-default, bounded',
)
ZERO_TIME_SCALE = (["--time-scale", "0"], "--time-scale 0.0: must be a number in (0, 100]")
NEGATIVE_TIME_SCALE = (["--time-scale", "-1"], "--time-scale -1.0: must be a number in (0, 100]")
TARGET_ERRORS = [
    BAD_PRESET,
    BAD_FLAG_NAME,
    BAD_FLAG_VALUE,
    BAD_RETRY_POLICY,
    ZERO_TIME_SCALE,
    NEGATIVE_TIME_SCALE,
]
CLAIMS = 'title = "t"\n[[claims]]\nid = "1"\nstatement = "s"\npredicate = "results_404 == 0"\n'


def _verb_argv(verb: str, tmp_path: Path) -> list[str]:
    out = str(tmp_path / "out")
    if verb in ("run", "gate"):
        return [verb, "--out", out, "--quiet"]
    if verb == "explore":
        return [verb, "--out", out]
    if verb == "replay":
        return [verb, str(tmp_path / "shrunk.toml"), "--out", out]
    if verb == "claims":
        (tmp_path / "claims.toml").write_text(CLAIMS)
        return [verb, str(tmp_path / "claims.toml"), "--out", out, "--quiet"]
    return [verb]


def _refused(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], message: str
) -> None:
    before = sorted(tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    assert message in err, err
    assert sorted(tmp_path.iterdir()) == before  # no run directory, no output directory


@pytest.mark.parametrize(("bad", "message"), TARGET_ERRORS)
@pytest.mark.parametrize("verb", ["run", "gate", "explore", "replay", "claims"])
def test_verbs_refuse_a_bad_target_up_front(
    verb: str,
    bad: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)  # a default run directory would land here
    argv = _verb_argv(verb, tmp_path)
    _refused([*argv, *bad], tmp_path, capsys, message)


@pytest.mark.parametrize(("bad", "message"), [BAD_PRESET, BAD_FLAG_NAME, BAD_FLAG_VALUE])
def test_up_refuses_a_bad_target_before_starting_a_cluster(
    bad: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    _refused(["up", *bad], tmp_path, capsys, message)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--presets", "claimed-fix,no-such"], "--presets no-such: " + VALID_PRESETS),
        (["--ablate", "no-such"], "--ablate no-such: " + VALID_PRESETS),
        (["--base", "no-such", "--toggle", "no_scan_liveness"], "--base no-such: "),
        (["--toggle", "no_such_flag"], "--toggle no_such_flag: no such flag; valid flags are"),
        ZERO_TIME_SCALE,
    ],
)
def test_matrix_refuses_a_bad_variant_up_front(
    bad: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    _refused(["matrix", "--out", str(tmp_path / "m"), "--quiet", *bad], tmp_path, capsys, message)


@pytest.mark.parametrize("verb", ["run", "explore", "claims"])
def test_preset_and_flags_are_the_reference_services_only(
    verb: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    argv = [*_verb_argv(verb, tmp_path), "--app", "tests.apps.whoami:app", "--preset", "sound"]
    _refused(argv, tmp_path, capsys, "--preset/--flag apply to the reference service only")


def test_the_installed_command_says_it_in_one_line(tmp_path: Path) -> None:
    """What a user sees from a shell: exit 2, one line, the bad value and the valid ones."""
    result = subprocess.run(
        [sys.executable, "-m", "harness", "run", "--preset", "no-such"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr == f"scanproof run: --preset no-such: {VALID_PRESETS}\n"
    assert list(tmp_path.iterdir()) == []


def test_a_preset_from_the_environment_is_checked_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCANPROOF_PRESET", "fixed")
    _refused(["run", "--quiet"], tmp_path, capsys, "--preset fixed: " + VALID_PRESETS)
