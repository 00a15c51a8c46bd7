"""The [hooks] table: parsing, placeholders, the refusal of a missing hook, timeouts."""

from __future__ import annotations

import time

import pytest

from harness.errors import UsageError
from harness.faults.hooks import Hooks, check_hooks, hooks_from_mapping, run_hook
from harness.targets.contract import contract_from_mapping


def test_a_contract_reads_its_hooks_table() -> None:
    contract = contract_from_mapping(
        {"hooks": {"worker_kill": "kill-it {worker}", "probe": "http://127.0.0.1:1/pid"}},
        source="c.toml",
    )
    assert contract.hooks.worker_kill == "kill-it {worker}"
    assert contract.hooks.probe == "http://127.0.0.1:1/pid"


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"worker_kil": "x"}, "hooks.worker_kil is not a field"),
        ({"worker_kill": 3}, "hooks.worker_kill must be a string"),
        ({"worker_kill": "kill {pid}"}, "unknown placeholder {pid}"),
        ({"probe": "ftp://x/pid"}, "hooks.probe"),
        ({"timeout_s": 0}, "hooks.timeout_s"),
    ],
)
def test_a_bad_hooks_table_is_one_line_naming_the_field(
    table: dict[str, object], named: str
) -> None:
    with pytest.raises(UsageError) as caught:
        contract_from_mapping({"hooks": table}, source="c.toml")
    message = str(caught.value)
    assert named in message
    assert "\n" not in message
    assert message.startswith("c.toml: ")


def test_placeholders_are_filled_and_the_url_is_shell_quoted() -> None:
    hooks = Hooks(worker_kill="kill-worker {worker} {url} '{print $1}' ${HOME}")
    rendered = hooks.render("worker_kill", worker=3, url="http://h:80/?a=1&b=2")
    assert rendered == "kill-worker 3 'http://h:80/?a=1&b=2' '{print $1}' ${HOME}"
    assert Hooks(deploy="d {worker}").render("deploy", worker=-1, url="http://h") == "d "


def test_a_fault_without_its_hook_is_refused_naming_both() -> None:
    hooks = hooks_from_mapping({"worker_pause": "docker pause w{worker}"})
    check_hooks(hooks, ["delete_keys", "flush"])  # Redis faults need no hook
    with pytest.raises(UsageError, match="fault 'worker_pause' needs hook 'worker_resume'"):
        check_hooks(hooks, ["worker_pause"])
    with pytest.raises(UsageError, match="fault 'worker_kill' needs hook 'worker_kill'"):
        check_hooks(Hooks(), ["worker_kill"])


def test_a_hook_reports_its_exit_status_and_output_tail() -> None:
    done = run_hook("worker_kill", "echo killed 123; echo oops >&2; exit 4", timeout_s=10)
    assert done.exit_code == 4
    assert not done.ok
    assert "killed 123" in done.output
    assert "oops" in done.output
    assert done.describe().startswith("hook worker_kill exit 4 in ")
    assert run_hook("deploy", "true", timeout_s=10).ok


def test_a_hook_past_its_timeout_is_killed_with_its_children() -> None:
    began = time.monotonic()
    done = run_hook("deploy", "echo started; sleep 30 & sleep 30", timeout_s=0.5)
    assert time.monotonic() - began < 10
    assert done.exit_code is None
    assert not done.ok
    assert "started" in done.output
    assert "timed out after" in done.describe()
