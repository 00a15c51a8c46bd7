"""The public surface is pinned: adding or dropping a public name is a decision.

A change here is an API change: say so in the notes and update
docs/architecture.md when a subpackage's surface moves.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import pytest

import harness
import reports

PUBLIC: dict[str, list[str]] = {
    "harness": [
        "CheckConfig",
        "Cluster",
        "ClusterEvent",
        "Contract",
        "EventKind",
        "Fault",
        "FaultStep",
        "RedisBackend",
        "RunOptions",
        "RunResult",
        "Scenario",
        "WorkerInfo",
        "__version__",
        "judge",
        "load_history",
        "run_chaos",
    ],
    "reports": ["RenderedReport", "class_table", "first_witness_words", "render_run"],
    "harness.cli": ["VERBS", "main"],
    "harness.cluster": ["Cluster", "ClusterEvent", "Deployment", "EventKind", "WorkerInfo"],
    "harness.history": ["Completion", "FaultRecord", "History", "HistoryWriter", "load_history"],
    "harness.judging": ["CheckConfig", "Verdict", "judge"],
    "harness.run": ["FaultStep", "RunOptions", "RunResult", "Scenario", "run_chaos"],
    "harness.targets": ["Contract", "load_contract"],
}

# packages whose names are imported on first use (harness._lazy): dir() must list them
LAZY = ("harness", "harness.cluster", "harness.history", "harness.judging", "harness.run")


def _module(name: str) -> ModuleType:
    return importlib.import_module(name)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_all_is_pinned(name: str) -> None:
    assert list(_module(name).__all__) == PUBLIC[name]


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_all_is_sorted(name: str) -> None:
    names = list(_module(name).__all__)
    assert names == sorted(names)


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_resolves(name: str) -> None:
    module = _module(name)
    missing = [n for n in module.__all__ if getattr(module, n, None) is None]
    assert missing == []


@pytest.mark.parametrize("name", LAZY)
def test_dir_of_a_lazy_package_is_its_public_surface(name: str) -> None:
    module = _module(name)
    assert dir(module) == sorted(module.__all__)


def test_dir_of_harness_lists_the_lazy_names() -> None:
    assert dir(harness) == sorted(harness.__all__)


def test_an_unknown_name_is_an_attribute_error_naming_the_package() -> None:
    with pytest.raises(AttributeError, match="module 'harness' has no attribute 'Clutser'"):
        _ = harness.Clutser  # type: ignore[attr-defined]


_SUBPACKAGES = (
    "harness.cluster",
    "harness.history",
    "harness.judging",
    "harness.run",
    "harness.targets",
)


@pytest.mark.parametrize(
    ("package", "name"),
    [(p, n) for p in _SUBPACKAGES for n in PUBLIC["harness"] if n in PUBLIC[p]],
)
def test_a_name_exported_twice_is_the_same_object(package: str, name: str) -> None:
    _module(package)  # importing the subpackage must not change what harness.<name> is
    assert getattr(harness, name) is getattr(_module(package), name)


def test_harness_judge_stays_callable_after_the_judging_package_is_imported() -> None:
    # A subpackage named like a public function would shadow it once imported: the
    # judging subpackage is named ``judging`` so ``harness.judge`` stays the function.
    importlib.import_module("harness.judging.checkers")
    assert callable(harness.judge)


def test_reports_exports_what_its_docstring_shows() -> None:
    assert callable(reports.render_run)
    assert callable(reports.class_table)
    assert callable(reports.first_witness_words)
