"""The examples in the docstrings of the pure modules run, and say what they show.

Pure modules start no process and open no connection, so their examples can
run in the unit suite. Examples that need a cluster are marked
``# doctest: +SKIP``. A listed module must have at least one example that
runs, so this list stays honest; add a module here when it gains one.

``--doctest-modules`` stays off: it would import every module into the pytest
process, including the locust files, whose import monkey-patches the whole
interpreter with gevent.
"""

from __future__ import annotations

import contextlib
import doctest
import importlib
import io
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PURE_MODULES = (
    "harness",
    "harness._lazy",
    "harness._toml",
    "harness.cluster.router._http_parse",
    "harness.errors",
    "harness.evidence.baseline",
    "harness.evidence.claims",
    "harness.evidence.matrix",
    "harness.evidence.stats",
    "harness.export.edn",
    "harness.explore.replay",
    "harness.explore.steps",
    "harness.faults.attribution",
    "harness.history.outcomes",
    "harness.history.record",
    "harness.history.tables",
    "harness.history.writer",
    "harness.judging.checkers",
    "harness.judging.thresholds",
    "harness.judging.understanding",
    "harness.judging.verdict",
    "harness.judging.window",
    "harness.run.calibrate",
    "harness.run.plan",
    "harness.run.scenario",
    "harness.targets.contract",
    "harness.targets.reference",
    "reports",
    "reports._junit",
    "reports._setup",
    "reports.render",
    "reports.matrix",
    "reports.tables",
    "scenarios.catalogue",
    "scenarios.locust._live",
    "scenarios.locust._workload",
)


@pytest.mark.parametrize("name", PURE_MODULES)
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(name)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        failed, attempted = doctest.testmod(
            module,
            optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
            report=False,
        )
    assert attempted > 0, f"{name} has no example that runs: add one or drop it from the list"
    assert failed == 0, f"{failed} of {attempted} examples failed in {name}:\n{out.getvalue()}"


def test_doctest_modules_is_not_turned_on_for_the_whole_suite() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    options = config["tool"]["pytest"]["ini_options"]
    assert "--doctest-modules" not in str(options.get("addopts", ""))
    for other in ("pytest.ini", "tox.ini", "setup.cfg"):
        path = ROOT / other
        assert not path.exists() or "doctest-modules" not in path.read_text(encoding="utf-8")
