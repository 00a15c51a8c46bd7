"""Suite-wide rules.

Tests marked ``real_redis`` need a ``redis-server`` binary. Locally they are
skipped, with the reason shown, when it is missing; under ``CI=true`` a missing
binary is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import shutil

import pytest


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("real_redis") is None:
        return
    if shutil.which("redis-server") is not None:
        return
    if _in_ci():
        pytest.fail(
            "redis-server is not on PATH but CI=true: install it (apt-get install redis-server)"
        )
    pytest.skip("redis-server is not on PATH (install it to run real_redis tests)")
