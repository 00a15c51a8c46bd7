"""What the contract failed to understand in a history: words and paths that matched nothing.

The recording clients write each status and results answer's canonical state
(``body_status``) and the word the answer said (``raw_status``), reading both as
the contract says. A word no ``[words]`` list names is recorded with no state;
a ``status_field`` that points beside the answers' state matches nothing. Either
way the checkers see no state, so a history full of them would pass on nothing.
:func:`understand` counts them. Above a small share of the answers
(:data:`UNKNOWN_SHARE`, and at least :data:`UNKNOWN_MIN` answers) each is a
reason that makes the verdict ``unknown``; below it, a warning for the report.

Only ``ok`` 2xx answers count: a 4xx or 5xx need not carry a state. A results
answer with nothing at the status path is understood (a 2xx reads as
``complete``), so the "matched nothing" share is over status answers only.

>>> import pandas as pd
>>> from harness.history import schema as S
>>> ops = pd.DataFrame({S.KIND: ["status"] * 4, S.OUTCOME: ["ok"] * 4,
...                     S.HTTP_STATUS: [200] * 4,
...                     S.RAW_STATUS: ["queued", "queued", "queued", "done"],
...                     S.BODY_STATUS: ["", "", "", "complete"]})
>>> found = understand(History(ops=ops, faults=pd.DataFrame()))
>>> dict(found.unknown_words)
{'queued': 3}
>>> for part in found.reasons[0].split("; "):
...     print(part)
3 of 4 status and results answers carried words the contract does not list: "queued" (3)
add them under [words] (running, complete, failed, not_found or refused)
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from harness.history import schema as S
from harness.history.tables import History
from harness.targets.contract import Contract

UNKNOWN_SHARE = 0.05  # above this share of the answers, the verdict is unknown ...
UNKNOWN_MIN = 3  # ... when at least this many answers are not understood
_SHOWN_WORDS = 5


@dataclass(frozen=True, slots=True)
class Understanding:
    """How much of a history the contract understood (see the module docstring)."""

    answers: int = 0  # ok 2xx status and results answers
    unknown_words: Mapping[str, int] = field(default_factory=dict)  # most common first
    unknown_answers: int = 0  # answers among ``answers`` whose word no list names
    status_answers: int = 0  # ok 2xx status answers
    unmatched_status: int = 0  # ... with nothing at the status path and no state
    reasons: tuple[str, ...] = ()  # each makes the verdict unknown
    warnings: tuple[str, ...] = ()  # said in the report; decide nothing


def _too_many(n: int, total: int) -> bool:
    return n >= UNKNOWN_MIN and n > UNKNOWN_SHARE * total


def _words_text(words: Mapping[str, int]) -> str:
    shown = [f'"{w}" ({n})' for w, n in list(words.items())[:_SHOWN_WORDS]]
    rest = len(words) - _SHOWN_WORDS
    return ", ".join(shown) + (f" and {rest} more" if rest > 0 else "")


def understand(history: History, contract: Contract | None = None) -> Understanding:
    """Count what ``contract`` (named in the lines when given) did not understand in
    ``history``. Pure: reads the ops table only. A table without ``raw_status`` (an
    ``ops.parquet`` of an older scanproof) shows nothing not understood."""
    ops = history.ops
    if not len(ops) or S.RAW_STATUS not in ops.columns:
        return Understanding()
    ok = ops[
        (ops[S.OUTCOME] == "ok")
        & ops[S.KIND].isin(("status", "results"))
        & (ops[S.HTTP_STATUS] >= 200)
        & (ops[S.HTTP_STATUS] < 300)
    ]
    raw, state = ok[S.RAW_STATUS].fillna(""), ok[S.BODY_STATUS].fillna("")
    unknown = ok[(raw != "") & (state == "")]
    words = dict(Counter(unknown[S.RAW_STATUS].astype(str)).most_common())
    status = ok[ok[S.KIND] == "status"]
    unmatched = int(((status[S.RAW_STATUS] == "") & (status[S.BODY_STATUS] == "")).sum())
    reasons: list[str] = []
    warnings: list[str] = []
    if words:
        line = (
            f"{len(unknown)} of {len(ok)} status and results answers carried words the "
            f"contract does not list: {_words_text(words)}; add them under [words] "
            "(running, complete, failed, not_found or refused)"
        )
        (reasons if _too_many(len(unknown), len(ok)) else warnings).append(line)
    if unmatched:
        path = f"status_field {contract.status_field!r}" if contract else "the status path"
        line = (
            f"{unmatched} of {len(status)} status answers had no state at {path}; "
            "point status_field at the answers' state word (a dotted path, e.g. "
            '"job.state")'
        )
        (reasons if _too_many(unmatched, len(status)) else warnings).append(line)
    if contract is not None:
        warnings += _unmatched_paths(ok, status, contract)
    return Understanding(
        answers=len(ok),
        unknown_words=words,
        unknown_answers=len(unknown),
        status_answers=len(status),
        unmatched_status=unmatched,
        reasons=tuple(reasons),
        warnings=tuple(warnings),
    )


def _unmatched_paths(ok: pd.DataFrame, status: pd.DataFrame, contract: Contract) -> list[str]:
    """Optional paths that matched no answer at all: a warning each (a contract mistake,
    or an API without that value: then set the field to "")."""
    lines = []
    if contract.progress_field and len(status) and not status[S.HAS_PROGRESS].any():
        lines.append(
            f"progress_field {contract.progress_field!r} matched none of {len(status)} "
            'status answers; set progress_field = "" if the API reports no progress'
        )
    if contract.scan_id_field and len(ok) and not (ok[S.BODY_SCAN_IDS] != "").any():
        lines.append(
            f"scan_id_field {contract.scan_id_field!r} matched none of {len(ok)} status and "
            'results answers; set scan_id_field = "" if the answers carry no scan id'
        )
    return lines
