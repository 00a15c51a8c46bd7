"""Replay files: the format explore writes and replay reads; bad input is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.explore.steps import ReplayFile, Step, dumps_replay, load_replay, parse_replay

F1 = ReplayFile(
    name="f1",
    found=("status_not_found",),
    steps=(Step(rule="discover", tenant=0, pin=0), Step(rule="status", scan=0, pin=1)),
)


def test_written_file_reads_back_identical(tmp_path: Path) -> None:
    path = tmp_path / "shrunk.toml"
    path.write_text(dumps_replay(F1))
    assert load_replay(path) == F1


def test_every_rule_round_trips() -> None:
    steps = (
        Step(rule="discover", tenant=1, pin=-1, filters="BTC"),
        Step(rule="probe", scan=0, tenant=1, pin=2),
        Step(rule="wait_complete", scan=0, pin=0),
        Step(rule="wait", seconds=30.0),
        Step(rule="expire_keys", key_class="index"),
        Step(rule="kill", worker=3, seconds=10.0),
        Step(rule="deploy", rolling=True, graceful=True),
        Step(rule="redis_stall", seconds=5.0),
    )
    replay = ReplayFile(name="all", steps=steps)
    assert parse_replay(dumps_replay(replay), source="all.toml") == replay


BAD = {
    "unknown rule": ('[[steps]]\nrule = "explode"\n', "rule 'explode' is unknown"),
    "field of another rule": (
        '[[steps]]\nrule = "status"\nseconds = 3.0\n',
        "field 'seconds' does not apply to rule 'status'",
    ),
    "pin beyond workers": (
        'workers = 2\n[[steps]]\nrule = "status"\npin = 3\n',
        "pin=3 but workers = 2",
    ),
    "wrong type": ('[[steps]]\nrule = "wait"\nseconds = "long"\n', "must be float"),
    "no steps": ('name = "x"\n', "no [[steps]]"),
    "bad key class": (
        '[[steps]]\nrule = "delete_keys"\nkey_class = "everything"\n',
        "key_class='everything'",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_file_is_one_line_naming_the_field(case: str) -> None:
    text, expected = BAD[case]
    with pytest.raises(UsageError) as info:
        parse_replay(text, source="bad.toml")
    message = str(info.value)
    assert expected in message
    assert message.startswith("bad.toml")
    assert "\n" not in message


def test_missing_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"nope\.toml: cannot read it"):
        load_replay(tmp_path / "nope.toml")
