"""The router process: a per-request HTTP/1.1 reverse proxy over keep-alive pools.

Run as ``python -m harness.cluster.router._main POLICY TARGET [TARGET ...]`` by
:class:`harness.cluster.router.Router`, a TARGET being ``HOST:PORT`` or ``unix:PATH``.
It prints ``READY <port>`` on stdout, then serves, and takes control commands
on stdin, one per line, each answered by one line on stdout:

    up <i>          worker i is (back) in service          -> ok
    down <i>        take worker i out of rotation (drain)  -> ok
    policy <name>   round-robin | random | sticky          -> ok
    stats           -> one JSON line: per-worker up/requests/errors

Why it looks like this: on 2 cores the proxy must cost far less CPU per
request than a worker does, so it is callback-based asyncio ``Protocol``s on
uvloop (no coroutine or task per request), frames messages without parsing
them fully, forwards the worker's bytes untouched except for one header
spliced into the response head, and logs nothing per request.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys

from harness.cluster._proc import LOOPBACK, set_pdeathsig, start_parent_watchdog
from harness.cluster.router._pool import POLICIES, Proxy, Worker
from harness.cluster.router._proto import Downstream

__all__ = ["POLICIES", "main"]


class _Control(asyncio.Protocol):
    def __init__(self, proxy: Proxy, done: asyncio.Future[None]) -> None:
        self.proxy = proxy
        self.done = done
        self.pending = b""

    def data_received(self, data: bytes) -> None:
        self.pending += data
        while b"\n" in self.pending:
            line, self.pending = self.pending.split(b"\n", 1)
            try:
                reply = self.proxy.command(line.decode())
            except (ValueError, IndexError) as exc:
                reply = f"error {exc}"
            os.write(1, reply.encode() + b"\n")

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)  # the supervisor closed our stdin: shut down


async def _serve(policy: str, targets: list[str]) -> None:
    loop = asyncio.get_running_loop()
    proxy = Proxy([Worker(i, target) for i, target in enumerate(targets)], policy)
    server = await loop.create_server(
        lambda: Downstream(proxy), LOOPBACK, 0, backlog=4096, reuse_address=True
    )
    port = server.sockets[0].getsockname()[1]
    done: asyncio.Future[None] = loop.create_future()
    await loop.connect_read_pipe(lambda: _Control(proxy, done), sys.stdin.buffer)
    # Objects made so far live forever; keep the collector from rescanning them.
    gc.freeze()
    # Per-request garbage is acyclic; collect the young generation rarely.
    gc.set_threshold(50_000, 50, 100)
    os.write(1, f"READY {port}\n".encode())
    await done
    server.close()


def main(argv: list[str]) -> int:
    set_pdeathsig()
    start_parent_watchdog()
    import uvloop

    policy, targets = argv[0], argv[1:]
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(policy, targets))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
