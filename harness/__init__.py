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

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports
from harness._version import __version__

if TYPE_CHECKING:
    from harness.cluster import Cluster, ClusterEvent, EventKind, WorkerInfo
    from harness.cluster.redis import Fault, RedisBackend
    from harness.history import load_history
    from harness.judging import CheckConfig, judge
    from harness.run import FaultStep, RunOptions, RunResult, Scenario, run_chaos
    from harness.targets import Contract

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

# public name -> module that defines it (imported on first attribute access)
__getattr__, _dir = lazy_exports(
    __name__,
    {
        "CheckConfig": "harness.judging.checkers",
        "Cluster": "harness.cluster",
        "ClusterEvent": "harness.cluster.events",
        "Contract": "harness.targets.contract",
        "EventKind": "harness.cluster.events",
        "Fault": "harness.cluster.redis",
        "FaultStep": "harness.run.scenario",
        "RedisBackend": "harness.cluster.redis",
        "RunOptions": "harness.run.runner",
        "RunResult": "harness.run.runner",
        "Scenario": "harness.run.scenario",
        "WorkerInfo": "harness.cluster.supervisor",
        "judge": "harness.judging.checkers",
        "load_history": "harness.history.tables",
        "run_chaos": "harness.run.runner",
    },
)


def __dir__() -> list[str]:
    return sorted(__all__)
