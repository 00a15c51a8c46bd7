"""The locust driver's settings and per-user scan bookkeeping: no locust, no gevent.

Everything the locust user decides (tenant names, filters, probes, when a scan is
over) is here as plain, seeded, testable code; :mod:`scenarios.locust.scan_load`
only sends the requests. Settings come from the environment, so they reach
locust processes started by ``scanproof run --driver locust``, by hand, or on
other machines:

==============================  ===============================================
variable                        meaning (default)
==============================  ===============================================
``SCANPROOF_RUN_DIR``           where shards and run.json go
                                (``scanproof-runs/<time>-locust``)
``SCANPROOF_SEED``              seeds tenants, filters and probes (0)
``SCANPROOF_SCENARIO``          catalogue name or .toml whose workload the users
                                follow (``steady``; faults are the runner's job)
``SCANPROOF_WORKLOAD``          JSON of scenario fields; wins over the scenario
``SCANPROOF_CONTRACT``          contract .toml for another app (reference schema)
``SCANPROOF_TIME_SCALE``        when the app has no meta endpoint (1.0)
``SCANPROOF_RETENTION_S``       yours; beats the contract and the app's meta
``SCANPROOF_SCAN_DEADLINE_S``   yours; beats the contract and the app's meta
``SCANPROOF_KEEP_ALIVE``        ``0``: a new connection per request
                                (``Connection: close``), for a deployment
                                whose kernel balances connections (``1``)
``SCANPROOF_LOCUST_JUDGE``      ``0``: do not run the checkers when locust quits
==============================  ===============================================

In a distributed run the master's settings win: it sends its seed, workload,
contract, time values and keep-alive to every worker that connects
(:func:`settings_message`), so a worker host needs none of these variables.

>>> s = settings_from_env({"SCANPROOF_SEED": "3", "SCANPROOF_RUN_DIR": "/tmp/r"})
>>> s.seed, s.workload.poll_interval
(3, 3.0)
>>> tenant_name(3, worker_index=0, user_index=1) == tenant_name(3, worker_index=0, user_index=1)
True
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.judging.window import JudgingWindow, judging_window
from harness.run.plan import ASSETS, DEFAULT_SCAN_S
from harness.run.scenario import Scenario, load_scenario_file
from harness.targets.contract import Contract, contract_from_mapping, load_contract

TERMINAL = frozenset({"complete", "failed"})
# Locust statistics group requests by kind, not by URL.
REQUEST_NAMES = ("discover", "status", "results", "probe status", "probe results")
STOPPED_MID_REQUEST = "locust stopped the user mid-request"


@dataclass(frozen=True, slots=True)
class Timing:
    """Real seconds, from the environment, the contract or the app's meta endpoint."""

    time_scale: float
    retention_s: float  # how long a finished scan must stay readable (as stated)
    scan_deadline_s: float  # by when a scan must be terminal (as stated, no slack)
    window: JudgingWindow  # how the history is judged: the runner's window


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """What every locust process of one run reads from its environment."""

    run_dir: Path
    seed: int = 0
    workload: Scenario = field(default_factory=lambda: Scenario(name="steady"))
    contract: Contract = field(default_factory=Contract)
    fallback: Mapping[str, float] = field(default_factory=dict)  # time_scale / retention / deadline
    judge: bool = True
    contract_file: str = ""  # SCANPROOF_CONTRACT as given ("" = built-in or JSON)
    keep_alive: bool = True  # False: every request on a new connection


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Read :class:`Settings`; a bad value raises one UsageError naming it."""
    run_dir = env.get("SCANPROOF_RUN_DIR") or str(
        Path("scanproof-runs") / f"{dt.datetime.now():%Y%m%d-%H%M%S}-locust"
    )
    raw_seed = env.get("SCANPROOF_SEED", "0")
    try:
        seed = int(raw_seed)
    except ValueError:
        raise UsageError(f"SCANPROOF_SEED={raw_seed!r}: must be a whole number") from None
    fallback: dict[str, float] = {}
    for name in ("time_scale", "retention_s", "scan_deadline_s"):
        value = env.get(f"SCANPROOF_{name.upper()}")
        if value:
            try:
                fallback[name] = float(value)
            except ValueError:
                raise UsageError(
                    f"SCANPROOF_{name.upper()}={value!r}: must be a number of seconds"
                ) from None
    contract_path = env.get("SCANPROOF_CONTRACT", "")
    contract_json = env.get("SCANPROOF_CONTRACT_JSON")  # from scanproof run --driver locust
    if contract_json:
        contract = contract_from_mapping(
            json.loads(contract_json), source="SCANPROOF_CONTRACT_JSON"
        )
    else:
        contract = load_contract(Path(contract_path)) if contract_path else Contract()
    keep_alive = env.get("SCANPROOF_KEEP_ALIVE", "1")
    if keep_alive not in ("0", "1"):
        raise UsageError(
            f"SCANPROOF_KEEP_ALIVE={keep_alive!r}: must be 1 (reuse connections) or 0 "
            "(a new connection per request)"
        )
    return Settings(
        run_dir=Path(run_dir),
        seed=seed,
        workload=_workload(env),
        contract=contract,
        fallback=fallback,
        judge=env.get("SCANPROOF_LOCUST_JUDGE", "1") != "0",
        contract_file="" if contract_json else contract_path,
        keep_alive=keep_alive == "1",
    )


def contract_mapping(contract: Contract) -> dict[str, Any]:
    """A contract as JSON-able fields (what ``run.json`` records and workers receive)."""
    return {k: v for k, v in dataclasses.asdict(contract).items() if v is not None}


def settings_message(settings: Settings) -> dict[str, Any]:
    """What a master sends each worker: everything that shapes its requests and timing.

    >>> s = Settings(run_dir=Path("m"), seed=7, fallback={"time_scale": 0.5}, keep_alive=False)
    >>> w = adopt_settings(Settings(run_dir=Path("w")), settings_message(s))
    >>> (w.run_dir, w.seed, dict(w.fallback), w.keep_alive, w.contract == s.contract)
    (PosixPath('w'), 7, {'time_scale': 0.5}, False, True)
    """
    return {
        "seed": settings.seed,
        "workload": workload_json(settings.workload),
        "contract": contract_mapping(settings.contract),
        "contract_file": settings.contract_file,
        "fallback": dict(settings.fallback),
        "keep_alive": settings.keep_alive,
    }


def adopt_settings(own: Settings, data: Mapping[str, Any]) -> Settings:
    """A worker's settings once its master's :func:`settings_message` arrived (the run
    directory and judging stay the worker's own: a worker writes and judges nothing)."""
    return dataclasses.replace(
        own,
        seed=int(data["seed"]),
        workload=_workload({"SCANPROOF_WORKLOAD": str(data["workload"])}),
        contract=contract_from_mapping(data["contract"], source="the locust master"),
        contract_file=str(data.get("contract_file", "")),
        fallback={k: float(v) for k, v in data["fallback"].items()},
        keep_alive=bool(data.get("keep_alive", True)),
    )


def _workload(env: Mapping[str, str]) -> Scenario:
    raw = env.get("SCANPROOF_WORKLOAD")
    if raw:
        try:
            fields = json.loads(raw)
            fields.pop("faults", None)
            return Scenario(**fields)
        except (ValueError, TypeError, AttributeError) as exc:
            raise UsageError(f"SCANPROOF_WORKLOAD: not a JSON scenario ({exc})") from None
    name = env.get("SCANPROOF_SCENARIO", "steady")
    if name.endswith(".toml") or "/" in name:
        return load_scenario_file(Path(name))
    from scenarios.catalogue import get_scenario

    return get_scenario(name)


def workload_json(scenario: Scenario) -> str:
    """``SCANPROOF_WORKLOAD`` for a scenario (its faults stay with the runner)."""
    fields = dataclasses.asdict(scenario)
    fields.pop("faults")
    return json.dumps(fields, sort_keys=True)


def resolve_timing(
    meta: Mapping[str, Any],
    fallback: Mapping[str, float],
    *,
    contract: Contract | None = None,
    poll_interval_s: float = Scenario(name="steady").poll_interval,
) -> Timing:
    """Timing from the environment's values, the contract, then the meta endpoint: the
    one judging window of every driver (:func:`harness.judging.window.judging_window`)."""
    window = judging_window(
        meta=meta,
        poll_interval_s=poll_interval_s,
        retention_s=fallback.get("retention_s"),
        scan_deadline_s=fallback.get("scan_deadline_s"),
        time_scale=fallback.get("time_scale"),
        contract_retention_s=contract.retention_s if contract else None,
        contract_deadline_s=contract.scan_deadline_s if contract else None,
        contract_time_scale=_contract_time_scale(contract),
        given_by="environment",
        how_to_set=lambda name: f"SCANPROOF_{name.upper()}",
    )
    return Timing(
        time_scale=window.time_scale.value,
        retention_s=window.stated["retention_s"].value,
        scan_deadline_s=window.stated["scan_deadline_s"].value,
        window=window,
    )


def _contract_time_scale(contract: Contract | None) -> float | None:
    """The contract's ``time_scale``, else its ``scan_s`` over the catalogue's scan
    length (as ``harness.run.runner.contract_time_scale``, without its imports)."""
    if contract is None:
        return None
    if contract.time_scale is not None and contract.time_scale > 0:
        return float(contract.time_scale)
    if contract.scan_s is not None and contract.scan_s > 0:
        return float(contract.scan_s) / DEFAULT_SCAN_S
    return None


def tenant_name(seed: int, *, worker_index: int, user_index: int) -> str:
    """Each locust user is one tenant, named from the seed, its process and its index."""
    rng = random.Random(f"locust:{seed}:{worker_index}:{user_index}")
    return f"lu{worker_index}-{user_index}-{rng.getrandbits(24):06x}"


@dataclass(slots=True)
class LiveScan:
    """One scan a user is following."""

    scan_id: str
    accepted_at: float
    deadline: float  # give up waiting for a terminal state after this
    probe_at_poll: int  # probe another user's scan after this many polls; 0: never
    polls: int = 0
    linger_until: float | None = None  # set when first seen terminal

    def over(self, now: float) -> bool:
        if self.linger_until is not None:
            return now >= self.linger_until
        return now >= self.deadline


class UserPlan:
    """A user's seeded decisions: filters, failing scans, probes, overlaps.

    >>> w = Scenario(name="w", probes=1.0)
    >>> a, b = UserPlan(w, seed=1, tenant="t"), UserPlan(w, seed=1, tenant="t")
    >>> [a.next_filters() for _ in range(5)] == [b.next_filters() for _ in range(5)]
    True
    """

    def __init__(self, workload: Scenario, *, seed: int, tenant: str) -> None:
        self.workload = workload
        self.rng = random.Random(f"{seed}:{tenant}")
        self._filters: dict[str, str] | None = None
        self._scans = 0

    def next_filters(self) -> dict[str, str] | None:
        """Sometimes the previous scan's filters (its result slot), else new ones."""
        if self._scans == 0 or self.rng.random() >= self.workload.same_filters:
            self._filters = None if self.rng.random() < 0.4 else {"asset": self.rng.choice(ASSETS)}
        self._scans += 1
        return dict(self._filters) if self._filters else None

    def next_fail(self) -> bool:
        return self.workload.failing > 0 and self.rng.random() < self.workload.failing

    def probe_at_poll(self) -> int:
        """After which poll of a new scan to probe another user's scan (0: never)."""
        if self.rng.random() < self.workload.probes:
            return self.rng.randint(1, 6)
        return 0

    def overlap(self) -> bool:
        """Start the next scan while the previous one lingers?"""
        return self.rng.random() < self.workload.overlap

    def choose_victim(self, known: list[tuple[str, str]], tenant: str) -> tuple[str, str] | None:
        """Another tenant's (tenant, scan id) to probe, from the process's known scans."""
        others = [k for k in known if k[0] != tenant]
        return self.rng.choice(others) if others else None
