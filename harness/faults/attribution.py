"""Whose data a lost key held: Redis key names back to scan ids, by declaration only.

When a fault destroys keys (deleted, expired), the checkers may excuse the
anomalies it caused, but only for the scans whose own keys it removed. This
module names them from the key *names* and the key patterns of the
:class:`~harness.targets.contract.Contract` alone: it never reads a value and
never guesses from a key's shape. It is pure (no Redis, no processes), so it
can be tested with plain strings.

Placeholders in a contract's key patterns:

- ``{scan_id}`` names the scan (any text without ``:``): the only way a key
  names a scan, and so the only way a lost key excuses anything;
- ``{tenant}`` (alias ``{user_id}``) names a tenant (any text without ``:``),
  recorded for the report; it excuses nothing, because a tenant's key (its
  latest scan, a cache slot) names no scan;
- ``{cache_key}`` (any text, at least one character) and ``{any}`` (any text)
  match without naming anything.

A key may match several patterns; every match that captures a ``{scan_id}``
names that scan. The checkers then excuse only accepted scans, so a capture
that is no scan id (a cache key's hash) excuses nothing.

>>> from harness.targets.contract import Contract
>>> attribution = KeyAttribution(Contract())
>>> attribution.owners(["opportunity_scan_lookup:scan_7"])
Owners(scans=('scan_7',), tenants=())
>>> attribution.owners(["opportunity_user_latest_scan:alice"])
Owners(scans=(), tenants=('alice',))
>>> attribution.owners(["opportunity_scan_active:bob:9f2c", "session:42"])
Owners(scans=('9f2c',), tenants=())

(``9f2c`` is what sound's ``<cache key>:<scan id>`` pattern captures from a legacy
``<user>:<digest>`` key: no accepted scan has that id, so it excuses nothing.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from harness.targets.contract import Contract

__all__ = ["KeyAttribution", "Owners"]

# placeholder -> (regex group name or None, regex of its text)
_PLACEHOLDERS: dict[str, tuple[str | None, str]] = {
    "{scan_id}": ("scan_id", "[^:]+"),
    "{tenant}": ("tenant", "[^:]+"),
    "{user_id}": ("tenant", "[^:]+"),
    "{cache_key}": (None, ".+"),
    "{any}": (None, ".*"),
}
_PLACEHOLDER_RX = re.compile("|".join(re.escape(p) for p in _PLACEHOLDERS))


@dataclass(frozen=True, slots=True)
class Owners:
    """The scans and tenants named by a set of key names, each sorted."""

    scans: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """The anchored regex of one key pattern; a placeholder used twice must match
    the same text both times.

    >>> _pattern_regex("jobs:{scan_id}:result").pattern
    '^jobs:(?P<scan_id>[^:]+):result$'
    """
    parts: list[str] = []
    seen: set[str] = set()
    pos = 0
    for m in _PLACEHOLDER_RX.finditer(pattern):
        parts.append(re.escape(pattern[pos : m.start()]))
        group, text = _PLACEHOLDERS[m.group()]
        if group is None:
            parts.append(f"(?:{text})")
        elif group in seen:
            parts.append(f"(?P={group})")
        else:
            seen.add(group)
            parts.append(f"(?P<{group}>{text})")
        pos = m.end()
    parts.append(re.escape(pattern[pos:]))
    return re.compile("^" + "".join(parts) + "$")


class KeyAttribution:
    """Maps key names to the scans and tenants they name, with one contract's key
    patterns (compiled once).

    ``KeyAttribution(contract).owners(keys, key_class)`` returns the
    :class:`Owners` of ``keys``, by the patterns of ``key_class`` (the class the
    fault aimed at) or, when it is ``None``, of every class.
    """

    def __init__(self, contract: Contract) -> None:
        self._regexes = {
            key_class: tuple(_pattern_regex(p) for p in patterns)
            for key_class, patterns in contract.keys.items()
        }

    def owners(self, keys: Iterable[str], key_class: str | None = None) -> Owners:
        """The scans and tenants whose declared keys are among ``keys``."""
        if key_class is None:
            regexes = tuple(rx for rxs in self._regexes.values() for rx in rxs)
        else:
            regexes = self._regexes.get(key_class, ())
        scans: set[str] = set()
        tenants: set[str] = set()
        for key in keys:
            for rx in regexes:
                m = rx.match(key)
                if m is None:
                    continue
                groups = m.groupdict()
                if groups.get("scan_id"):
                    scans.add(groups["scan_id"])
                if groups.get("tenant"):
                    tenants.add(groups["tenant"])
        return Owners(scans=tuple(sorted(scans)), tenants=tuple(sorted(tenants)))
