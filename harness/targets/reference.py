"""The reference scan service (``reference_impl``) as the harness sees it.

The only module of :mod:`harness` that knows the reference service: its app and
default preset, whether an app is the reference, the checks of a preset, of flag
overrides and of a time scale (made before anything starts: one-line
:class:`~harness.errors.UsageError`, exit 2), the ``REFIMPL_*`` environment its
workers read, and the planner of its variants (presets, toggled flags, the
ablation of a preset's fixes). Every other module asks here.

>>> is_reference(DEFAULT_APP), DEFAULT_PRESET
(True, 'claimed-fix')
>>> service_env("sound", {"no_scan_liveness": True}, seed=3)
{'REFIMPL_PRESET': 'sound', 'REFIMPL_SEED': '3', 'REFIMPL_FLAGS': '{"no_scan_liveness": true}'}
>>> check_target(DEFAULT_APP, preset="no-such")
Traceback (most recent call last):
...
harness.errors.UsageError: --preset no-such: valid presets are pre-fix, claimed-fix, late-fix, sound

Importing this module imports ``reference_impl.flags`` and ``reference_impl.timing``
(dataclasses and json: a few milliseconds), never the app.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from harness.errors import UsageError
from reference_impl import flags as _flags
from reference_impl import timing as _timing

if TYPE_CHECKING:
    from harness.evidence.matrix import AblationPlan, Variant

__all__ = [
    "DEFAULT_APP",
    "DEFAULT_PRESET",
    "DEFAULT_TIME_SCALE",
    "FLAG_NAMES",
    "PRESET_NAMES",
    "ablation_variants",
    "check_flags",
    "check_preset",
    "check_target",
    "check_time_scale",
    "effective_preset",
    "is_reference",
    "preset_variants",
    "service_env",
    "target_env",
    "toggle_variant",
]

DEFAULT_APP: Final = "reference_impl.app:app"
DEFAULT_PRESET: Final[str] = _flags.DEFAULT_PRESET
DEFAULT_TIME_SCALE: Final[float] = _timing.DEFAULT_TIME_SCALE
PRESET_NAMES: Final[tuple[str, ...]] = tuple(_flags.PRESETS)
FLAG_NAMES: Final[tuple[str, ...]] = _flags.FLAG_NAMES
_PACKAGE: Final = DEFAULT_APP.partition(".")[0]

# The environment the reference app reads at import (see reference_impl.app).
_ENV_PRESET: Final = "REFIMPL_PRESET"
_ENV_FLAGS: Final = "REFIMPL_FLAGS"
_ENV_TIME_SCALE: Final = "REFIMPL_TIME_SCALE"
_ENV_SEED: Final = "REFIMPL_SEED"


def is_reference(app: str) -> bool:
    """Whether ``app`` (``MODULE:ATTR``) is the reference service, which takes presets and flags.

    >>> is_reference("mypkg.main:app")
    False
    """
    return app.startswith(_PACKAGE + ".")


def effective_preset(app: str, preset: str | None) -> str | None:
    """The preset a run of ``app`` uses: ``preset`` or the default; None for another app.

    >>> effective_preset(DEFAULT_APP, None), effective_preset("mypkg.main:app", None)
    ('claimed-fix', None)
    """
    return (preset or DEFAULT_PRESET) if is_reference(app) else None


# --- checks ------------------------------------------------------------------------


def check_preset(preset: str, *, option: str = "--preset") -> str:
    """``preset``, or UsageError naming it and listing the valid ones."""
    if preset not in _flags.PRESETS:
        raise UsageError(f"{option} {preset}: valid presets are {', '.join(PRESET_NAMES)}")
    return preset


def check_flags(flags: Mapping[str, Any], *, option: str = "--flag") -> dict[str, Any]:
    """The flag overrides as a dict, or UsageError naming the first bad name or value.

    >>> check_flags({"no_scan_liveness": "yes"})
    Traceback (most recent call last):
    ...
    harness.errors.UsageError: --flag no_scan_liveness="yes": must be true or false (a JSON boolean)
    """
    for name, value in flags.items():
        problem = _flags.flag_problem(name, value)
        if problem is not None:
            raise UsageError(f"{option} {name}={json.dumps(value)}: {problem}")
    return dict(flags)


def check_time_scale(value: float | None, *, option: str = "--time-scale") -> None:
    """UsageError unless ``value`` is None or a time scale the reference service accepts."""
    if value is None:
        return
    problem = _timing.time_scale_problem(value)
    if problem is not None:
        raise UsageError(f"{option} {value!r}: {problem}")


def check_target(
    app: str,
    *,
    preset: str | None = None,
    flags: Mapping[str, Any] | None = None,
    time_scale: float | None = None,
) -> None:
    """Everything a verb must check about its target before it starts anything.

    For the reference service: the preset, every flag override and the time
    scale. For another app: no preset and no flag (they are the reference
    service's), and a time scale, if given, above 0.
    """
    if not is_reference(app):
        if preset is not None or flags:
            raise UsageError(
                f"--preset/--flag apply to the reference service only, not --app {app}"
            )
        if time_scale is not None and not time_scale > 0:
            raise UsageError(f"--time-scale {time_scale!r}: must be > 0")
        return
    check_preset(preset or DEFAULT_PRESET)
    check_flags(flags or {})
    check_time_scale(time_scale)


# --- the environment of its workers ------------------------------------------------


def service_env(
    preset: str | None = None,
    flags: Mapping[str, Any] | None = None,
    *,
    seed: int | None = None,
    time_scale: float | None = None,
) -> dict[str, str]:
    """The ``REFIMPL_*`` environment of the reference workers; validates every value first.

    ``None`` leaves a value to the app's own default (the preset: :data:`DEFAULT_PRESET`).
    """
    check_preset(preset or DEFAULT_PRESET)
    overrides = check_flags(flags or {})
    check_time_scale(time_scale)
    env = {_ENV_PRESET: preset or DEFAULT_PRESET}
    if seed is not None:
        env[_ENV_SEED] = str(seed)
    if overrides:
        env[_ENV_FLAGS] = json.dumps(overrides, sort_keys=True)
    if time_scale is not None:
        env[_ENV_TIME_SCALE] = repr(time_scale)
    return env


def target_env(
    app: str,
    *,
    preset: str | None = None,
    flags: Mapping[str, Any] | None = None,
    seed: int | None = None,
    time_scale: float | None = None,
) -> dict[str, str]:
    """:func:`check_target`, then the workers' environment (``{}`` for another app)."""
    check_target(app, preset=preset, flags=flags, time_scale=time_scale)
    if not is_reference(app):
        return {}
    return service_env(preset, flags, seed=seed, time_scale=time_scale)


# --- variants: presets, toggles and the ablation of a preset's fixes ----------------


def preset_variants(presets: Sequence[str], *, app: str = DEFAULT_APP) -> list[Variant]:
    """One variant per preset; an unknown name raises UsageError listing the valid ones."""
    from harness.evidence.matrix import Variant

    return [Variant(name=check_preset(p, option="--presets"), app=app, preset=p) for p in presets]


def toggle_variant(base: str, flag: str, *, app: str = DEFAULT_APP) -> Variant:
    """``base`` with one flag flipped (a boolean negated, the retry policy swapped)."""
    from harness.evidence.matrix import Variant

    check_preset(base, option="--base")
    if flag not in FLAG_NAMES:
        raise UsageError(f"--toggle {flag}: no such flag; valid flags are {', '.join(FLAG_NAMES)}")
    current = getattr(_flags.PRESETS[base], flag)
    if isinstance(current, bool):
        value: Any = not current
        name = f"{base} {'+' if value else '-'}{flag}"
    else:
        value = next(p for p in _flags.RETRY_POLICY_NAMES if p != current)
        name = f"{base} {flag}={value}"
    return Variant(name=name, app=app, preset=base, flags={flag: value})


def ablation_variants(preset: str) -> tuple[list[Variant], AblationPlan]:
    """Plan the ablation of ``preset``'s fixes.

    The variants: the preset; the preset with each of its fixes switched off;
    the preset with every fix off (named after the preset it equals, e.g.
    ``pre-fix``); and that bare preset with each fix switched on alone.
    """
    from harness.evidence.matrix import AblationPlan, Variant

    check_preset(preset, option="--ablate")
    flags = _flags.PRESETS[preset]
    fixes = tuple(
        f.name for f in _flags.FLAG_FIELDS if f.metadata["kind"] == "fix" and getattr(flags, f.name)
    )
    if not fixes:
        raise UsageError(f"--ablate {preset}: that preset switches no fix on; try {DEFAULT_PRESET}")
    off = dict.fromkeys(fixes, False)
    bare_flags = _flags.resolve_flags(preset, off)
    bare_preset = next((p for p, v in _flags.PRESETS.items() if v == bare_flags), None)
    variants = [Variant(name=preset, app=DEFAULT_APP, preset=preset)]
    without = {}
    for fix in fixes:
        v = Variant(name=f"{preset} -{fix}", app=DEFAULT_APP, preset=preset, flags={fix: False})
        variants.append(v)
        without[fix] = v.name
    if bare_preset is not None:
        bare = Variant(name=bare_preset, app=DEFAULT_APP, preset=bare_preset)
    else:
        bare = Variant(name=f"{preset} -all fixes", app=DEFAULT_APP, preset=preset, flags=off)
    variants.append(bare)
    alone = {}
    for fix in fixes:
        v = Variant(
            name=f"{bare.name} +{fix}",
            app=DEFAULT_APP,
            preset=bare.preset,
            flags={**bare.flags, fix: True},
        )
        variants.append(v)
        alone[fix] = v.name
    plan = AblationPlan(preset=preset, bare=bare.name, fixes=fixes, without=without, alone=alone)
    return variants, plan
