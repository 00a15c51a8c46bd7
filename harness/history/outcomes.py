"""What an answer means: the outcome table, the body parsing and the canonical state,
for every client.

The recording clients (:class:`harness.run.client.ScanClient` on httpx, the locust
user on geventhttpclient) differ only in how they send a request. What its
answer means is decided here, once, from the status code, the JSON body and the
headers, read as the contract says (dotted paths, ``[words]``, ``[codes]``, the
``worker_header``, ``discover_id``). The outcome:

==========================================  =======  ===============================
what happened                                outcome  why
==========================================  =======  ===============================
connect refused / connect timeout            fail     the request never reached a worker
pool timeout                                 fail     the request was never sent
router 502 ``worker_unavailable``            fail     the router could not connect
router 503 ``no_worker_available``           fail     every worker was out of rotation
router 502 ``worker_closed``                 info     dropped after it was sent: no answer
read / write timeout, reset, protocol error  info     the worker may have processed it
any other 5xx                                info     the worker may have processed it
any other answer (2xx, 3xx, 4xx)             ok       it happened
==========================================  =======  ===============================

The state (``body_status``) of a status or results answer is one canonical word
(:func:`state_of`); what the answer itself said at the status path is kept in
``raw_status``. Standard library only: a gevent-patched locust process imports it safely.

>>> from harness.targets.contract import Contract
>>> body = {"status": "scanning", "progress": {"strategies_completed": 3, "total_strategies": 14}}
>>> done = completion_from_answer("status", Contract(), 200, body,
...                               headers={"X-Scanproof-Worker": "2"})
>>> done.outcome, done.worker, done.body_status, done.completed, done.total
('ok', 2, 'scanning', 3, 14)

A job API (see docs/contract.md): nested state, its own words, the id in ``Location``:

>>> from harness.targets.contract import contract_from_mapping
>>> jobs = contract_from_mapping({"status_field": "job.state", "discover_id": "header:Location",
...                               "words": {"running": ["queued", "running"]}})
>>> done = completion_from_answer("discover", jobs, 201, {}, headers={"location": "/jobs/j7"})
>>> done.scan_id
'j7'
>>> done = completion_from_answer("status", jobs, 200, {"job": {"state": "queued"}})
>>> done.body_status, done.raw_status
('scanning', 'queued')
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from harness.history.schema import NEVER_ISSUED_PREFIX, Kind, Outcome
from harness.history.writer import Completion
from harness.targets.contract import HEADER_ID, STATES, Contract, at_path

WORKER_HEADER = "x-scanproof-worker"
ROUTER_HEADER = "x-scanproof-router"  # on the router's own answers only
ROUTER_UNAVAILABLE = "worker_unavailable"
# The router's own answers: the request never reached a worker, or it was sent and then
# dropped with no answer (recorded like a reset: no HTTP status of the service).
_ROUTER_NEVER_SENT = frozenset({ROUTER_UNAVAILABLE, "no_worker_available"})
_ROUTER_DROPPED = "worker_closed"
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


def router_error(status_code: int, body: Any, headers: Mapping[str, str] | None = None) -> str:
    """The ``error`` of an answer the scanproof router wrote itself, "" for any other.

    With ``headers`` known, only an answer carrying ``X-Scanproof-Router`` is the
    router's: a service may answer the same words itself.

    >>> router_error(503, {"error": "no_worker_available"}, {"X-Scanproof-Router": "local"})
    'no_worker_available'
    >>> router_error(503, {"error": "no_worker_available"}, {"content-type": "text/json"})
    ''
    """
    if status_code not in (502, 503) or not isinstance(body, dict):
        return ""
    error = body.get("error")
    if error not in _ROUTER_NEVER_SENT and error != _ROUTER_DROPPED:
        return ""
    if headers is not None and header_value(headers, ROUTER_HEADER) is None:
        return ""
    return str(error)


def classify_response(
    status_code: int, body: Any, headers: Mapping[str, str] | None = None
) -> Outcome:
    """The outcome of a request that got an HTTP answer (see the module table)."""
    return _outcome(status_code, router_error(status_code, body, headers))


def _outcome(status_code: int, router: str) -> Outcome:
    if router in _ROUTER_NEVER_SENT:
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


def header_value(headers: Mapping[str, str] | None, name: str) -> str | None:
    """The value of header ``name`` in ``headers`` (any case), None when absent.

    >>> header_value({"location": "/jobs/7"}, "Location")
    '/jobs/7'
    """
    if not headers:
        return None
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if value is None:
        wanted = name.lower()
        value = next((v for k, v in headers.items() if k.lower() == wanted), None)
    return value


def state_of(
    kind: Kind, contract: Contract, status_code: int, raw_status: str, *, json_body: bool = True
) -> str:
    """The canonical state (the ``body_status`` column) of a status or results answer.

    Codes first (``[codes]``: refused; status_not_found; results_not_found,
    results_pending), then the status word (``[words]``); a results 2xx with a JSON
    body without a word is ``complete``. "" when no state can be read, or the word
    is unknown.

    >>> c = Contract()
    >>> [state_of("results", c, code, "") for code in (200, 202, 404, 403, 500)]
    ['complete', 'scanning', 'not_found', 'refused', '']
    >>> state_of("status", c, 200, "queued"), state_of("status", c, 200, "scanning")
    ('', 'scanning')
    """
    codes = contract.codes
    if kind == "discover":
        return ""
    if status_code in codes.refused:
        return "refused"
    if kind == "status" and status_code in codes.status_not_found:
        return "not_found"
    if kind == "results":
        if status_code in codes.results_not_found:
            return "not_found"
        if status_code in codes.results_pending:
            return "scanning"
    if raw_status:
        return contract.words.state(raw_status)
    if kind == "results" and json_body and 200 <= status_code < 300:
        return "complete"
    return ""


def v1_state(kind: str, http_status: int, body_status: str) -> str:
    """The canonical state of an answer recorded in history format 1 (before canonical
    words): a status word stays when it is canonical; results codes map as the
    reference's (200 complete, 202 scanning, 404 not_found, 401/403 refused).

    >>> v1_state("results", 202, ""), v1_state("status", 200, "scanning")
    ('scanning', 'scanning')
    >>> v1_state("status", 200, "done")
    ''
    """
    if kind == "status":
        return body_status if body_status in STATES else ""
    if kind == "results":
        return _V1_RESULTS.get(http_status, "")
    return ""


_V1_RESULTS = {200: "complete", 202: "scanning", 404: "not_found", 401: "refused", 403: "refused"}


def never_issued_id() -> str:
    """A fresh id the service never issued, for the probes of a service without tenants.

    >>> never_issued_id().startswith(NEVER_ISSUED_PREFIX), len(never_issued_id())
    (True, 36)
    """
    return NEVER_ISSUED_PREFIX + uuid.uuid4().hex[:12]


def completion_from_answer(
    kind: Kind,
    contract: Contract,
    status_code: int,
    body: Any,
    *,
    headers: Mapping[str, str] | None = None,
    pin: int | None = None,
    error: str = "",
) -> Completion:
    """The :class:`Completion` of a request that got an HTTP answer.

    ``headers`` are the answer's headers (any mapping; None when unknown). The
    worker is the contract's ``worker_header`` (else the router's
    ``X-Scanproof-Worker``) when it is a number; a pinned request is credited to
    its pinned worker when neither is. Every value is read at the contract's dotted
    paths; see :func:`state_of` for ``body_status``.
    """
    c = contract
    worker = _worker(headers, c.worker_header)
    if pin is not None and worker < 0:
        worker = pin
    router = router_error(status_code, body, headers)
    if router == _ROUTER_DROPPED:
        # The router sent it and the worker dropped it: no answer of the service.
        detail = str(body.get("detail", ""))[:200]
        return Completion(outcome="info", worker=worker, error=f"router: {detail}")
    raw = _word(at_path(body, c.status_field))
    progress = at_path(body, c.progress_field)
    prog: dict[str, Any] = progress if isinstance(progress, dict) else {}
    items = at_path(body, c.items_field)
    if kind == "status" and c.results_field:  # the status answer carries the result
        items = _result_items(at_path(body, c.results_field))
    return Completion(
        outcome=_outcome(status_code, router),
        worker=worker,
        http_status=status_code,
        body_status=state_of(kind, c, status_code, raw, json_body=error != NOT_JSON),
        raw_status=raw,
        completed=_int(at_path(prog, c.completed_field)),
        total=_int(at_path(prog, c.total_field)),
        found=_int(at_path(prog, c.found_field)),
        has_progress=isinstance(progress, dict),
        items=len(items) if isinstance(items, list) else -1,
        body_scan_ids=_ids(body, items, c.scan_id_field),
        body_user_ids=_ids(body, items, c.user_id_field),
        scan_id=_discovered_id(kind, c, status_code, body, headers),
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


def _worker(headers: Mapping[str, str] | None, name: str) -> int:
    for header in (name, WORKER_HEADER):
        value = header_value(headers, header)
        if value is not None and value.strip().isdigit():
            return int(value)
    return -1


def _word(value: Any) -> str:
    """A status value as a word: a string, or a number's JSON text ("" for the rest)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return json.dumps(value)
    return ""


def _id_text(value: Any) -> str:
    """An id as text: a non-empty string, or an integer's digits ("" for the rest)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _ids(body: Any, items: Any, path: str) -> str:
    """Every value at ``path`` in ``body`` and in each entry of ``items``, sorted, joined."""
    if not path:
        return ""
    found: set[str] = set()
    candidates = [body]
    if isinstance(items, list):
        candidates += [e for e in items if isinstance(e, dict)]
    for entry in candidates:
        value = _id_text(at_path(entry, path))
        if value:
            found.add(value)
    return ",".join(sorted(found))


def _result_items(value: Any) -> Any:
    """A result carried by the status answer as items: a list as it is, any other
    value (an object, a number, a string) as one item, None (no result) as none.

    >>> _result_items([1, 2]), _result_items(42), _result_items(None)
    ([1, 2], [42], None)
    """
    if value is None or isinstance(value, list):
        return value
    return [value]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def _discovered_id(
    kind: Kind, contract: Contract, status_code: int, body: Any, headers: Mapping[str, str] | None
) -> str:
    """The new scan's id in an accepting discover answer (a code of ``codes.accepted``,
    any 2xx when that is empty), where ``discover_id`` says."""
    if kind != "discover":
        return ""
    accepted = contract.codes.accepted
    if not (status_code in accepted if accepted else 200 <= status_code < 300):
        return ""
    source = contract.discover_id
    if source.startswith(HEADER_ID):
        value = header_value(headers, source[len(HEADER_ID) :].strip())
        if not value:
            return ""
        path = value.split("#", 1)[0].split("?", 1)[0].rstrip("/")
        return path.rsplit("/", 1)[-1]
    return _id_text(at_path(body, source))
