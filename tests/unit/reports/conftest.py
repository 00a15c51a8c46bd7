"""Shared fixtures: most render tests look at text, not pixels."""

from __future__ import annotations

import pytest

from reports import render

# The PNG signature and nothing else: what stubbed plots "draw".
STUB_PNG = b"\x89PNG\r\n\x1a\nstub"


@pytest.fixture
def stub_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the matplotlib plots with a stub (each real plot costs ~0.3 s).

    Only for tests about text; the module-scoped renders in test_render.py and
    test_plots.py draw real plots.
    """
    for name in ("status_plot", "rates_plot", "latency_plot", "class_timeline_plot"):
        monkeypatch.setattr(render, name, lambda *a, **k: STUB_PNG)
