"""Lazy re-exports for package ``__init__`` modules.

A package names its public surface in ``__all__`` and maps each name to the
module that defines it; the module is imported on first attribute access, so
importing the package stays cheap (the pytest plugin imports ``harness`` in
every pytest run, and a locust worker must not load pandas).

>>> getattr_, dir_ = lazy_exports("pkg", {"sqrt": "math"})
>>> getattr_("sqrt")(9.0)
3.0
>>> dir_()
['sqrt']
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, table: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package whose names live in ``table``."""

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted(table)

    return __getattr__, __dir__
