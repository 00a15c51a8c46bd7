"""Presets, overrides and environment configuration: bad names fail early and list valid ones."""

from __future__ import annotations

import dataclasses
import pathlib
import re

import pytest

from reference_impl.app import create_app
from reference_impl.flags import (
    DEFAULT_PRESET,
    FLAG_FIELDS,
    FLAG_NAMES,
    MECHANISMS,
    PRESETS,
    ConfigError,
    Flags,
    flags_from_env,
    open_mechanisms,
    resolve_flags,
)

_BUGS = {f.name for f in FLAG_FIELDS if f.metadata["kind"] == "bug"}
_MERGE_FIXES = {
    "fix_result_index_fallback",
    "fix_restore_lookup_maps_on_read",
    "fix_triple_persistence",
    "fix_lookup_ttl_plus_300",
    "fix_status_progress_metadata",
    "fix_ownership_validation",
}


def _on(flags: Flags) -> set[str]:
    return {f.name for f in FLAG_FIELDS if getattr(flags, f.name) is True}


def test_one_default_preset_for_flags_the_app_and_the_harness() -> None:
    from harness.targets import reference

    assert DEFAULT_PRESET == "claimed-fix"  # what `scanproof run` documents
    assert Flags() == PRESETS[DEFAULT_PRESET]
    assert flags_from_env({}) == (DEFAULT_PRESET, PRESETS[DEFAULT_PRESET])
    assert flags_from_env({"REFIMPL_PRESET": ""}) == (DEFAULT_PRESET, PRESETS[DEFAULT_PRESET])
    config = create_app().state.worker.config
    assert (config.preset, config.flags) == (DEFAULT_PRESET, PRESETS[DEFAULT_PRESET])
    assert reference.DEFAULT_PRESET == DEFAULT_PRESET
    assert tuple(PRESETS) == reference.PRESET_NAMES


def test_each_preset_is_what_its_name_says() -> None:
    pre, claimed, late, sound = (
        PRESETS[p] for p in ("pre-fix", "claimed-fix", "late-fix", "sound")
    )
    assert list(PRESETS) == ["pre-fix", "claimed-fix", "late-fix", "sound"]
    assert (_on(pre), pre.retry_policy) == (_BUGS, "redis-py-default")
    assert _on(claimed) == _BUGS | _MERGE_FIXES
    assert dataclasses.replace(claimed, **dict.fromkeys(_MERGE_FIXES, False)) == pre
    assert _on(late) == _BUGS | _MERGE_FIXES | {"fix_read_path_client_reinit"}
    assert late.retry_policy == claimed.retry_policy == "redis-py-default"
    assert (_on(sound), sound.retry_policy) == ({"fix_result_index_fallback"}, "bounded")


def test_presets_open_what_the_facts_table_says() -> None:
    assert open_mechanisms(PRESETS["sound"]) == set()
    assert open_mechanisms(PRESETS["pre-fix"]) == set(MECHANISMS)
    # the merge closed F4, F5 (mostly) and F15a; the late fix closed F1
    assert set(MECHANISMS) - open_mechanisms(PRESETS["claimed-fix"]) == {"F4", "F5", "F15a"}
    assert set(MECHANISMS) - open_mechanisms(PRESETS["late-fix"]) == {"F1", "F4", "F5", "F15a"}


def test_each_bug_flag_alone_over_sound_opens_exactly_its_mechanism() -> None:
    for name in FLAG_NAMES:
        field = PRESETS["sound"].__dataclass_fields__[name]
        if field.metadata["kind"] != "bug":
            continue
        assert open_mechanisms(resolve_flags("sound", {name: True})) == {
            field.metadata["mechanisms"]
        }


def test_each_flag_is_read_at_exactly_one_code_site() -> None:
    package = pathlib.Path(__file__).parents[3] / "reference_impl"
    sources = [p.read_text() for p in package.glob("*.py") if p.name != "flags.py"]
    for name in FLAG_NAMES:
        reads = sum(len(re.findall(rf"\.{name}\b", text)) for text in sources)
        assert reads == 1, f"{name} is read at {reads} sites"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REFIMPL_PRESET": "fixed"}, "valid presets are pre-fix, claimed-fix, late-fix, sound"),
        (
            {"REFIMPL_FLAGS": '{"no_such_flag": true}'},
            "valid flags are client_init_on_discover_only",
        ),
        ({"REFIMPL_FLAGS": '{"no_scan_liveness": "yes"}'}, "must be true or false"),
        ({"REFIMPL_FLAGS": '{"retry_policy": "forever"}'}, "redis-py-default, bounded"),
        ({"REFIMPL_FLAGS": "no_scan_liveness=1"}, "is not JSON"),
        ({"REFIMPL_FLAGS": "[1]"}, "must be a JSON object"),
    ],
)
def test_bad_environment_fails_with_the_valid_names(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        flags_from_env(env)


def test_environment_overrides_single_flags() -> None:
    preset, flags = flags_from_env(
        {"REFIMPL_PRESET": "sound", "REFIMPL_FLAGS": '{"no_scan_liveness": true}'}
    )
    assert preset == "sound"
    assert open_mechanisms(flags) == {"F11"}


@pytest.mark.parametrize("scale", [0, -1, float("nan"), 1000, True])
def test_bad_time_scale_is_refused(scale: float) -> None:
    with pytest.raises(ConfigError, match="time_scale"):
        create_app(preset="sound", time_scale=scale)


def test_importing_the_app_module_opens_nothing() -> None:
    import reference_impl.app as module

    assert module.app.state.worker._service is None  # built after the fork, on first use


def test_budget_keeps_a_real_time_margin_at_small_time_scales() -> None:
    from reference_impl.timing import STRATEGY_MAX_S, Timing

    assert Timing(time_scale=0.01).scan_budget_s == pytest.approx(1.5)  # 150 s scaled
    small = Timing(time_scale=0.005)
    assert small.scan_budget_s - small.s(STRATEGY_MAX_S) == pytest.approx(0.15)
