"""Contracts from TOML: errors name the file and the field."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from harness.errors import UsageError
from harness.targets.contract import Contract, contract_from_mapping, load_contract


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
    assert c.discover_json({"asset": "BTC"}) == {"filters": {"asset": "BTC"}}
    assert c.discover_json(None, fail=True) == {"filters": {}, "simulate": {"fail_strategy": 0}}
    f = tmp_path / "c.toml"
    f.write_text('filters_field = ""\n[fail_body]\nexplode = true\n')
    mine = load_contract(f)
    assert mine.discover_json({"q": 1}, fail=True) == {"q": 1, "explode": True}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[words]\ncomplete = 3", "words.complete must be a list of strings, got 3"),
        ("[words]\ncomplete = [1]", "words.complete must be a list of strings, got [1]"),
        ("[words]\ncomplete = ['']", "words.complete: '' is not a word"),
        (
            "[words]\ncomplete = ['done']\nfailed = ['done']",
            "'done' is listed under complete and failed",
        ),
        ("[words]\nfinished = ['done']", "words.finished is not a field of [words]"),
        ("words = 'done'", "[words] must be a table"),
        ("[codes]\nrefused = ['403']", "codes.refused must be a list of HTTP codes"),
        ("[codes]\nrefused = [99]", "codes.refused: 99 is not an HTTP status code"),
        (
            "[codes]\nresults_pending = [202]\nresults_not_found = [202]",
            "202 is listed under results_not_found and results_pending",
        ),
        ('status_field = "job..state"', "status_field 'job..state': a dotted path has an empty"),
        ('scan_id_field = ".id"', "scan_id_field '.id': a dotted path has an empty segment"),
        ('status_field = ""', 'status_field "": answers must name their state'),
        ('discover_id = "header:"', "discover_id 'header:': name the header"),
        ('discover_id = "a..b"', "discover_id 'a..b': a dotted path has an empty segment"),
        ('discover_method = "post"', "discover_method 'post': must be one of POST"),
        ("discover_body = 3", "field 'discover_body' must be a table (JSON object), got 3"),
        ("[discover_body]\nq = '{symbols}'", "discover_body.q '{symbols}': unknown placeholder"),
        ('worker_header = " "', "worker_header"),
        ("time_scale = 0", "time_scale 0.0: must be a number > 0"),
        ("scan_s = 'long'", "'scan_s' must be a number of seconds, got 'long'"),
        ("[keys]\nresult = 'r:{scan}'", "keys.result 'r:{scan}': unknown placeholder {scan}"),
    ],
)
def test_bad_job_api_fields_name_the_file_the_field_and_the_fix(
    tmp_path: Path, text: str, message: str
) -> None:
    f = tmp_path / "contract.toml"
    f.write_text(text)
    with pytest.raises(UsageError) as info:
        load_contract(f)
    assert message in str(info.value)
    assert str(info.value).startswith(f"{f}: ")


def test_the_job_api_example_of_the_docs_loads(tmp_path: Path) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "contract.md"
    example = docs.read_text().split("```toml\n", 1)[1].split("```", 1)[0]
    f = tmp_path / "jobs.toml"
    f.write_text(example)
    c = load_contract(f)
    assert (c.discover_id, c.status_field, c.progress_field) == ("header:Location", "job.state", "")
    assert (c.words.state("queued"), c.words.state("error")) == ("scanning", "failed")
    assert c.codes.status_not_found == (404,)
    assert c.key_globs("result") == ("jobs:*:result",)


def test_given_words_and_codes_win_over_the_defaults() -> None:
    # "complete" moved to the running words: the default complete list yields it
    c = contract_from_mapping({"words": {"running": ["scanning", "complete"]}})
    assert (c.words.complete, c.words.state("complete")) == ((), "scanning")
    # 404 means refused: results_not_found's default yields it, the status side is untouched
    c = contract_from_mapping({"codes": {"refused": [401, 403, 404]}})
    assert (c.codes.results_not_found, c.codes.results_pending) == ((), (202,))
    # a status 404 is not found; the results endpoint keeps its own 404
    c = contract_from_mapping({"codes": {"status_not_found": [404]}})
    assert c.codes.results_not_found == (404,)


def test_a_contract_survives_its_json_round_trip() -> None:
    # run.json and `run --driver locust` pass the contract on as JSON
    c = contract_from_mapping(
        {
            "discover_body": {"symbols": ["{symbol}"]},
            "words": {"complete": ["done"]},
            "codes": {"status_not_found": [404]},
            "time_scale": 0.01,
        }
    )
    again = json.loads(json.dumps(dataclasses.asdict(c)))
    assert contract_from_mapping(again, source="SCANPROOF_CONTRACT_JSON") == c
    assert contract_from_mapping(json.loads(json.dumps(dataclasses.asdict(Contract())))) == (
        Contract()
    )


def test_key_globs_know_every_placeholder() -> None:
    c = Contract(keys={"result": ("app:{tenant}:{any}:{scan_id}",)})
    assert c.key_globs("result") == ("app:*:*:*",)
