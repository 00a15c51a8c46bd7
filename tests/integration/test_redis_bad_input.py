"""Redis trouble a user can meet, named: a port taken while Redis restarts, and a DB
index the server does not have.

The "external" Redis here is a redis-server this test started itself, addressed by
URL: never the machine's Redis on port 6379.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main
from harness.cluster.redis import RedisBackend, open_backend
from harness.errors import InfrastructureError

pytestmark = pytest.mark.processes


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.real_redis)])
def backend(request: pytest.FixtureRequest) -> Iterator[RedisBackend]:
    with open_backend(request.param) as opened:
        yield opened


def test_a_port_taken_during_a_restart_is_named_with_its_holder(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process grabs the port between the kill and the restart: the restart
    fails naming the port and who holds it, and the heal that follows (SIGCONT) says
    Redis is not running, never a bare ``AssertionError``."""
    port = int(backend.url.rsplit(":", 1)[1].split("/")[0])
    squatter = socket.socket()
    kill = backend._kill  # type: ignore[attr-defined]

    def kill_then_take_the_port() -> None:
        kill()
        monkeypatch.setattr(backend, "_kill", kill)
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()

    monkeypatch.setattr(backend, "_kill", kill_then_take_the_port)
    with squatter:
        with pytest.raises(InfrastructureError) as restart:
            backend.restart()
        assert f"port {port} is taken by pid {os.getpid()} (" in str(restart.value)
        assert "\n" not in str(restart.value)
        with pytest.raises(InfrastructureError) as heal:
            backend.unstall()
        assert str(heal.value) == (
            f"{backend.name} Redis on port {port} is not running (it did not come back "
            "after a restart)"
        )


@pytest.mark.real_redis
def test_a_db_index_the_server_lacks_is_bad_usage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_backend("server") as server:
        url = server.url.rsplit("/", 1)[0] + "/16"
        code = main(["run", "--quiet", "--redis", url, "--scenario", "steady", "--out", "run"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err == (
        f"scanproof run: --redis {url}: DB index 16 is out of range for that server (a "
        f"default server has 0..15); use {url[:-3]}/0\n"
    )
    assert list(tmp_path.iterdir()) == []  # refused: no run directory left
