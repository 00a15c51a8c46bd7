"""What an answer means: the outcome table and the body parsing, for every client.

The recording clients (:class:`harness.client.ScanClient` on httpx, the locust
user on geventhttpclient) differ only in how they send a request. What its
answer means is decided here, once, from the status code, the JSON body and the
``X-Scanproof-Worker`` header:

==========================================  =======  ===============================
what happened                                outcome  why
==========================================  =======  ===============================
connect refused / connect timeout            fail     the request never reached a worker
pool timeout                                 fail     the request was never sent
router 502 ``worker_unavailable``            fail     the router could not connect
read / write timeout, reset, protocol error  info     the worker may have processed it
any other 5xx                                info     the worker may have processed it
any other answer (2xx, 3xx, 4xx)             ok       it happened
==========================================  =======  ===============================

Standard library only: a gevent-patched locust process imports it safely.

>>> from harness.contract import Contract
>>> body = {"status": "scanning", "progress": {"strategies_completed": 3, "total_strategies": 14}}
>>> done = completion_from_answer("status", Contract(), 200, body, worker_header="2")
>>> done.outcome, done.worker, done.completed, done.total
('ok', 2, 3, 14)
"""

from __future__ import annotations

import json
from typing import Any

from harness._shard import Completion
from harness.contract import Contract
from harness.schema import Kind, Outcome

WORKER_HEADER = "x-scanproof-worker"
ROUTER_UNAVAILABLE = "worker_unavailable"
NOT_JSON = "response body is not JSON"
# Retry policy, stated for every recording client: no retries (a retry would hide exactly
# the failures we are here to count, and could repeat a discover), and this timeout.
DEFAULT_TIMEOUT_S = 5.0

# Exceptions that prove the request never reached a worker, whatever the client library.
_NEVER_SENT: tuple[type[BaseException], ...] = (ConnectionRefusedError,)


def classify_exception(
    exc: BaseException, *, never_sent: tuple[type[BaseException], ...] = ()
) -> Outcome:
    """``fail`` when ``exc`` proves the request was never sent, else ``info``.

    ``never_sent`` adds a client library's own such exceptions (httpx's connect
    and pool errors); a refused connection counts for every library.
    """
    if isinstance(exc, _NEVER_SENT + never_sent):
        return "fail"
    return "info"


def classify_response(status_code: int, body: Any) -> Outcome:
    """The outcome of a request that got an HTTP answer (see the module table)."""
    if status_code == 502 and isinstance(body, dict) and body.get("error") == ROUTER_UNAVAILABLE:
        return "fail"
    if status_code >= 500:
        return "info"
    return "ok"


def parse_body(content: bytes | str | None) -> tuple[Any, str]:
    """The JSON body and an error ("" when it parsed; ``NOT_JSON`` when it did not)."""
    try:
        return json.loads(content or b""), ""
    except ValueError:
        return None, NOT_JSON


def completion_from_answer(
    kind: Kind,
    contract: Contract,
    status_code: int,
    body: Any,
    *,
    worker_header: str | None,
    pin: int | None = None,
    error: str = "",
) -> Completion:
    """The :class:`Completion` of a request that got an HTTP answer.

    ``worker_header`` is the raw ``X-Scanproof-Worker`` value (None when absent);
    a pinned request is credited to its pinned worker when the header is missing.
    """
    c = contract
    worker = int(worker_header) if worker_header is not None and worker_header.isdigit() else -1
    if pin is not None and worker < 0:
        worker = pin
    is_dict = isinstance(body, dict)
    progress = body.get(c.progress_field) if is_dict else None
    prog: dict[str, Any] = progress if isinstance(progress, dict) else {}
    status_word = body.get(c.status_field) if is_dict else None
    return Completion(
        outcome=classify_response(status_code, body),
        worker=worker,
        http_status=status_code,
        body_status=status_word if isinstance(status_word, str) else "",
        completed=_int(prog.get(c.completed_field)),
        total=_int(prog.get(c.total_field)),
        found=_int(prog.get(c.found_field)),
        has_progress=isinstance(progress, dict),
        body_scan_ids=_ids(body, c.items_field, c.scan_id_field),
        body_user_ids=_ids(body, c.items_field, c.user_id_field),
        scan_id=_discovered_id(kind, status_code, body, c.scan_id_field),
        error=error,
    )


def completion_from_exception(
    exc: BaseException, *, never_sent: tuple[type[BaseException], ...] = ()
) -> Completion:
    """The :class:`Completion` of a request that raised ``exc`` instead of answering."""
    return Completion(
        outcome=classify_exception(exc, never_sent=never_sent),
        error=f"{type(exc).__name__}: {exc}"[:300],
    )


def _ids(body: Any, items: str, field: str) -> str:
    """Every value of ``field`` at the top level and in ``body[items]``, sorted and joined."""
    if not isinstance(body, dict):
        return ""
    found: set[str] = set()
    candidates = [body]
    entries = body.get(items)
    if isinstance(entries, list):
        candidates += [e for e in entries if isinstance(e, dict)]
    for entry in candidates:
        value = entry.get(field)
        if isinstance(value, str) and value:
            found.add(value)
    return ",".join(sorted(found))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _discovered_id(kind: Kind, status_code: int, body: Any, field: str) -> str:
    if kind != "discover" or status_code != 200 or not isinstance(body, dict):
        return ""
    value = body.get(field)
    return value if isinstance(value, str) else ""
