"""The contract: everything scanproof needs to know to test a scan service.

Endpoint paths, the auth header, the JSON field names, the live windows and the
Redis key patterns the nemesis aims at. The defaults describe the reference
service; a TOML file (``--contract FILE``) overrides any of them:

.. code-block:: toml

    discover_path = "/api/scans"
    status_path = "/api/scans/{scan_id}"
    results_path = "/api/scans/{scan_id}/results"
    auth_template = "Token {tenant}"
    retention_s = 30.0

    [keys]
    result = ["myapp:scan:{scan_id}:result"]

>>> Contract().status_url("scan_1")
'/api/v1/opportunities/status/scan_1'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._toml import read_toml
from harness.errors import UsageError

# Key classes the nemesis can aim at; each maps to one or more glob patterns with
# placeholders {scan_id}, {cache_key} or {user_id} (which become "*" when matching).
KEY_CLASSES = ("result", "lookup", "index", "latest", "active")

_REFERENCE_KEYS: dict[str, tuple[str, ...]] = {
    # one slot per (user, filters) in the legacy design, one per scan in the sound one
    "result": ("opportunity_scan_result:{cache_key}", "opportunity_scan_result:{scan_id}"),
    "lookup": ("opportunity_scan_lookup:{scan_id}",),
    "index": ("opportunity_scan_result_index:{scan_id}",),
    "latest": ("opportunity_user_latest_scan:{user_id}",),
    "active": ("opportunity_scan_active:{cache_key}",),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Contract:
    """How to talk to the service under test and what it promises."""

    discover_path: str = "/api/v1/opportunities/discover"
    status_path: str = "/api/v1/opportunities/status/{scan_id}"
    results_path: str = "/api/v1/opportunities/results/{scan_id}"
    meta_path: str = "/api/v1/opportunities/_meta"  # "" when the app has none
    auth_header: str = "Authorization"
    auth_template: str = "Bearer {tenant}"
    # discover's JSON body is {filters_field: {...}}; "" sends the filters as the whole body
    filters_field: str = "filters"
    # merged into discover's body for the scans a scenario asks to fail (`failing`);
    # the reference service fails one strategy on request. {} when the app cannot.
    fail_body: Mapping[str, Any] = field(default_factory=lambda: {"simulate": {"fail_strategy": 0}})
    scan_id_field: str = "scan_id"
    status_field: str = "status"
    progress_field: str = "progress"
    completed_field: str = "strategies_completed"
    total_field: str = "total_strategies"
    found_field: str = "opportunities_found_so_far"
    items_field: str = "opportunities"
    user_id_field: str = "user_id"
    # None: read from the meta endpoint, else required on the command line or here.
    retention_s: float | None = None
    scan_deadline_s: float | None = None
    keys: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(_REFERENCE_KEYS))

    def __post_init__(self) -> None:
        for name in ("status_path", "results_path"):
            if "{scan_id}" not in getattr(self, name):
                raise UsageError(
                    f"contract {name} {getattr(self, name)!r}: must contain {{scan_id}}"
                )
        if "{tenant}" not in self.auth_template:
            raise UsageError(
                f"contract auth_template {self.auth_template!r}: must contain {{tenant}}"
            )
        for name in ("retention_s", "scan_deadline_s"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise UsageError(f"contract {name} {value!r}: must be a number of seconds > 0")
        unknown = set(self.keys) - set(KEY_CLASSES)
        if unknown:
            raise UsageError(
                f"contract keys {sorted(unknown)}: unknown key class; "
                f"valid: {', '.join(KEY_CLASSES)}"
            )

    def status_url(self, scan_id: str) -> str:
        return self.status_path.replace("{scan_id}", scan_id)

    def results_url(self, scan_id: str) -> str:
        return self.results_path.replace("{scan_id}", scan_id)

    def discover_body(
        self, filters: Mapping[str, Any] | None, *, fail: bool = False
    ) -> dict[str, Any]:
        """The JSON body of a discover request; ``fail`` adds :attr:`fail_body`."""
        body = (
            dict(filters or {})
            if not self.filters_field
            else {self.filters_field: dict(filters or {})}
        )
        if fail:
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
            for placeholder in ("{scan_id}", "{cache_key}", "{user_id}"):
                pattern = pattern.replace(placeholder, "*")
            globs.append(pattern)
        return tuple(globs)


def load_contract(path: Path) -> Contract:
    """Read a contract TOML file; every error names the file and the field."""
    data = read_toml(path, label="--contract")
    return contract_from_mapping(data, source=str(path))


def contract_from_mapping(data: Mapping[str, Any], *, source: str = "contract") -> Contract:
    fields = {f.name: f for f in dataclasses.fields(Contract)}
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name not in fields:
            raise UsageError(
                f"{source}: unknown field {name!r}; valid fields: {', '.join(sorted(fields))}"
            )
        if name == "keys":
            if not isinstance(value, Mapping):
                raise UsageError(f"{source}: field 'keys' must be a table of key class -> patterns")
            keys: dict[str, tuple[str, ...]] = {}
            for cls, patterns in value.items():
                if isinstance(patterns, str):
                    patterns = [patterns]
                if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
                    raise UsageError(f"{source}: keys.{cls} must be a string or a list of strings")
                keys[cls] = tuple(patterns)
            kwargs[name] = keys
        elif name == "fail_body":
            if not isinstance(value, Mapping):
                raise UsageError(f"{source}: field 'fail_body' must be a table (JSON object)")
            kwargs[name] = dict(value)
        elif name in ("retention_s", "scan_deadline_s"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise UsageError(
                    f"{source}: field {name!r} must be a number of seconds, got {value!r}"
                )
            kwargs[name] = float(value)
        else:
            if not isinstance(value, str):
                raise UsageError(f"{source}: field {name!r} must be a string, got {value!r}")
            kwargs[name] = value
    try:
        return Contract(**kwargs)
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}") from exc
