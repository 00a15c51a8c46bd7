"""Ports picked for programs that bind them themselves (Redis) stay out of bind(0)'s way.

CI once failed because the port just picked for the embedded Redis was handed
by the kernel to a router that bound port 0 in between. A port outside the
ephemeral range cannot be handed out that way.
"""

from __future__ import annotations

import socket

import pytest

from harness.cluster import _proc
from harness.cluster._proc import LOOPBACK, free_port


def test_picked_ports_are_outside_the_range_bind_zero_draws_from() -> None:
    low, high = _proc._ephemeral_range()
    picks = {free_port() for _ in range(200)}
    assert all(not low <= port <= high for port in picks)
    assert all(port >= 1024 for port in picks)
    assert len(picks) > 150  # random, so parallel harnesses rarely pick the same one


def test_a_port_someone_listens_on_is_never_picked(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as held:
        held.bind((LOOPBACK, 0))
        held.listen()
        taken = held.getsockname()[1]
        # Shrink the choice to the taken port and one other: the taken one must be skipped.
        monkeypatch.setattr(_proc, "_LOWEST_PICK", taken)
        monkeypatch.setattr(_proc, "_ephemeral_range", lambda: (taken + 2, 65535))
        picks = {free_port() for _ in range(40)}
    assert taken not in picks
