"""Key-to-scan attribution: which scans a lost key names (and so may excuse), by its name alone."""

from __future__ import annotations

import pytest

from harness.faults.attribution import KeyAttribution, Owners
from harness.targets.contract import Contract

REFERENCE = KeyAttribution(Contract())


@pytest.mark.parametrize(
    ("key", "owners"),
    [
        # per-scan keys of the reference service name the scan
        ("opportunity_scan_result:scan_7", Owners(scans=("scan_7",))),
        ("opportunity_scan_lookup:scan_7", Owners(scans=("scan_7",))),
        ("opportunity_scan_result_index:scan_7", Owners(scans=("scan_7",))),
        # a tenant-level key names the tenant, and no scan
        ("opportunity_user_latest_scan:alice", Owners(tenants=("alice",))),
        # sound's keys are <cache key>:<scan id>, so a legacy <user>:<digest> key reads
        # as naming a scan "9f2c": no accepted scan has that id, so it excuses nothing
        ("opportunity_scan_active:alice:9f2c", Owners(scans=("9f2c",))),
        ("opportunity_scan_result:alice:9f2c", Owners(scans=("9f2c",))),
    ],
)
def test_reference_keys_name_what_their_pattern_declares(key: str, owners: Owners) -> None:
    assert REFERENCE.owners([key]) == owners


def test_deleted_result_keys_name_exactly_their_scans() -> None:
    got = REFERENCE.owners(["opportunity_scan_result:scan_2", "opportunity_scan_result:scan_1"])
    assert got == Owners(scans=("scan_1", "scan_2"))


@pytest.mark.parametrize(
    "key",
    [
        "session:42",
        "opportunity_scan_lookup:",  # no scan id
        "opportunity_scan_lookup:scan_7:extra",  # a scan id never holds ':'
        "prefix:opportunity_scan_lookup:scan_7",  # patterns are anchored
        "opportunity_scan_active:alice",  # matches the cache-key pattern, names nothing
    ],
)
def test_keys_that_declare_no_scan_name_no_scan(key: str) -> None:
    assert REFERENCE.owners([key]).scans == ()


def test_no_keys_attribute_nothing() -> None:
    assert REFERENCE.owners([]) == Owners()


def test_the_key_class_limits_the_patterns_used() -> None:
    # a lookup key is not named by the patterns of the result class
    assert REFERENCE.owners(["opportunity_scan_lookup:scan_7"], "result") == Owners()
    assert REFERENCE.owners(["opportunity_scan_lookup:scan_7"], "lookup") == Owners(
        scans=("scan_7",)
    )


def test_a_custom_contract_with_other_key_shapes() -> None:
    contract = Contract(
        keys={
            "result": ("myapp:scan:{scan_id}:result",),
            "latest": ("myapp:tenant:{tenant}:latest",),
            "active": ("myapp:running:{cache_key}",),
            "index": ("myapp:{any}:idx:{scan_id}",),
        }
    )
    attribution = KeyAttribution(contract)
    assert attribution.owners(["myapp:scan:s-1:result"]) == Owners(scans=("s-1",))
    assert attribution.owners(["myapp:tenant:acme:latest"]) == Owners(tenants=("acme",))
    assert attribution.owners(["myapp:running:acme:h"]) == Owners()
    assert attribution.owners(["myapp:v2:eu:idx:s-9"]) == Owners(scans=("s-9",))
    # the reference service's key shapes mean nothing to this contract
    assert attribution.owners(["opportunity_scan_result:scan_7"]) == Owners()


def test_user_id_is_an_alias_of_tenant() -> None:
    contract = Contract(keys={"latest": ("u:{user_id}:latest",)})
    assert KeyAttribution(contract).owners(["u:bob:latest"]) == Owners(tenants=("bob",))


def test_a_placeholder_used_twice_must_match_the_same_text() -> None:
    contract = Contract(keys={"result": ("r:{scan_id}:copy:{scan_id}",)})
    attribution = KeyAttribution(contract)
    assert attribution.owners(["r:s1:copy:s1"]) == Owners(scans=("s1",))
    assert attribution.owners(["r:s1:copy:s2"]) == Owners()


def test_a_contract_without_key_patterns_attributes_nothing() -> None:
    attribution = KeyAttribution(Contract(keys={}))
    assert attribution.owners(["opportunity_scan_result:scan_7"]) == Owners()


def test_every_matching_pattern_that_captures_a_scan_id_names_it() -> None:
    # "x:b:c" matches both; the cache-key pattern names nothing, the other names scan b
    contract = Contract(keys={"active": ("x:{cache_key}",), "result": ("x:{scan_id}:c",)})
    assert KeyAttribution(contract).owners(["x:b:c"]) == Owners(scans=("b",))
