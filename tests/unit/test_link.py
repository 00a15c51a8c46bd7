"""Link faults as data: the RESP command framing, scenario validation, the plan's choice
of links. No process is started (the proxy itself is tested in
tests/integration/test_link_faults.py, on redis-server)."""

from __future__ import annotations

import pytest

from harness.cluster.link._control import _via
from harness.cluster.link._main import command_ends
from harness.errors import UsageError
from harness.run.plan import make_plan
from harness.run.scenario import LINK_FAULTS, FaultStep, Scenario, scenario_from_mapping
from scenarios.catalogue import get_scenario

SET = b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\n*x\r\n"  # a value holding RESP-like bytes


def test_commands_are_framed_by_their_lengths_not_by_what_values_hold() -> None:
    assert command_ends(SET) == ([len(SET)], len(SET))


def test_a_pipeline_in_one_chunk_counts_every_command() -> None:
    ping = b"*1\r\n$4\r\nPING\r\n"
    assert command_ends(ping * 3)[0] == [14, 28, 42]


@pytest.mark.parametrize("cut", [1, 5, 12, len(SET) - 1])
def test_a_partial_command_is_not_counted_until_it_is_whole(cut: int) -> None:
    ends, used = command_ends(SET[:cut])
    assert (ends, used) == ([], 0)
    assert command_ends(SET[:cut] + SET[cut:]) == ([len(SET)], len(SET))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"latency_ms": -1.0}, "latency_ms=-1.0: must be a finite number of milliseconds >= 0"),
        ({"jitter_ms": float("inf")}, "jitter_ms=inf: must be a finite number of milliseconds"),
        ({"links": -1}, "links=-1: must be >= 0 (0 means every worker)"),
        ({"commands": -2}, "commands=-2: must be >= 0"),
        ({"direction": "sideways"}, "direction='sideways': valid: both, up, down"),
        ({"duration": 0.0}, "duration=0.0: must be a finite number of service seconds > 0"),
    ],
)
def test_bad_link_fault_parameters_are_refused_naming_the_value(
    fields: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match="link_latency " + message.replace("(", r"\(")[:30]):
        FaultStep(at=0.5, fault="link_latency", **fields)  # type: ignore[arg-type]
    with pytest.raises(UsageError) as info:
        FaultStep(at=0.5, fault="link_latency", **fields)  # type: ignore[arg-type]
    assert message in str(info.value)


def test_a_link_fault_reads_from_toml_fields() -> None:
    scenario = scenario_from_mapping(
        {
            "name": "s",
            "faults": [
                {"at": 0.5, "fault": "link_reset", "commands": 2, "links": 0, "duration": 30.0}
            ],
        },
        source="s.toml",
    )
    (step,) = scenario.faults
    assert (step.fault, step.commands, step.links, step.duration) == ("link_reset", 2, 0, 30.0)


def test_link_faults_are_the_four_named_in_the_docs() -> None:
    assert sorted(LINK_FAULTS) == [
        "link_blackhole",
        "link_latency",
        "link_partition",
        "link_reset",
    ]


def test_the_plan_picks_links_by_the_seed_all_or_from_a_named_worker() -> None:
    scenario = Scenario(
        name="links",
        workers=4,
        faults=(
            FaultStep(at=0.1, fault="link_partition"),
            FaultStep(at=0.2, fault="link_reset", links=0),
            FaultStep(at=0.3, fault="link_latency", worker=3, links=2),
            FaultStep(at=0.4, fault="worker_kill", worker=1),
        ),
    )
    plans = [make_plan(scenario, seed=seed) for seed in range(8)]
    assert plans[0] == make_plan(scenario, seed=0)  # decided by the seed, repeatably
    for plan in plans:
        seeded, every, named, kill = plan.faults
        assert len(seeded.links) == 1
        assert every.links == (0, 1, 2, 3)
        assert named.links == (0, 3)  # worker 3, then the next one round
        assert kill.links == ()
    assert len({plan.faults[0].links for plan in plans}) > 1  # the seed does choose


def test_the_catalogue_has_partition_and_flaky_link_built_on_link_faults() -> None:
    assert {s.fault for s in get_scenario("partition").faults} == {"link_partition"}
    assert {s.fault for s in get_scenario("flaky-link").faults} == {"link_latency", "link_reset"}
    assert all(s.links == 0 for s in get_scenario("flaky-link").faults)


def test_a_link_url_keeps_the_database_and_credentials() -> None:
    assert _via("redis://:pw@10.0.0.5:6380/3?x=1", 41000) == "redis://:pw@127.0.0.1:41000/3?x=1"
