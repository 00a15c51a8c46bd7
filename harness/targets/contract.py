"""The contract: everything scanproof needs to know to test a scan service.

Endpoint paths, the discover request, the auth header, where each value sits in
the JSON answers (dotted paths), which status words and HTTP codes mean which
state, the live windows and the Redis key patterns the nemesis aims at. The
defaults describe the reference service; a TOML file (``--contract FILE``)
overrides any of them (every field: docs/contract.md):

.. code-block:: toml

    discover_path = "/jobs"
    discover_body = { symbols = ["{symbol}"], owner = "{tenant}" }
    discover_id = "header:Location"
    status_path = "/jobs/{scan_id}"
    status_field = "job.state"
    progress_field = ""
    retention_s = 30.0

    [words]
    running = ["queued", "running"]
    complete = ["done"]

    [keys]
    result = ["jobs:{scan_id}:result"]

>>> Contract().status_url("scan_1")
'/api/v1/opportunities/status/scan_1'
>>> jobs = contract_from_mapping({"words": {"running": ["queued", "running"]}})
>>> jobs.words.state("queued"), jobs.words.state("scanning"), jobs.words.state("done")
('scanning', '', '')
>>> at_path({"job": {"state": "done"}}, "job.state")
'done'
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from harness._toml import read_toml
from harness.errors import UsageError
from harness.faults.hooks import Hooks, hooks_from_mapping

# Key classes the nemesis can aim at; each maps to one or more glob patterns with
# placeholders (KEY_PLACEHOLDERS, each "*" when matching).
# ``queue`` and ``inflight``: a job broker's queue and in-flight lists, keys that belong
# to no single scan (issue 19; the queue faults read which scans their messages name).
KEY_CLASSES = ("result", "lookup", "index", "latest", "active", "queue", "inflight")
KEY_PLACEHOLDERS = ("{scan_id}", "{tenant}", "{user_id}", "{cache_key}", "{any}", "{run}")

_REFERENCE_KEYS: dict[str, tuple[str, ...]] = {
    # one slot per (user, filters) in the legacy design, one per scan in the sound one
    # sound: opportunity_scan_result:<cache key>:<scan id>; a legacy key names no scan
    "result": (
        "opportunity_scan_result:{cache_key}:{scan_id}",
        "opportunity_scan_result:{cache_key}",
        "opportunity_scan_result:{scan_id}",
    ),
    "lookup": ("opportunity_scan_lookup:{scan_id}",),
    "index": ("opportunity_scan_result_index:{scan_id}",),
    "latest": ("opportunity_user_latest_scan:{user_id}",),
    "active": (
        "opportunity_scan_active:{cache_key}:{scan_id}",
        "opportunity_scan_active:{cache_key}",
    ),
}

# The canonical states a status or results answer is recorded as (history column
# body_status); "" is "no state could be read".
# "pending" is "running *or unknown*" (Celery's PENDING, also its answer for an id it
# never saw): judged as unfinished, never as proof that the scan is live or missing.
STATES: Final = ("scanning", "pending", "complete", "failed", "not_found", "refused")
# [words] table key -> the canonical state it names ("running" words read as "scanning").
WORD_STATES: Final = {
    "running": "scanning",
    "pending": "pending",
    "complete": "complete",
    "failed": "failed",
    "not_found": "not_found",
    "refused": "refused",
}
# [codes] lists that may not share a code: the lists one endpoint reads.
_CODE_GROUPS: Final = (
    ("status_not_found", "refused"),
    ("results_not_found", "results_pending", "refused"),
)
DISCOVER_METHODS: Final = ("POST", "PUT", "PATCH", "GET")
# tenancy: "header" (the auth header names a tenant; other tenants are refused) or "none"
# (no tenants: cross_tenant_leak is not applicable; probes ask about never-issued ids).
TENANCIES: Final = ("header", "none")
HEADER_ID: Final = "header:"  # discover_id = "header:Location"
_TEMPLATE_NAMES: Final = ("tenant", "symbol")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Words:
    """The status words of each state, as the service spells them (``[words]``)."""

    running: tuple[str, ...] = ("scanning",)
    pending: tuple[str, ...] = ()
    complete: tuple[str, ...] = ("complete",)
    failed: tuple[str, ...] = ("failed",)
    not_found: tuple[str, ...] = ("not_found",)
    refused: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for name in WORD_STATES:
            for word in getattr(self, name):
                if not isinstance(word, str) or not word:
                    raise UsageError(
                        f"words.{name}: {word!r} is not a word; list non-empty strings"
                    )
                if word in seen and seen[word] != name:
                    raise UsageError(
                        f"words: {word!r} is listed under {seen[word]} and {name}; "
                        "a word names one state: keep it in one list"
                    )
                seen[word] = name

    def state(self, word: str) -> str:
        """The canonical state ``word`` names, "" when it names none."""
        for name, state in WORD_STATES.items():
            if word in getattr(self, name):
                return state
        return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Codes:
    """HTTP codes that mean a state, whatever the body says (``[codes]``)."""

    # discover codes that mean "accepted" (an id is read only from them); (): any 2xx
    accepted: tuple[int, ...] = ()
    status_not_found: tuple[int, ...] = ()
    results_not_found: tuple[int, ...] = (404,)
    results_pending: tuple[int, ...] = (202,)
    refused: tuple[int, ...] = (401, 403)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            for code in getattr(self, f.name):
                if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
                    raise UsageError(
                        f"codes.{f.name}: {code!r} is not an HTTP status code; list numbers "
                        "from 100 to 599"
                    )
        for group in _CODE_GROUPS:
            for i, a in enumerate(group):
                for b in group[i + 1 :]:
                    both = sorted(set(getattr(self, a)) & set(getattr(self, b)))
                    if both:
                        raise UsageError(
                            f"codes: {both[0]} is listed under {a} and {b}; a code means one "
                            "state: keep it in one list"
                        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Contract:
    """How to talk to the service under test and what it promises."""

    discover_path: str = "/api/v1/opportunities/discover"
    discover_method: str = "POST"
    # discover's JSON body template ({tenant}, {symbol}); None: {filters_field: {...}}
    discover_body: Mapping[str, Any] | None = None
    # where a 2xx discover answer names the new scan: a dotted path, or "header:<Name>"
    # (the last path segment of that header). "" = scan_id_field (or "scan_id").
    discover_id: str = ""
    status_path: str = "/api/v1/opportunities/status/{scan_id}"
    results_path: str = "/api/v1/opportunities/results/{scan_id}"
    meta_path: str = "/api/v1/opportunities/_meta"  # "" when the app has none
    auth_header: str = "Authorization"
    auth_template: str = "Bearer {tenant}"
    worker_header: str = "X-Scanproof-Worker"
    # without discover_body, discover's JSON body is {filters_field: {...}};
    # "" sends the filters as the whole body
    filters_field: str = "filters"
    # merged into discover's body for the scans a scenario asks to fail (`failing`);
    # the reference service fails one strategy on request. {} when the app cannot.
    fail_body: Mapping[str, Any] = field(default_factory=lambda: {"simulate": {"fail_strategy": 0}})
    # merged into every discover body after the template/filters: constants the API
    # requires (``{ type = 1 }``)
    discover_fixed: Mapping[str, Any] = field(default_factory=dict)
    # Dotted paths into the JSON answers; "" where the answers carry no such value.
    scan_id_field: str = "scan_id"
    status_field: str = "status"
    progress_field: str = "progress"
    completed_field: str = "strategies_completed"  # the next three: inside progress_field
    total_field: str = "total_strategies"
    found_field: str = "opportunities_found_so_far"
    items_field: str = "opportunities"
    user_id_field: str = "user_id"
    # the id in the status answer only echoes the URL, so it proves nothing (wrong_scan
    # judges no status answer)
    scan_id_echo: bool = False
    # with results_path "": where the status answer carries the result (a list, an
    # object or a scalar); "" when it carries none
    results_field: str = ""
    tenancy: str = "header"
    # tenancy "none": the canonical state the status answer must give for an id the
    # service never issued (Celery: "pending"); any other answer is wrong_scan
    unknown_id_state: str = "not_found"
    words: Words = field(default_factory=Words)
    codes: Codes = field(default_factory=Codes)
    # None: read from the meta endpoint, else required on the command line or here.
    retention_s: float | None = None
    scan_deadline_s: float | None = None
    # The time base (docs/time-base.md): None lets the app's meta or calibration say.
    time_scale: float | None = None
    scan_s: float | None = None
    # After a destructive fault removed a scan's own keys, may the service answer about
    # it wrongly (not_found, a regression)? True: such answers are excused (listed, not
    # counted). False: the service promises to notice lost state (answer failed or an
    # error), so they count. The reference's sound design makes that promise.
    lost_state_excused: bool = True
    keys: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(_REFERENCE_KEYS))
    # --target: the commands that kill, pause, restart or deploy the running deployment
    # (harness.faults.hooks); empty when scanproof starts the workers itself.
    hooks: Hooks = field(default_factory=Hooks)

    def __post_init__(self) -> None:
        for name in ("status_path", "results_path"):
            if name == "results_path" and not self.results_path:
                continue  # no results endpoint: the status answer carries the result
            if "{scan_id}" not in getattr(self, name):
                raise UsageError(
                    f"contract {name} {getattr(self, name)!r}: must contain {{scan_id}}"
                )
        if "{tenant}" not in self.auth_template:
            raise UsageError(
                f"contract auth_template {self.auth_template!r}: must contain {{tenant}}"
            )
        for name in ("retention_s", "scan_deadline_s", "time_scale", "scan_s"):
            value = getattr(self, name)
            unit = "a number" if name == "time_scale" else "a number of seconds"
            if value is not None and not value > 0:
                raise UsageError(f"contract {name} {value!r}: must be {unit} > 0")
            if value is not None and not math.isfinite(value):
                raise UsageError(f"contract {name} {value!r}: must be a finite {unit[2:]}")
        if self.discover_method not in DISCOVER_METHODS:
            raise UsageError(
                f"contract discover_method {self.discover_method!r}: must be one of "
                f"{', '.join(DISCOVER_METHODS)}"
            )
        if not self.worker_header.strip():
            raise UsageError('contract worker_header "": name a header, e.g. "X-Scanproof-Worker"')
        if not self.status_field:
            raise UsageError(
                'contract status_field "": answers must name their state somewhere; '
                'give its dotted path, e.g. "status" or "job.state"'
            )
        for name in (
            "scan_id_field",
            "status_field",
            "progress_field",
            "completed_field",
            "total_field",
            "found_field",
            "items_field",
            "user_id_field",
            "results_field",
        ):
            _check_path(name, getattr(self, name))
        if self.tenancy not in TENANCIES:
            raise UsageError(
                f"contract tenancy {self.tenancy!r}: must be one of {', '.join(TENANCIES)} "
                '("none": the service has no tenants)'
            )
        if self.unknown_id_state not in STATES:
            raise UsageError(
                f"contract unknown_id_state {self.unknown_id_state!r}: name the canonical "
                f"state of the answer about a never-issued id, one of {', '.join(STATES)}"
            )
        if not self.discover_id:
            object.__setattr__(self, "discover_id", self.scan_id_field or "scan_id")
        if self.discover_id.startswith(HEADER_ID):
            if not self.discover_id[len(HEADER_ID) :].strip():
                raise UsageError(
                    f"contract discover_id {self.discover_id!r}: name the header after "
                    '"header:", e.g. "header:Location"'
                )
        else:
            _check_path("discover_id", self.discover_id)
        if self.discover_body is not None:
            _check_template(self.discover_body, "discover_body")
        unknown = set(self.keys) - set(KEY_CLASSES)
        if unknown:
            raise UsageError(
                f"contract keys {sorted(unknown)}: unknown key class; "
                f"valid: {', '.join(KEY_CLASSES)}"
            )
        for key_class, patterns in self.keys.items():
            for pattern in patterns:
                for found in _PLACEHOLDER.findall(pattern):
                    if "{" + found + "}" not in KEY_PLACEHOLDERS:
                        raise UsageError(
                            f"contract keys.{key_class} {pattern!r}: unknown placeholder "
                            f"{{{found}}}; valid: {', '.join(KEY_PLACEHOLDERS)}"
                        )

    def status_url(self, scan_id: str) -> str:
        return self.status_path.replace("{scan_id}", scan_id)

    def results_url(self, scan_id: str) -> str:
        return self.results_path.replace("{scan_id}", scan_id)

    @property
    def has_results(self) -> bool:
        """The service has a results endpoint (``results_path`` is not "")."""
        return bool(self.results_path)

    @property
    def tenants(self) -> bool:
        """The service has tenants (``tenancy = "header"``)."""
        return self.tenancy != "none"

    def discover_json(
        self, filters: Mapping[str, Any] | None, *, tenant: str = "", fail: bool = False
    ) -> Any:
        """The JSON body of a discover request (None: send none); ``fail`` adds
        :attr:`fail_body`. With :attr:`discover_body` the template is filled in:
        ``{tenant}`` and ``{symbol}`` (the ``asset`` filter) in its strings.
        :attr:`discover_fixed` is merged in last (before ``fail_body``).

        >>> Contract().discover_json({"asset": "BTC"})
        {'filters': {'asset': 'BTC'}}
        >>> jobs = Contract(discover_body={"symbols": ["{symbol}"], "owner": "{tenant}"})
        >>> jobs.discover_json({"asset": "ETH"}, tenant="alice")
        {'symbols': ['ETH'], 'owner': 'alice'}
        >>> jobs.discover_json(None, tenant="alice")
        {'symbols': [], 'owner': 'alice'}
        >>> Contract(filters_field="", discover_fixed={"type": 1}).discover_json(None)
        {'type': 1}
        """
        if self.discover_method == "GET":
            return None
        body: Any
        if self.discover_body is not None:
            symbol = (filters or {}).get("asset")
            body = _fill(self.discover_body, tenant, None if symbol is None else str(symbol))
        elif self.filters_field:
            body = {self.filters_field: dict(filters or {})}
        else:
            body = dict(filters or {})
        if isinstance(body, dict):
            body.update(self.discover_fixed)
        if fail and isinstance(body, dict):
            body.update(self.fail_body)
        return body

    def auth(self, tenant: str) -> dict[str, str]:
        return {self.auth_header: self.auth_template.replace("{tenant}", tenant)}

    def key_globs(self, key_class: str) -> tuple[str, ...]:
        """Glob patterns (for SCAN MATCH) of one key class."""
        if key_class not in KEY_CLASSES:
            raise UsageError(f"key class {key_class!r}: valid: {', '.join(KEY_CLASSES)}")
        globs = []
        for pattern in self.keys.get(key_class, ()):
            for placeholder in KEY_PLACEHOLDERS:
                pattern = pattern.replace(placeholder, "*")
            globs.append(pattern)
        return tuple(globs)


_MISSING: Final = object()


def at_path(value: Any, path: str) -> Any:
    """The value at a dotted ``path`` inside a JSON ``value``; None when it is not there
    (or ``path`` is ""). A segment of digits indexes a list.

    >>> at_path({"data": {"items": [{"id": 7}]}}, "data.items.0.id")
    7
    >>> at_path({"data": None}, "data.progress") is None
    True
    """
    if not path:
        return None
    for segment in path.split("."):
        if isinstance(value, dict):
            value = value.get(segment, _MISSING)
        elif isinstance(value, list) and segment.isdigit() and int(segment) < len(value):
            value = value[int(segment)]
        else:
            return None
        if value is _MISSING:
            return None
    return value


def _check_path(name: str, path: str) -> None:
    if path and any(not segment.strip() for segment in path.split(".")):
        raise UsageError(
            f"contract {name} {path!r}: a dotted path has an empty segment; write the keys "
            'joined by single dots, e.g. "job.state"'
        )


def _check_template(value: Any, where: str) -> None:
    if isinstance(value, str):
        for name in _PLACEHOLDER.findall(value):
            if name not in _TEMPLATE_NAMES:
                raise UsageError(
                    f"contract {where} {value!r}: unknown placeholder {{{name}}}; "
                    "valid: {tenant}, {symbol}"
                )
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _check_template(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            _check_template(item, f"{where}[{i}]")


def _fill(value: Any, tenant: str, symbol: str | None) -> Any:
    """``value`` with {tenant}/{symbol} filled in; a list element or object entry that is
    exactly "{symbol}" goes away when there is no symbol (a "{symbol}" inside a longer
    string becomes "")."""
    if isinstance(value, str):
        if value == "{symbol}" and symbol is not None:
            return symbol
        return value.replace("{tenant}", tenant).replace("{symbol}", symbol or "")
    if isinstance(value, Mapping):
        return {
            k: _fill(v, tenant, symbol)
            for k, v in value.items()
            if not (v == "{symbol}" and symbol is None)
        }
    if isinstance(value, list | tuple):
        return [_fill(v, tenant, symbol) for v in value if not (v == "{symbol}" and symbol is None)]
    return value


def load_contract(path: Path) -> Contract:
    """Read a contract TOML file; every error names the file and the field."""
    data = read_toml(path, label="--contract")
    return contract_from_mapping(data, source=str(path))


def _strings(value: Any, where: str, source: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{source}: {where} must be a list of strings, got {value!r}")
    return tuple(value)


def _numbers(value: Any, where: str, source: str) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, list | tuple) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise UsageError(f"{source}: {where} must be a list of HTTP codes, got {value!r}")
    return tuple(value)


def _table(value: Any, name: str, valid: tuple[str, ...], source: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise UsageError(f"{source}: [{name}] must be a table, got {value!r}")
    unknown = sorted(set(value) - set(valid))
    if unknown:
        raise UsageError(
            f"{source}: {name}.{unknown[0]} is not a field of [{name}]; valid: {', '.join(valid)}"
        )
    return value


def _words(value: Any, source: str) -> Words:
    """Given lists win: a default list drops the words the given lists claim."""
    given = {
        name: _strings(v, f"words.{name}", source)
        for name, v in _table(value, "words", tuple(WORD_STATES), source).items()
    }
    claimed = {w for words in given.values() for w in words}
    defaults = Words()
    lists = {
        name: given.get(name, tuple(w for w in getattr(defaults, name) if w not in claimed))
        for name in WORD_STATES
    }
    return Words(**lists)


def _codes(value: Any, source: str) -> Codes:
    """Given lists win: a default list drops the codes that given lists of the same
    endpoint claim (``refused = [401, 403, 404]`` empties results_not_found)."""
    names = tuple(f.name for f in dataclasses.fields(Codes))
    given = {
        name: _numbers(v, f"codes.{name}", source)
        for name, v in _table(value, "codes", names, source).items()
    }
    defaults = Codes()
    lists = {}
    for name in names:
        if name in given:
            lists[name] = given[name]
            continue
        rivals = {other for group in _CODE_GROUPS if name in group for other in group}
        claimed = {c for other in rivals & set(given) for c in given[other]}
        lists[name] = tuple(c for c in getattr(defaults, name) if c not in claimed)
    return Codes(**lists)


_NUMBERS: Final = ("retention_s", "scan_deadline_s", "time_scale", "scan_s")


def contract_from_mapping(data: Mapping[str, Any], *, source: str = "contract") -> Contract:
    """A :class:`Contract` from parsed TOML (or ``dataclasses.asdict`` of one); every
    error names ``source`` and the field."""
    fields = {f.name: f for f in dataclasses.fields(Contract)}
    kwargs: dict[str, Any] = {}
    try:
        for name, value in data.items():
            if name not in fields:
                raise UsageError(
                    f"{source}: unknown field {name!r}; valid fields: {', '.join(sorted(fields))}"
                )
            if name == "keys":
                if not isinstance(value, Mapping):
                    raise UsageError(
                        f"{source}: field 'keys' must be a table of key class -> patterns"
                    )
                kwargs[name] = {
                    cls: _strings(patterns, f"keys.{cls}", source)
                    for cls, patterns in value.items()
                }
            elif name == "words":
                kwargs[name] = _words(value, source)
            elif name == "hooks":
                kwargs[name] = hooks_from_mapping(value, source=source)
            elif name == "codes":
                kwargs[name] = _codes(value, source)
            elif name in ("fail_body", "discover_body", "discover_fixed"):
                if value is None and name == "discover_body":
                    continue
                if not isinstance(value, Mapping):
                    raise UsageError(
                        f"{source}: field {name!r} must be a table (JSON object), got {value!r}"
                    )
                kwargs[name] = dict(value)
            elif name in ("lost_state_excused", "scan_id_echo"):
                if not isinstance(value, bool):
                    raise UsageError(
                        f"{source}: field {name!r} must be true or false, got {value!r}"
                    )
                kwargs[name] = value
            elif name in _NUMBERS:
                if value is None:
                    continue
                if isinstance(value, bool) or not isinstance(value, int | float):
                    what = "a number" if name == "time_scale" else "a number of seconds"
                    raise UsageError(f"{source}: field {name!r} must be {what}, got {value!r}")
                kwargs[name] = float(value)
            else:
                if not isinstance(value, str):
                    raise UsageError(f"{source}: field {name!r} must be a string, got {value!r}")
                kwargs[name] = value
        return Contract(**kwargs)
    except UsageError as exc:
        message = str(exc)
        if message.startswith(f"{source}: "):
            raise
        raise UsageError(f"{source}: {message}") from exc
