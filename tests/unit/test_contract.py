"""Contracts from TOML: errors name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.contract import Contract, load_contract
from harness.errors import UsageError


def test_reference_defaults_and_globs() -> None:
    c = Contract()
    assert c.results_url("s1") == "/api/v1/opportunities/results/s1"
    assert c.auth("alice") == {"Authorization": "Bearer alice"}
    assert c.key_globs("lookup") == ("opportunity_scan_lookup:*",)


def test_toml_overrides(tmp_path: Path) -> None:
    f = tmp_path / "c.toml"
    f.write_text(
        'status_path = "/scans/{scan_id}"\nretention_s = 30\n[keys]\nresult = "app:{scan_id}:r"\n'
    )
    c = load_contract(f)
    assert c.status_url("x") == "/scans/x"
    assert c.retention_s == 30.0
    assert c.key_globs("result") == ("app:*:r",)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('stauts_path = "/x/{scan_id}"', "unknown field 'stauts_path'"),
        ('status_path = "/x"', "status_path '/x': must contain {scan_id}"),
        ("retention_s = -1", "retention_s -1.0: must be a number of seconds > 0"),
        ('retention_s = "soon"', "'retention_s' must be a number of seconds"),
        ("[keys]\nresults = 'x'", "unknown key class"),
        ("this is = not toml =", "not valid TOML"),
    ],
)
def test_bad_contracts_name_the_field(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(text)
    with pytest.raises(UsageError, match=None) as info:
        load_contract(f)
    assert message in str(info.value)
    assert str(f) in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read it"):
        load_contract(tmp_path / "nope.toml")


def test_fail_body_is_merged_only_for_failing_scans(tmp_path: Path) -> None:
    c = Contract()
    assert c.discover_body({"asset": "BTC"}) == {"filters": {"asset": "BTC"}}
    assert c.discover_body(None, fail=True) == {"filters": {}, "simulate": {"fail_strategy": 0}}
    f = tmp_path / "c.toml"
    f.write_text('filters_field = ""\n[fail_body]\nexplode = true\n')
    mine = load_contract(f)
    assert mine.discover_body({"q": 1}, fail=True) == {"q": 1, "explode": True}
