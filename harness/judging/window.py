"""The judging window: how long a finished scan must stay readable, by when a scan
must be finished, and on which clock; each value with where it came from.

One function decides it for every driver (scripted runs, locust, explore and
replay), so a history is judged the same way whoever recorded it.

Precedence, for the time scale and the deadline: the user's own value (command
line or environment) beats the contract file, which beats what the app's meta
endpoint states, which beats what calibration measured (``calibrated``: see
:mod:`harness.run.calibrate`; the runner calibrates only when no other layer
states a time scale). Retention cannot be measured: the user, the contract or
the meta must state it. A caller that cannot calibrate (explore, a standalone
locust) gets time scale 1.0 with the source ``"default"`` when nothing states
one; ``scanproof run`` and ``gate`` never do.

Two margins keep a correct service from being blamed at the edges, and both are
recorded:

- a deadline stated only by the app's meta gets 50% slack (``DEADLINE_SLACK``):
  on a loaded 2-core machine a scaled scan can be late by a good fraction of a
  second, while a scan that is really stuck never finishes at all; a deadline
  the user stated is taken as it is, and so is a calibrated one (its slack was
  applied when it was derived, and is recorded there);
- retention is judged from the first *sighting* of a finished scan, which lags
  its completion by at least a poll (a whole rotation of stale workers, more
  under load), so the last tenth of the window, and at least one poll, is left
  unjudged (``RETENTION_SLACK``).

>>> w = judging_window(meta={"retention_s": 3.0, "scan_deadline_s": 2.0, "time_scale": 0.01},
...                    poll_interval_s=3.0)
>>> w.retention_s, w.scan_deadline_s, w.time_scale.value
(2.7, 3.0, 0.01)
>>> w.stated["retention_s"]
Sourced(value=3.0, source='app meta')
>>> given = judging_window(meta={}, poll_interval_s=1.0, retention_s=10.0, scan_deadline_s=5.0)
>>> given.scan_deadline_s, given.stated["scan_deadline_s"].source
(5.0, 'command line')
>>> measured = judging_window(meta={}, poll_interval_s=3.0, retention_s=10.0,
...                           calibrated={"time_scale": 0.006, "scan_deadline_s": 3.3})
>>> measured.time_scale, measured.scan_deadline_s
(Sourced(value=0.006, source='calibration'), 3.3)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

from harness.errors import UsageError

Source = Literal["command line", "environment", "contract", "app meta", "calibration", "default"]
DEADLINE_SLACK: Final = 1.5
RETENTION_SLACK: Final = 0.1
_NAMES: Final = ("retention_s", "scan_deadline_s")


@dataclass(frozen=True, slots=True)
class Sourced:
    """A value and where it came from."""

    value: float
    source: Source


@dataclass(frozen=True, slots=True, kw_only=True)
class JudgingWindow:
    """What the checkers are given (``retention_s``, ``scan_deadline_s``, real
    seconds, margins applied) and what they were derived from (``stated``)."""

    time_scale: Sourced
    stated: Mapping[str, Sourced]  # retention_s and scan_deadline_s as stated
    retention_s: float  # judged: stated minus the unjudged edge
    scan_deadline_s: float  # judged: stated, times DEADLINE_SLACK when only the meta stated it
    retention_margin_s: float

    def to_json(self) -> dict[str, Any]:
        """run.json's ``check`` block (without the run's final heal time)."""
        return {
            "retention_s": self.retention_s,
            "scan_deadline_s": self.scan_deadline_s,
            "sources": {
                "time_scale": _json(self.time_scale),
                **{name: _json(self.stated[name]) for name in _NAMES},
                "retention_margin_s": self.retention_margin_s,
                "deadline_slack": self.scan_deadline_s / self.stated["scan_deadline_s"].value,
            },
        }


def _json(value: Sourced) -> dict[str, Any]:
    return {"value": value.value, "source": value.source}


def _seconds(value: object) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def judging_window(
    *,
    meta: Mapping[str, Any],
    poll_interval_s: float,
    retention_s: float | None = None,
    scan_deadline_s: float | None = None,
    time_scale: float | None = None,
    contract_retention_s: float | None = None,
    contract_deadline_s: float | None = None,
    contract_time_scale: float | None = None,
    calibrated: Mapping[str, Any] | None = None,
    given_by: Source = "command line",
    how_to_set: Callable[[str], str] = _flag,
) -> JudgingWindow:
    """Decide the window; see the module docstring.

    ``poll_interval_s`` is in service seconds (scaled like everything the
    service states). ``retention_s``/``scan_deadline_s``/``time_scale`` are the
    user's own values (``given_by`` says whether from the command line or the
    environment); ``contract_*`` the contract file's (``contract_time_scale``
    already derived from its ``scan_s`` when it states only that);
    ``calibrated`` what calibration measured (``time_scale``, ``scan_deadline_s``).
    ``how_to_set(name)`` names the option a user would pass when neither they,
    the contract nor the meta state a value.
    """
    calibration = calibrated or {}
    layers: tuple[tuple[Source, Mapping[str, Any]], ...] = (
        (
            given_by,
            {
                "retention_s": retention_s,
                "scan_deadline_s": scan_deadline_s,
                "time_scale": time_scale,
            },
        ),
        (
            "contract",
            {
                "retention_s": contract_retention_s,
                "scan_deadline_s": contract_deadline_s,
                "time_scale": contract_time_scale,
            },
        ),
        ("app meta", meta),
        # calibration measures a scan's length, never how long its results are kept
        ("calibration", {k: v for k, v in calibration.items() if k != "retention_s"}),
    )
    stated: dict[str, Sourced] = {}
    for name in (*_NAMES, "time_scale"):
        for source, layer in layers:
            if (value := _seconds(layer.get(name))) is not None:
                stated[name] = Sourced(value, source)
                break
    missing = [how_to_set(n) for n in _NAMES if n not in stated]
    if missing:
        raise UsageError(
            f"{' and '.join(missing)} needed: the app has no meta endpoint that states "
            f"{'them' if len(missing) > 1 else 'it'} (pass seconds, or set "
            f"{' and '.join(n for n in _NAMES if n not in stated)} in the --contract file)"
        )
    scale = stated.pop("time_scale", Sourced(1.0, "default"))
    deadline = stated["scan_deadline_s"]
    judged_deadline = deadline.value * (DEADLINE_SLACK if deadline.source == "app meta" else 1.0)
    retention = stated["retention_s"].value
    margin = max(poll_interval_s * scale.value, RETENTION_SLACK * retention)
    return JudgingWindow(
        time_scale=scale,
        stated=stated,
        retention_s=max(retention - margin, margin),
        scan_deadline_s=judged_deadline,
        retention_margin_s=margin,
    )


def stated_time_scale(
    *,
    meta: Mapping[str, Any],
    time_scale: float | None = None,
    contract_time_scale: float | None = None,
    given_by: Source = "command line",
) -> Sourced | None:
    """The time scale the user, the contract or the app's meta states, in that order;
    None when none does (then ``scanproof run`` calibrates).

    >>> stated_time_scale(meta={"time_scale": 0.01}, contract_time_scale=0.5)
    Sourced(value=0.5, source='contract')
    >>> stated_time_scale(meta={}) is None
    True
    """
    layers: tuple[tuple[Source, object], ...] = (
        (given_by, time_scale),
        ("contract", contract_time_scale),
        ("app meta", meta.get("time_scale")),
    )
    for source, value in layers:
        if (seconds := _seconds(value)) is not None:
            return Sourced(seconds, source)
    return None


def missing_retention(
    *,
    meta: Mapping[str, Any],
    retention_s: float | None = None,
    contract_retention_s: float | None = None,
    how_to_set: Callable[[str], str] = _flag,
) -> None:
    """UsageError when no layer states the retention (calibration cannot measure it):
    checked before calibrating, so that a missing value costs no calibration.

    >>> missing_retention(meta={}, contract_retention_s=30.0)
    >>> missing_retention(meta={})
    Traceback (most recent call last):
    ...
    harness.errors.UsageError: --retention-s needed: the app has no meta endpoint that states it ...
    """
    stated = (retention_s, contract_retention_s, meta.get("retention_s"))
    if all(_seconds(v) is None for v in stated):
        raise UsageError(
            f"{how_to_set('retention_s')} needed: the app has no meta endpoint that states it "
            "(pass seconds, or set retention_s in the --contract file)"
        )
