"""Judging a history: pure functions from recorded operations to a verdict.

:mod:`.checkers` (``judge``, one checker per anomaly class) and
:mod:`.verdict` (three-valued verdicts with witnesses). Nothing here starts a
process, talks to a service or knows the reference service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports

if TYPE_CHECKING:
    from harness.judging.checkers import CheckConfig, judge
    from harness.judging.verdict import Verdict

__all__ = ["CheckConfig", "Verdict", "judge"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "CheckConfig": "harness.judging.checkers",
        "Verdict": "harness.judging.verdict",
        "judge": "harness.judging.checkers",
    },
)
