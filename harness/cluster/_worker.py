"""One worker: an ASGI app served by uvicorn on a reserved loopback port.

Used two ways: forked from the zygote (``harness.cluster._zygote``, the app already
imported) or spawned fresh as ``python -m harness.cluster._worker APP INDEX PORT
STATUS_FD [UDS [INCARNATION]]`` (the ``spawn`` start method, for apps that are not fork-safe).
Either way the worker writes ``ready <index> <pid>`` to the status pipe once
it accepts connections, and exits when its parent dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import socket
import sys
from typing import Any, NoReturn

from harness.cluster._logs import incarnation_header
from harness.cluster._proc import listen_on_reserved, set_pdeathsig, start_parent_watchdog

# Idle keep-alive connections from the router must never be closed by the worker
# (uvicorn's default is 5 s): a request racing that close would get a spurious 502.
_KEEP_ALIVE_SECONDS = 24 * 3600


def load_app(spec: str) -> Any:
    """Import ``module:attr`` (dotted attributes allowed) and return the object."""
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def preload_server_modules() -> None:
    """Import what every worker needs, so a forked worker does not pay for it.

    That includes the websocket protocol: uvicorn's ``ws="auto"`` imports
    ``websockets`` (or ``wsproto``) in ``Config.load()``: about 20 ms of CPU and
    2 MiB of private memory per forked worker when it is not preloaded.
    """
    import uvicorn.lifespan.on
    import uvicorn.protocols.http.httptools_impl
    import uvicorn.protocols.websockets.auto
    import uvloop

    del uvicorn, uvloop


#: Per-worker Redis URLs (space-separated, by worker index), set when the cluster runs
#: with links (:mod:`harness.cluster.link`): each worker gets its own link as REDIS_URL.
WORKER_REDIS_URLS = "SCANPROOF_WORKER_REDIS_URLS"


def use_own_link(index: int) -> None:
    """Point ``REDIS_URL`` at worker ``index``'s own link, when the cluster has links.

    Set before the app's lifespan runs (an app that reads ``REDIS_URL`` at import
    time, in the fork start method, reaches Redis directly instead).
    """
    urls = os.environ.get(WORKER_REDIS_URLS, "").split()
    if index < len(urls):
        os.environ["REDIS_URL"] = urls[index]


def _notify(status_fd: int, message: str) -> None:
    os.write(status_fd, message.encode() + b"\n")


def _listen_unix(path: str) -> socket.socket:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # left by this worker's previous incarnation
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def serve(app: Any, *, index: int, port: int, status_fd: int, uds: str = "") -> NoReturn:
    """Serve ``app`` as worker ``index`` until killed; never returns.

    It listens on loopback ``port`` (its public URL) and, when ``uds`` is given,
    on that Unix socket too: the router's private way in, which costs the
    kernel less per request than loopback TCP.
    """
    import uvicorn
    import uvloop

    os.environ["WORKER_ID"] = str(index)
    use_own_link(index)
    sockets = [listen_on_reserved(port)]
    if uds:
        sockets.append(_listen_unix(uds))

    class _Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            if self.started:
                _notify(status_fd, f"ready {index} {os.getpid()}")

    config = uvicorn.Config(
        app,
        loop="none",
        http="httptools",
        lifespan="auto",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=_KEEP_ALIVE_SECONDS,
        backlog=2048,
    )
    server = _Server(config)
    code = 0
    try:
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            runner.run(server.serve(sockets=sockets))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str]) -> NoReturn:
    """Entry point of the ``spawn`` start method."""
    app_spec, index, port, status_fd = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    uds = argv[4] if len(argv) > 4 else ""
    incarnation = int(argv[5]) if len(argv) > 5 else 1
    set_pdeathsig()
    # The header comes first in the log, before anything the app's import prints.
    os.write(2, incarnation_header(index, incarnation, os.getpid()).encode())
    start_parent_watchdog()
    use_own_link(index)
    app = load_app(app_spec)
    serve(app, index=index, port=port, status_fd=status_fd, uds=uds)


if __name__ == "__main__":
    main(sys.argv[1:])
