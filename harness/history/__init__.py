"""The recorded history: what happened, in one schema for every driver.

Modules:

- :mod:`.schema`: event and column names, kinds and outcomes (the one schema);
- :mod:`.writer`: stdlib-only recording of invoke/complete and fault events
  into per-process JSONL shards (safe under locust's gevent);
- :mod:`.outcomes`: the one table that turns an HTTP answer or a transport
  exception into ``ok`` / ``fail`` / ``info``;
- :mod:`.tables`: pairing shards into the ops and faults tables;
- :mod:`.record`: ``run.json``, the self-describing record of a run.

Nothing here starts a process or talks to a service.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness._lazy import lazy_exports

if TYPE_CHECKING:
    from harness.history.tables import History, load_history
    from harness.history.writer import Completion, FaultRecord, HistoryWriter

__all__ = ["Completion", "FaultRecord", "History", "HistoryWriter", "load_history"]
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Completion": "harness.history.writer",
        "FaultRecord": "harness.history.writer",
        "History": "harness.history.tables",
        "HistoryWriter": "harness.history.writer",
        "load_history": "harness.history.tables",
    },
)
