"""The pytest plugin as a user meets it: installed, configured by ini and marker."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]

USER_TESTS = """
import httpx
import pytest


def test_default_cluster_from_ini(scanproof_cluster):
    assert len(scanproof_cluster.workers) == 2
    with httpx.Client(base_url=scanproof_cluster.router_url) as client:
        seen = [client.get("/whoami").headers["x-scanproof-worker"] for _ in range(4)]
    assert seen == ["0", "1", "0", "1"]


@pytest.mark.scanproof(workers=3, env={"GREETING": "hi"})
def test_marker_overrides_ini(scanproof_cluster):
    assert len(scanproof_cluster.workers) == 3
    scanproof_cluster.kill(1)
    assert not scanproof_cluster.workers[1].alive
"""


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    (plugin,) = [ep for ep in entry_points(group="pytest11") if ep.name == "scanproof"]
    assert plugin.value == "harness.cluster.pytest_plugin"


def test_loading_the_plugin_does_not_import_the_cluster_machinery() -> None:
    code = (
        "import sys, harness.cluster.pytest_plugin\n"
        "heavy = ('harness.cluster._cluster', 'harness.cluster.supervisor', 'redis', 'uvicorn')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "print(heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"


def test_fixture_configured_by_ini_and_marker(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nscanproof_app = tests.apps.whoami:app\nscanproof_workers = 2\n"
    )
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=ROOT,  # the user's project: where their app is importable from
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout
