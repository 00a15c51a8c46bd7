"""Suite-wide rules.

Tests marked ``real_redis`` need a ``redis-server`` binary. Locally they are
skipped, with the reason shown, when it is missing; under ``CI=true`` a missing
binary is a failure, never a silent skip.

Tests press Ctrl-C on the processes they start (``send_signal(SIGINT)``), as a user
at a terminal would. A shell starts background jobs with SIGINT ignored (``cmd &``,
``nohup``), and an ignored signal stays ignored across ``exec``: run that way, every
process a test starts would ignore its Ctrl-C, and a dozen tests would fail for a
reason no user at a terminal has. So when pytest starts with SIGINT ignored, it
takes SIGINT back (Python's own handler), and the processes it starts begin with
the default, as from a terminal.
"""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator

import pytest

from tests.processes import end_spawned


def pytest_configure(config: pytest.Config) -> None:
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


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


@pytest.fixture(autouse=True)
def _end_spawned() -> Iterator[None]:
    """Whatever ``tests.processes.spawn`` started ends with its test."""
    yield
    end_spawned()
