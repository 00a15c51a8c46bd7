"""The step vocabulary shared by exploration and replay, and its TOML file format.

A replay file is a list of ``[[steps]]`` run in order, one at a time; every
request and fault of a step ends before the next step begins. Indices, not
names, say who acts: ``tenant`` indexes the example's fresh tenants, ``scan``
the scans started so far (in the order of their ``discover`` steps, counting
ones the service refused), ``pin``/``worker`` the cluster's workers (``pin =
-1``: through the router). Durations are *service seconds*, multiplied by the
app's time scale when run, so a file replays on any time scale.

.. code-block:: toml

    name = "shrunk-F1"
    workers = 4
    tenants = 2
    [[steps]]
    rule = "discover"
    tenant = 0
    pin = 0
    [[steps]]
    rule = "status"
    scan = 0
    pin = 1

>>> steps = (Step(rule="discover", pin=0), Step(rule="status", scan=0, pin=1))
>>> parse_replay(dumps_replay(ReplayFile(name="x", steps=steps)), source="x").steps == steps
True
"""

from __future__ import annotations

import dataclasses
import hashlib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from harness._toml import field_types, read_text, typed_value
from harness.errors import UsageError
from harness.targets.contract import KEY_CLASSES, Contract

# rule -> the fields it uses (besides ``rule``); every other field must keep its default.
RULE_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    "discover": ("tenant", "pin", "filters"),
    # the owner of ``scan`` starts another: same or other filters, at once or after it ended
    "rediscover": ("scan", "pin", "same", "after"),
    "status": ("scan", "pin"),  # the scan's owner asks
    "results": ("scan", "pin"),
    "probe": ("scan", "tenant", "pin"),  # another tenant asks for status, then results
    "wait_complete": ("scan", "pin"),  # the owner polls until complete or failed (bounded)
    # wait_complete, polling pin and worker in turn; worker first ``seconds`` after pin
    "alternate": ("scan", "pin", "worker", "seconds"),
    "wait": ("seconds",),
    "delete_keys": ("key_class",),
    "expire_keys": ("key_class",),
    "kill": ("worker", "seconds"),  # SIGKILL, down for ``seconds``, restart
    "restart": ("worker",),
    "pause": ("worker", "seconds"),
    "deploy": ("rolling", "graceful"),  # graceful: SIGTERM, in-flight scans cancelled
    "redis_stall": ("seconds",),
}
RULES: Final = tuple(RULE_FIELDS)
FAULT_RULES: Final = frozenset(
    {"delete_keys", "expire_keys", "kill", "restart", "pause", "deploy", "redis_stall"}
)
MAX_SERVICE_SECONDS: Final = 86400.0  # a day: waits past a slow service's retention


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One rule with its arguments; see the module docstring for the meaning of each."""

    rule: str
    tenant: int = 0
    scan: int = 0
    pin: int = -1
    filters: str = ""  # discover: "" (no filters: one shared result slot) or an asset name
    key_class: str = "lookup"
    worker: int = 0
    seconds: float = 0.0
    rolling: bool = False
    graceful: bool = False
    same: bool = False  # rediscover: the first scan's filters (else other ones)
    after: bool = False  # rediscover: once the first scan is finished (else at once)

    def __post_init__(self) -> None:
        if self.rule not in RULE_FIELDS:
            raise UsageError(f"rule {self.rule!r}: unknown; valid: {', '.join(RULES)}")
        for name in ("tenant", "scan", "worker"):
            if getattr(self, name) < 0:
                raise UsageError(f"step {self.rule}: {name}={getattr(self, name)} must be >= 0")
        if self.pin < -1:
            raise UsageError(f"step {self.rule}: pin={self.pin} must be -1 (routed) or a worker")
        if self.key_class not in KEY_CLASSES:
            raise UsageError(
                f"step {self.rule}: key_class={self.key_class!r}; valid: {', '.join(KEY_CLASSES)}"
            )
        if not 0.0 <= self.seconds <= MAX_SERVICE_SECONDS:
            raise UsageError(
                f"step {self.rule}: seconds={self.seconds!r} must be 0..{MAX_SERVICE_SECONDS:g} "
                "service seconds"
            )

    def describe(self) -> str:
        """``discover tenant=0 pin=0``: the rule and the fields it uses."""
        parts = [f"{name}={getattr(self, name)!r}" for name in RULE_FIELDS[self.rule]]
        return " ".join([self.rule, *parts]).replace("'", '"')


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplayFile:
    """A recorded or shrunk schedule; ``workers``/``tenants`` are what it needs at least."""

    name: str
    steps: tuple[Step, ...]
    workers: int = 4
    tenants: int = 2
    description: str = ""
    found: tuple[str, ...] = field(default=())  # the anomaly classes it showed when written
    # What it was found on (informational; replay says when it runs on something else):
    app: str = ""  # MODULE:ATTR
    preset: str = ""  # the reference service's preset ("" for another app)
    contract: str = ""  # the contract file ("" built in)
    contract_digest: str = ""  # harness.explore.steps.contract_digest of that contract
    time_scale: float = 0.0  # real seconds per service second (0: not recorded)
    time_base: str = ""  # where the time scale came from
    scan_deadline_s: float = 0.0  # the judged deadline, real seconds
    retention_s: float = 0.0  # the stated retention, real seconds

    def __post_init__(self) -> None:
        if not self.steps:
            raise UsageError(f"replay {self.name}: no [[steps]]; add at least one step")
        if self.workers < 1 or self.tenants < 1:
            raise UsageError(f"replay {self.name}: workers and tenants must be >= 1")
        for i, step in enumerate(self.steps):
            for name in ("pin", "worker"):
                value = getattr(step, name)
                if name in RULE_FIELDS[step.rule] and value >= self.workers:
                    raise UsageError(
                        f"replay {self.name} steps[{i}]: {name}={value} but workers = "
                        f"{self.workers}; use 0..{self.workers - 1}"
                    )
            if "tenant" in RULE_FIELDS[step.rule] and step.tenant >= self.tenants:
                raise UsageError(
                    f"replay {self.name} steps[{i}]: tenant={step.tenant} but tenants = "
                    f"{self.tenants}; raise tenants"
                )


_DEFAULTS: Final = {f.name: f.default for f in dataclasses.fields(Step)}
_TYPES: Final = field_types(Step)


def _step_from(data: Any, source: str) -> Step:
    if not isinstance(data, Mapping) or "rule" not in data:
        raise UsageError(f'{source}: must be a table with at least rule = "..."')
    rule = data["rule"]
    if rule not in RULE_FIELDS:
        raise UsageError(f"{source}: rule {rule!r} is unknown; valid: {', '.join(RULES)}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name != "rule" and name not in RULE_FIELDS[rule]:
            raise UsageError(
                f"{source}: field {name!r} does not apply to rule {rule!r}; "
                f"it takes: {', '.join(RULE_FIELDS[rule]) or 'nothing'}"
            )
        kwargs[name] = typed_value(source, name, value, _TYPES[name])
    try:
        return Step(**kwargs)
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}") from exc


_FILE_FIELDS: Final[dict[str, type]] = {
    "name": str,
    "description": str,
    "workers": int,
    "tenants": int,
    "app": str,
    "preset": str,
    "contract": str,
    "contract_digest": str,
    "time_scale": float,
    "time_base": str,
    "scan_deadline_s": float,
    "retention_s": float,
}
_ORIGIN: Final = (
    "app",
    "preset",
    "contract",
    "contract_digest",
    "time_scale",
    "time_base",
    "scan_deadline_s",
    "retention_s",
)


def parse_replay(text: str, *, source: str) -> ReplayFile:
    """Parse replay TOML; every error names ``source`` and the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{source}: not valid TOML ({exc})") from exc
    if "steps" not in data:
        raise UsageError(f"{source}: not a replay file (no [[steps]])")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name == "steps":
            if not isinstance(value, list):
                raise UsageError(f"{source}: 'steps' must be an array of tables ([[steps]])")
            kwargs["steps"] = tuple(
                _step_from(v, f"{source} steps[{i}]") for i, v in enumerate(value)
            )
        elif name == "found":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise UsageError(f"{source}: 'found' must be a list of anomaly class names")
            kwargs["found"] = tuple(value)
        elif name in _FILE_FIELDS:
            kwargs[name] = typed_value(source, name, value, _FILE_FIELDS[name])
        else:
            valid = ", ".join(sorted([*_FILE_FIELDS, "found", "steps"]))
            raise UsageError(f"{source}: unknown field {name!r}; valid fields: {valid}")
    kwargs.setdefault("name", Path(source).stem)
    try:
        return ReplayFile(**kwargs)
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}") from exc


def contract_digest(contract: Contract) -> str:
    """A short digest of everything a contract says: two files that say the same
    thing have the same digest.

    >>> contract_digest(Contract()) == contract_digest(Contract())
    True
    """
    text = repr(sorted(dataclasses.asdict(contract).items()))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def load_replay(path: Path) -> ReplayFile:
    """Read and validate a replay file."""
    return parse_replay(read_text(path), source=str(path))


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def dumps_replay(replay: ReplayFile) -> str:
    """The TOML text of ``replay`` (fields at their default are left out)."""
    lines = [f"name = {_toml_value(replay.name)}"]
    if replay.description:
        lines.append(f"description = {_toml_value(replay.description)}")
    lines += [f"workers = {replay.workers}", f"tenants = {replay.tenants}"]
    if replay.found:
        lines.append("found = [" + ", ".join(_toml_value(c) for c in replay.found) + "]")
    for name in _ORIGIN:
        value = getattr(replay, name)
        if value:
            lines.append(f"{name} = {_toml_value(value)}")
    for step in replay.steps:
        lines += ["", "[[steps]]", f"rule = {_toml_value(step.rule)}"]
        for name in RULE_FIELDS[step.rule]:
            value = getattr(step, name)
            if name in ("tenant", "scan", "pin", "worker") or value != _DEFAULTS[name]:
                lines.append(f"{name} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
