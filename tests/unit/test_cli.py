"""The command line as a user meets it: the installed console script and ``python -m harness``."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version

from harness.cli import VERBS


def _scanproof(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_matches_installed_metadata() -> None:
    result = _scanproof("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"scanproof {version('scanproof')}"


def test_help_lists_every_verb() -> None:
    result = _scanproof("--help")
    assert result.returncode == 0
    for verb in VERBS:
        assert verb in result.stdout, f"verb {verb!r} missing from --help"


def test_console_script_is_installed() -> None:
    from importlib.metadata import entry_points

    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "scanproof"]
    assert script.value == "harness.cli:main"


def test_unknown_verb_is_usage_error() -> None:
    result = _scanproof("frobnicate")
    assert result.returncode == 2
    assert "frobnicate" in result.stderr


def test_no_verb_prints_help_and_exits_2() -> None:
    result = _scanproof()
    assert result.returncode == 2
    assert "verbs" in result.stdout
