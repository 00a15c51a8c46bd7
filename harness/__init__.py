"""scanproof's harness: cluster, client, history, nemesis, checkers, runner and CLI.

The public surface is re-exported here and kept small; everything else lives in
private modules. Cluster names are imported lazily on first use, so that
``import harness`` (which the pytest plugin does in every pytest run) stays cheap.

>>> import harness
>>> harness.__version__  # doctest: +SKIP
'0.1.0'
>>> with harness.Cluster.start(app="tests.apps.whoami:app") as cluster:  # doctest: +SKIP
...     print(cluster.router_url)

A chaos run from Python (what ``scanproof run`` does):

>>> from scenarios.catalogue import get_scenario
>>> result = harness.run_chaos(
...     harness.RunOptions(scenario=get_scenario("mixed"), preset="claimed-fix", seed=1)
... )  # doctest: +SKIP
>>> result.verdict.verdict, result.run_dir  # doctest: +SKIP
('fail', PosixPath('scanproof-runs/...'))

Re-judging a stored history: ``harness.judge(harness.load_history(run_dir),
harness.CheckConfig(retention_s=3.0, scan_deadline_s=3.0))``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from harness._version import __version__

if TYPE_CHECKING:
    from harness._events import ClusterEvent, EventKind
    from harness.checkers import CheckConfig, judge
    from harness.cluster import Cluster
    from harness.contract import Contract
    from harness.history import load_history
    from harness.redis_backends import Fault, RedisBackend
    from harness.runner import RunOptions, RunResult, run_chaos
    from harness.scenario import FaultStep, Scenario
    from harness.supervisor import WorkerInfo

# public name -> module that defines it (imported on first attribute access)
_LAZY: dict[str, str] = {
    "CheckConfig": "harness.checkers",
    "Cluster": "harness.cluster",
    "Contract": "harness.contract",
    "FaultStep": "harness.scenario",
    "RunOptions": "harness.runner",
    "RunResult": "harness.runner",
    "Scenario": "harness.scenario",
    "judge": "harness.checkers",
    "load_history": "harness.history",
    "run_chaos": "harness.runner",
    "ClusterEvent": "harness._events",
    "EventKind": "harness._events",
    "Fault": "harness.redis_backends",
    "RedisBackend": "harness.redis_backends",
    "WorkerInfo": "harness.supervisor",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
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
]
