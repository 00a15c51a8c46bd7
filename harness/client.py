"""The recording client: every request becomes one op in the history.

The invoke is written before the request is sent; the completion records the
worker that answered (``X-Scanproof-Worker``), the HTTP status, the body's
status word and progress, every scan id and user id in the body, and an
outcome from :func:`classify_exception` / :func:`classify_response`: the one
table that says what a failure means, in :mod:`harness._answers` (shared with
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

import json
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any

import httpx

from harness import _answers
from harness._answers import (
    DEFAULT_TIMEOUT_S,
    ROUTER_UNAVAILABLE,
    WORKER_HEADER,
    classify_response,
    completion_from_answer,
    completion_from_exception,
)
from harness.contract import Contract
from harness.history import Completion, HistoryWriter
from harness.schema import Kind, Outcome

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "ROUTER_UNAVAILABLE",
    "WORKER_HEADER",
    "ScanClient",
    "classify_exception",
    "classify_response",
]

_HTTPX_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def classify_exception(exc: Exception) -> Outcome:
    """The outcome of a request that raised ``exc`` (see the module table)."""
    return _answers.classify_exception(exc, never_sent=_HTTPX_NEVER_SENT)


class ScanClient:
    """An async client for a scan service that records every request.

    ``worker_urls`` lets a request be pinned to one worker (bypassing the
    router); the pinned index is then recorded as the serving worker.
    ``transport`` is the test seam (``httpx.ASGITransport(app)`` runs an app
    in-process); by default a plain transport with no retries.
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
    ) -> None:
        self.contract = contract or Contract()
        self.recorder = recorder
        self.worker_urls = tuple(worker_urls)
        self._http = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(timeout_s),
            limits=httpx.Limits(max_connections=max_connections),
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
                headers=c.auth(tenant),
                json=c.discover_body(filters, fail=fail) if method == "POST" else None,
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
            worker_header=response.headers.get(WORKER_HEADER),
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
            "POST",
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

    async def results(self, tenant: str, scan_id: str, *, pin: int | None = None) -> Completion:
        """Fetch a scan's results as ``tenant``."""
        path = self.contract.results_url(scan_id)
        return await self._call("results", "GET", path, tenant=tenant, scan_id=scan_id, pin=pin)
