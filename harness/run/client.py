"""The recording client: every request becomes one op in the history.

The invoke is written before the request is sent; the completion records the
worker that answered (the contract's ``worker_header``), the HTTP status, the
answer's canonical state and raw status word, its progress, every scan id and
user id in it (all read as the contract says), and an
outcome from :func:`classify_exception` / :func:`classify_response`: the one
table that says what a failure means, in :mod:`harness.history.outcomes` (shared with
the locust user). The client never retries.

>>> import asyncio, httpx  # doctest: +SKIP
>>> async def main():
...     with HistoryWriter(run_dir, proc="driver-0") as rec:
...         async with ScanClient("http://127.0.0.1:8000", rec) as client:
...             scan_id = await client.discover("alice")
...             obs = await client.status("alice", scan_id)
...             print(obs.body_status, obs.completed, obs.total)
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from harness.errors import InfrastructureError
from harness.history import outcomes as _answers
from harness.history.outcomes import (
    DEFAULT_TIMEOUT_S,
    ROUTER_UNAVAILABLE,
    WORKER_HEADER,
    classify_response,
    completion_from_answer,
    completion_from_exception,
    never_issued_id,
)
from harness.history.schema import Kind, Outcome
from harness.history.tables import Completion, HistoryWriter
from harness.targets.contract import Contract

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ROUTER_UNAVAILABLE",
    "WORKER_HEADER",
    "RateLimit",
    "ScanClient",
    "classify_exception",
    "classify_response",
    "read_meta",
]

_HTTPX_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def read_meta(base_url: str, path: str) -> dict[str, Any]:
    """The app's self-description at ``path``: what it states of its clock, deadlines
    and flags. Empty when there is no path or no 200 (a 404: the app has no meta
    endpoint). Not recorded as an op. A transport error, or a 200 that is not a JSON
    object (an HTML page, a list), is infrastructure trouble naming the endpoint, the
    answer and the fix."""
    if not path:
        return {}
    url = base_url + path
    try:
        response = httpx.get(url, timeout=5.0)
    except httpx.HTTPError as exc:
        raise InfrastructureError(f"cannot read {path} from the cluster: {exc}") from exc
    if response.status_code != 200:
        return {}
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        kind = response.headers.get("content-type", "no content type")
        raise InfrastructureError(
            f"the app's meta endpoint {url} answered {response.status_code} ({kind}) "
            f'{response.text[:60]!r}, not a JSON object; set meta_path = "" in the '
            "--contract file if the app has no meta endpoint"
        )
    return body


class RateLimit:
    """A token bucket on requests: at most ``rate`` per second on average, ``burst`` at
    once. Every request first awaits :meth:`acquire`; the bound holds however many tasks
    share the client (each call reserves the next free slot).

    >>> bucket = RateLimit(2.0, clock=lambda: 0.0)
    >>> [bucket.reserve() for _ in range(4)]  # delays, at 2/s from a standing start
    [0.0, 0.5, 1.0, 1.5]
    """

    def __init__(
        self, rate: float, *, burst: int = 1, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"rate {rate!r}: must be a finite number of requests per second > 0")
        if burst < 1:
            raise ValueError(f"burst {burst!r}: must be >= 1")
        self.rate = rate
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._tat = -math.inf  # the theoretical arrival time of the next request

    def reserve(self) -> float:
        """Take the next slot; returns how long to wait for it (0: now)."""
        now = self._clock()
        tat = max(self._tat, now)
        self._tat = tat + self._interval
        return max(0.0, tat - self._tolerance - now)

    async def acquire(self) -> None:
        """Wait for the next slot."""
        delay = self.reserve()
        if delay > 0:
            await asyncio.sleep(delay)


def classify_exception(exc: Exception) -> Outcome:
    """The outcome of a request that raised ``exc`` (see the module table)."""
    return _answers.classify_exception(exc, never_sent=_HTTPX_NEVER_SENT)


class ScanClient:
    """An async client for a scan service that records every request.

    ``worker_urls`` lets a request be pinned to one worker (bypassing the
    router); the pinned index is then recorded as the serving worker.
    ``transport`` is the test seam (``httpx.ASGITransport(app)`` runs an app
    in-process); by default a plain transport with no retries. ``max_rps`` bounds
    the requests per second (a :class:`RateLimit` shared by every request).
    ``keep_alive=False`` opens a new connection per request: behind a balancer of
    connections (one gunicorn master, a TCP proxy) a kept-alive connection pins
    its requests to one worker and hides the very bugs of several workers.
    """

    def __init__(
        self,
        base_url: str,
        recorder: HistoryWriter,
        *,
        contract: Contract | None = None,
        worker_urls: Sequence[str] = (),
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_connections: int = 100,
        transport: httpx.AsyncBaseTransport | None = None,
        max_rps: float | None = None,
        keep_alive: bool = True,
    ) -> None:
        self.contract = contract or Contract()
        self.recorder = recorder
        self.worker_urls = tuple(worker_urls)
        self.rate = RateLimit(max_rps) if max_rps else None
        self._headers = {} if keep_alive else {"Connection": "close"}
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(
                max_connections=max_connections,
                max_keepalive_connections=None if keep_alive else 0,
            ),
            # no retries at the transport either: see the module docstring
            transport=transport or httpx.AsyncHTTPTransport(retries=0),
        )

    async def __aenter__(self) -> ScanClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _url(self, path: str, pin: int | None) -> str:
        if pin is None:
            return path
        if not 0 <= pin < len(self.worker_urls):
            raise ValueError(f"pin {pin}: no such worker (have {len(self.worker_urls)})")
        return self.worker_urls[pin].rstrip("/") + path

    async def _call(
        self,
        kind: Kind,
        method: str,
        path: str,
        *,
        tenant: str,
        scan_id: str = "",
        filters: Mapping[str, Any] | None = None,
        pin: int | None = None,
        fail: bool = False,
    ) -> Completion:
        c = self.contract
        filters_json = json.dumps(filters, sort_keys=True) if filters else ""
        if self.rate is not None:
            await self.rate.acquire()  # before the invoke: waiting is not the service's time
        op = self.recorder.invoke(
            kind=kind,
            tenant=tenant,
            scan_id=scan_id,
            filters=filters_json,
            pinned_worker=-1 if pin is None else pin,
        )
        try:
            response = await self._http.request(
                method,
                self._url(path, pin),
                headers={**c.auth(tenant), **self._headers},
                json=c.discover_json(filters, tenant=tenant, fail=fail)
                if kind == "discover"
                else None,
            )
        except Exception as exc:  # every failure is recorded, then judged by the table
            done = completion_from_exception(exc, never_sent=_HTTPX_NEVER_SENT)
            self.recorder.complete(op, done)
            return done
        body, error = _answers.parse_body(response.content)
        done = completion_from_answer(
            kind,
            c,
            response.status_code,
            body,
            headers=response.headers,
            pin=pin,
            error=error,
        )
        self.recorder.complete(op, done)
        return done

    async def discover(
        self,
        tenant: str,
        *,
        filters: Mapping[str, Any] | None = None,
        pin: int | None = None,
        fail: bool = False,
    ) -> str | None:
        """Start a scan; returns its scan id, or None when the service did not accept it.

        ``fail=True`` asks the service to fail this scan (the contract's ``fail_body``).
        """
        done = await self._call(
            "discover",
            self.contract.discover_method,
            self.contract.discover_path,
            tenant=tenant,
            filters=filters,
            pin=pin,
            fail=fail,
        )
        return done.scan_id or None

    async def status(self, tenant: str, scan_id: str, *, pin: int | None = None) -> Completion:
        """Poll a scan's status as ``tenant``."""
        path = self.contract.status_url(scan_id)
        return await self._call("status", "GET", path, tenant=tenant, scan_id=scan_id, pin=pin)

    async def never_issued(self, tenant: str) -> Completion:
        """Poll the status of an id the service never issued (a fresh
        :func:`~harness.history.outcomes.never_issued_id`), as ``tenant``: the probe of
        a service without tenants, whose right answer is the contract's
        ``unknown_id_state``."""
        return await self.status(tenant, never_issued_id())

    async def results(self, tenant: str, scan_id: str, *, pin: int | None = None) -> Completion:
        """Fetch a scan's results as ``tenant``; a contract without a results endpoint
        (``results_path = ""``) has none to fetch (ValueError)."""
        if not self.contract.has_results:
            raise ValueError('results_path = "": the service has no results endpoint')
        path = self.contract.results_url(scan_id)
        return await self._call("results", "GET", path, tenant=tenant, scan_id=scan_id, pin=pin)
