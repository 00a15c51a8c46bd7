"""Every known bug and fix of the real scan service, as one frozen dataclass.

Each field is read at exactly one code site (named in its metadata), so a run
record that lists the flags says precisely which code paths ran. Three kinds:

- ``bug``: the root of one failure mechanism F1-F15b (the table in
  docs/reference-service.md). ``True`` reproduces the production code path;
  ``False`` is the sound design.
- ``fix``: one of the six fixes of the merge, or the late read-path client
  re-initialisation. A fix patches a legacy code path, so most fixes only
  have an effect while the bug flag they patch is on.
- ``policy``: a choice with no right answer (the Redis retry policy).

``Flags()`` is the default preset, ``claimed-fix`` (:data:`DEFAULT_PRESET`): the
service as the merge left it, which is also what the app runs when
``REFIMPL_PRESET`` is unset and what ``scanproof run`` tests by default.

``sound`` turns every bug flag off. It keeps only the fixes its own code paths
use (the result-index fallback); the others patch legacy paths that ``sound``
never takes, and leaving them off means each bug flag switched on alone over
``sound`` reopens its mechanism (the sensitivity matrix).

>>> Flags() == PRESETS[DEFAULT_PRESET]
True
>>> flags = resolve_flags("claimed-fix", {"retry_policy": "bounded"})
>>> flags.fix_ownership_validation, flags.retry_policy
(True, 'bounded')
>>> sorted(open_mechanisms(PRESETS["sound"]))
[]
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

RetryPolicyName = Literal["redis-py-default", "bounded"]
RETRY_POLICY_NAMES: tuple[str, ...] = get_args(RetryPolicyName)
MECHANISMS: tuple[str, ...] = (
    "F1", "F2", "F3", "F4", "F5", "F6", "F7", "F8", "F9", "F10",
    "F11", "F12", "F13", "F14", "F15a", "F15b",
)  # fmt: skip


class ConfigError(ValueError):
    """A bad preset, flag name or flag value: the message names it and lists the valid ones."""


def _flag(kind: str, fids: str, site: str, doc: str, default: Any = True) -> Any:
    # The field defaults are the claimed-fix preset: every bug flag on (the default
    # here), the six merge fixes on, the late fix off, redis-py's retries; the fixes
    # and the policy state theirs.
    return field(
        default=default, metadata={"kind": kind, "mechanisms": fids, "site": site, "doc": doc}
    )


@dataclass(frozen=True, kw_only=True)
class Flags:
    """The switches of the reference service (defaults: the ``claimed-fix`` preset)."""

    client_init_on_discover_only: bool = _flag(
        "bug",
        "F1",
        "service.ScanService.read_client",
        "The per-worker Redis client starts None; only /discover and the scan task initialise "
        "it, so status/results on a worker that never served /discover read memory only.",
    )
    unhealthy_client_is_none: bool = _flag(
        "bug",
        "F2",
        "service.ScanService.__init__ (RedisManager none_when_unhealthy)",
        "get_client() hands out None when the health check or circuit breaker says unhealthy; "
        "every write is then skipped silently and reads use memory only.",
    )
    write_group_aborts_on_error: bool = _flag(
        "bug",
        "F3",
        "service.ScanService.__init__ (Store atomic)",
        "Write groups are sequential commands aborted (and swallowed) at the first error, "
        "reads swallow errors as 'missing'; sound uses one MULTI/EXEC and reports errors (503).",
    )
    lookup_written_once_short_ttl: bool = _flag(
        "bug",
        "F4",
        "service.resolution_policy",
        "Lookup keys are written once at scan start with TTL 300 while the result is refreshed "
        "until ~170 s (patched by fix_triple_persistence / fix_lookup_ttl_plus_300).",
    )
    complete_status_without_progress: bool = _flag(
        "bug",
        "F5",
        "reads._complete_status",
        "The complete status body has no progress field (patched by fix_status_progress_metadata).",
    )
    placeholder_zero_total: bool = _flag(
        "bug",
        "F6",
        "service.ScanService._placeholder",
        "The placeholder stores an explicit total_strategies 0 (the default applies only when the "
        "field is missing); force_refresh rewrites it ~5 s in, erasing the 0/N snapshot.",
    )
    snapshots_after_all_strategies: bool = _flag(
        "bug",
        "F7",
        "service.ScanService._run_strategies",
        "Per-strategy snapshots are written only after all strategies finish: 0/N, then a jump.",
    )
    per_worker_read_through_cache: bool = _flag(
        "bug",
        "F8",
        "service.ScanService.__init__ (Memory enabled)",
        "Per-worker memory (result cache, lookup maps) is consulted before Redis, caches what it "
        "reads for up to 300 s and is never invalidated by other workers' writes.",
    )
    one_result_slot_per_filters: bool = _flag(
        "bug",
        "F9",
        "service.ScanService._slot",
        "Results live in one slot per (user, filters): a newer scan overwrites an older one, and "
        "in-flight de-duplication is per worker.",
    )
    early_exit_without_terminal_state: bool = _flag(
        "bug",
        "F10",
        "service.ScanService._early_exit",
        "Exception, cancellation, no strategies and the fresh-cache shortcut end the task without "
        "writing a terminal state: status stays scanning 0/0 until TTL, then not_found.",
    )
    no_scan_liveness: bool = _flag(
        "bug",
        "F11",
        "service.ScanService.__init__ (Liveness)",
        "No liveness: a scan whose worker died reads scanning, then not_found. Sound keeps a "
        "per-worker heartbeat lease and reports such scans as failed.",
    )
    active_flag_per_cache_key: bool = _flag(
        "bug",
        "F12",
        "service.ScanService._active_key",
        "The active flag is keyed by cache_key, so an old scan's cleanup deletes a newer "
        "scan's flag.",
    )
    result_expires_before_lookups: bool = _flag(
        "bug",
        "F13",
        "service.ScanService._complete_ttl_ms",
        "The complete result lives 300 s while its lookups live longer: a cliff for slow pollers. "
        "Sound keeps the result as long as the keys that resolve it.",
    )
    missing_state_reads_as_not_found: bool = _flag(
        "bug",
        "F14",
        "reads._missing_state",
        "A known scan whose result key is gone (evicted) reads scanning/not_found; sound answers "
        "503 while the scan runs and failed (state lost) after.",
    )
    redis_lookup_without_owner_check: bool = _flag(
        "bug",
        "F15a",
        "service.ScanService._owner_check_applies",
        "The Redis lookup path returns any cache_key without an owner check "
        "(patched by fix_ownership_validation).",
    )
    memory_and_fallback_without_owner_check: bool = _flag(
        "bug",
        "F15b",
        "service.ScanService._owner_check_applies",
        "Memory lookups and the result-index fallback return another user's scan unchecked.",
    )

    fix_result_index_fallback: bool = _flag(
        "fix",
        "F4,F14",
        "service.ScanService.resolution_keys",
        "Merge fix 1: also write opportunity_scan_result_index:{scan_id} and read it when the "
        "lookup key is missing.",
        default=True,
    )
    fix_restore_lookup_maps_on_read: bool = _flag(
        "fix",
        "F8",
        "reads._locate",
        "Merge fix 2: a lookup resolved from Redis is copied into the worker's memory maps "
        "(makes F8 and F15b worse: the maps are never invalidated).",
        default=True,
    )
    fix_triple_persistence: bool = _flag(
        "fix",
        "F4",
        "service.resolution_policy",
        "Merge fix 3: lookup, result-index and latest-scan keys are rewritten on every "
        "result write.",
        default=True,
    )
    fix_lookup_ttl_plus_300: bool = _flag(
        "fix",
        "F4",
        "service.resolution_policy",
        "Merge fix 4: lookup TTL = max(ttl, partial_ttl, scan_ttl) + 300 = 600 s.",
        default=True,
    )
    fix_status_progress_metadata: bool = _flag(
        "fix",
        "F5",
        "reads._complete_status",
        "Merge fix 5: the complete status carries progress (DEFAULT_TOTAL_STRATEGIES = 14 when "
        "the payload has no total).",
        default=True,
    )
    fix_ownership_validation: bool = _flag(
        "fix",
        "F15a",
        "service.ScanService._owner_check_applies",
        "Merge fix 6: the Redis lookup path checks that the cache_key belongs to the caller.",
        default=True,
    )
    fix_read_path_client_reinit: bool = _flag(
        "fix",
        "F1",
        "service.ScanService.read_client",
        "Late fix (days after the merge): status and results re-initialise a None client.",
        default=False,
    )

    retry_policy: RetryPolicyName = _flag(  # noqa: RUF009 - field() with metadata
        "policy",
        "F3",
        "service.retry_policy",
        "redis-py-default: 10 retries, jittered exponential backoff 10 ms..1 s, 5 s timeouts "
        "(what redis-py 8 does silently); bounded: 2 retries, 20-100 ms backoff, 1 s timeouts.",
        default="redis-py-default",
    )


FLAG_FIELDS: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(Flags)
FLAG_NAMES: tuple[str, ...] = tuple(f.name for f in FLAG_FIELDS)
_BUGS = tuple(f.name for f in FLAG_FIELDS if f.metadata["kind"] == "bug")
_FIXES = tuple(f.name for f in FLAG_FIELDS if f.metadata["kind"] == "fix")
_MERGE_FIXES = (
    "fix_result_index_fallback",
    "fix_restore_lookup_maps_on_read",
    "fix_triple_persistence",
    "fix_lookup_ttl_plus_300",
    "fix_status_progress_metadata",
    "fix_ownership_validation",
)
_CLAIMED = Flags()  # the field defaults
_NO_MERGE_FIXES: dict[str, Any] = dict.fromkeys(_MERGE_FIXES, False)

PRESETS: dict[str, Flags] = {
    # main before the merge: every bug on, no fix, redis-py's default retries
    "pre-fix": dataclasses.replace(_CLAIMED, **_NO_MERGE_FIXES),
    # pre-fix plus the six merge fixes
    "claimed-fix": _CLAIMED,
    # claimed-fix plus the read-path client re-initialisation, days later
    "late-fix": dataclasses.replace(_CLAIMED, fix_read_path_client_reinit=True),
    # every bug off; only the fix its own paths use; bounded retries
    "sound": Flags(
        **dict.fromkeys(_BUGS, False),
        **{fix: fix == "fix_result_index_fallback" for fix in _FIXES},
        retry_policy="bounded",
    ),
}
# What Flags() is, what the app runs without REFIMPL_PRESET and what the harness tests.
DEFAULT_PRESET = "claimed-fix"


def flag_problem(name: str, value: object) -> str | None:
    """What is wrong with setting flag ``name`` to ``value`` (listing the valid ones), or None.

    >>> flag_problem("retry_policy", "forever")
    'must be one of redis-py-default, bounded'
    """
    if name not in FLAG_NAMES:
        return f"no such flag; valid flags are {', '.join(FLAG_NAMES)}"
    if name == "retry_policy":
        if value not in RETRY_POLICY_NAMES:
            return f"must be one of {', '.join(RETRY_POLICY_NAMES)}"
    elif not isinstance(value, bool):
        return "must be true or false (a JSON boolean)"
    return None


def resolve_flags(preset: str, overrides: Mapping[str, object] | None = None) -> Flags:
    """The flags of ``preset`` with single flags overridden; raises ConfigError on bad input."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}: valid presets are {', '.join(PRESETS)}")
    overrides = dict(overrides or {})
    for name, value in overrides.items():
        problem = flag_problem(name, value)
        if problem is not None:
            raise ConfigError(f"flag {name}={value!r}: {problem}")
    return dataclasses.replace(PRESETS[preset], **overrides)  # type: ignore[arg-type]


def parse_flag_overrides(text: str) -> dict[str, object]:
    """Parse ``REFIMPL_FLAGS`` (a JSON object of flag name -> value)."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"REFIMPL_FLAGS={text!r} is not JSON ({exc.msg}); "
            'pass an object such as {"no_scan_liveness": true}'
        ) from None
    if not isinstance(parsed, dict):
        raise ConfigError(
            f'REFIMPL_FLAGS={text!r} must be a JSON object like {{"{FLAG_NAMES[0]}": true}}'
        )
    return parsed


def flags_from_env(env: Mapping[str, str] | None = None) -> tuple[str, Flags]:
    """(preset name, flags) from ``REFIMPL_PRESET`` and ``REFIMPL_FLAGS``."""
    env = os.environ if env is None else env
    preset = env.get("REFIMPL_PRESET", DEFAULT_PRESET) or DEFAULT_PRESET
    overrides = parse_flag_overrides(env["REFIMPL_FLAGS"]) if env.get("REFIMPL_FLAGS") else {}
    return preset, resolve_flags(preset, overrides)


def open_mechanisms(flags: Flags) -> set[str]:
    """The F-ids whose failure mechanism is open under ``flags`` (faults permitting)."""
    f = flags
    state = {
        "F1": f.client_init_on_discover_only and not f.fix_read_path_client_reinit,
        "F2": f.unhealthy_client_is_none,
        "F3": f.write_group_aborts_on_error,
        "F4": f.lookup_written_once_short_ttl
        and not (f.fix_triple_persistence or f.fix_lookup_ttl_plus_300),
        "F5": f.complete_status_without_progress and not f.fix_status_progress_metadata,
        "F6": f.placeholder_zero_total,
        "F7": f.snapshots_after_all_strategies,
        "F8": f.per_worker_read_through_cache,
        "F9": f.one_result_slot_per_filters,
        "F10": f.early_exit_without_terminal_state,
        "F11": f.no_scan_liveness,
        "F12": f.active_flag_per_cache_key,
        "F13": f.result_expires_before_lookups,
        "F14": f.missing_state_reads_as_not_found,
        "F15a": f.redis_lookup_without_owner_check and not f.fix_ownership_validation,
        "F15b": f.memory_and_fallback_without_owner_check,
    }
    return {fid for fid, is_open in state.items() if is_open}


@dataclass(frozen=True, kw_only=True)
class FlagInfo:
    """One flag as shown by ``_meta`` and the docs."""

    name: str
    kind: str
    mechanisms: str
    site: str
    doc: str
    value: bool | str


def describe(flags: Flags) -> tuple[FlagInfo, ...]:
    """Every flag with its kind, F-ids, code site, meaning and value under ``flags``."""
    return tuple(
        FlagInfo(
            name=f.name,
            kind=f.metadata["kind"],
            mechanisms=f.metadata["mechanisms"],
            site=f.metadata["site"],
            doc=f.metadata["doc"],
            value=getattr(flags, f.name),
        )
        for f in FLAG_FIELDS
    )
