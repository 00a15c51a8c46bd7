"""Hypothesis state-machine exploration of a scan service (``scanproof explore``).

>>> from scenarios.stateful import ExploreConfig, explore  # doctest: +SKIP
>>> result = explore(ExploreConfig(preset="claimed-fix", max_examples=50))  # doctest: +SKIP
>>> result.found, result.replay_path  # doctest: +SKIP
({'status_not_found': 1}, PosixPath('scanproof-runs/explore-.../shrunk.toml'))
"""

from scenarios.stateful.machine import PROFILES, ExploreConfig, ExploreResult, explore

__all__ = ["PROFILES", "ExploreConfig", "ExploreResult", "explore"]
