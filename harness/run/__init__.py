"""A chaos run: scenario -> seeded plan -> drivers and client -> history.

Modules: :mod:`.scenario` (data, validated), :mod:`.plan` (seeded op and fault
schedule), :mod:`.client` (the recording HTTP client), :mod:`.driver` (the
scripted driver), :mod:`.runner` (``run_chaos``: cluster up, play, judge).
``_play`` plays a plan with the scripted or locust driver and the nemesis;
``_locust`` runs locust in its own process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports

if TYPE_CHECKING:
    from harness.run.runner import RunOptions, RunResult, run_chaos
    from harness.run.scenario import FaultStep, Scenario

__all__ = ["FaultStep", "RunOptions", "RunResult", "Scenario", "run_chaos"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "FaultStep": "harness.run.scenario",
        "RunOptions": "harness.run.runner",
        "RunResult": "harness.run.runner",
        "Scenario": "harness.run.scenario",
        "run_chaos": "harness.run.runner",
    },
)
