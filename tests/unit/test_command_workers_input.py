"""Bad --cmd / --ready-path input is refused before anything starts, in one line."""

from __future__ import annotations

import re

import pytest

from harness import Cluster
from harness.cluster.command import check_command, render
from harness.errors import UsageError


def test_placeholders_are_filled_in() -> None:
    line = render("app -b 127.0.0.1:{port} -n {worker} -r {redis_url}", port=8, worker=1,
                  redis_url="redis://h:1")  # fmt: skip
    assert line == "app -b 127.0.0.1:8 -n 1 -r redis://h:1"


@pytest.mark.parametrize(
    ("cmd", "ready_path", "says"),
    [
        ("node s.js --host {host}", None, "no placeholder {host}"),
        ("no-such-program-xyz --port {port}", None, "'no-such-program-xyz' is not on PATH"),
        ("   ", None, "give the command"),
        ("node s.js", "healthz", "must start with '/'"),
    ],
)
def test_bad_commands_are_refused_with_the_fix(cmd: str, ready_path: str | None, says: str) -> None:
    with pytest.raises(UsageError, match=re.escape(says)):
        check_command(cmd, ready_path)


def test_shell_words_and_paths_are_left_to_the_shell() -> None:
    check_command("cd tests && exec node zoo/node/scan_service.js")
    check_command("./run-me --port {port}")
    check_command("PORT={port} node s.js")


def test_ready_path_without_cmd_is_refused() -> None:
    with pytest.raises(UsageError, match="--ready-path /health: applies to command workers"):
        Cluster.start(ready_path="/health")
