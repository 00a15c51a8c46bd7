"""What scanproof knows about the service under test.

- :mod:`.contract`: the contract of any scan/job API (paths, status words,
  fields, key classes), read from TOML;
- :mod:`.reference`: the only module of ``harness`` that knows the reference
  service shipped in ``reference_impl`` (its default app and preset, its
  environment, preset validation, the fix-ablation planner). Not imported
  here: ``from harness.targets import reference`` loads ``reference_impl.flags``,
  and the contract (which the judge reads) stays free of it.
"""

from __future__ import annotations

from harness.targets.contract import Contract, load_contract

__all__ = ["Contract", "load_contract"]
