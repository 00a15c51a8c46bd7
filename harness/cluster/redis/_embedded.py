"""Child process of the ``embedded`` backend: fakeredis's TCP server on a loopback port.

Run as ``python -m harness.cluster.redis._embedded PORT`` (0 picks a free port). Prints
``READY <port>`` on stdout once it accepts connections, then serves until killed.
"""

from __future__ import annotations

import sys

from harness.cluster._proc import LOOPBACK, set_pdeathsig, start_parent_watchdog


def main(argv: list[str]) -> int:
    set_pdeathsig()
    start_parent_watchdog()
    from fakeredis import TcpFakeServer

    server = TcpFakeServer((LOOPBACK, int(argv[0])), server_version=(7, 0))
    server.daemon_threads = True
    port = server.server_address[1]
    sys.stdout.write(f"READY {port}\n")
    sys.stdout.flush()
    server.serve_forever(poll_interval=0.5)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
