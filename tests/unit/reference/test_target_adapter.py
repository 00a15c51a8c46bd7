"""harness.targets.reference: the harness's one view of the reference service.

What the harness hands the workers is exactly what the app reads back, and
everything the app would refuse at import is refused by the harness first.
"""

from __future__ import annotations

import pytest

from harness.errors import UsageError
from harness.targets import reference
from reference_impl.flags import PRESETS, ConfigError, flags_from_env, resolve_flags


@pytest.mark.parametrize("preset", [None, *PRESETS])
def test_the_environment_the_harness_builds_is_the_one_the_app_reads(preset: str | None) -> None:
    overrides = {"no_scan_liveness": False, "retry_policy": "bounded"}
    env = reference.service_env(preset, overrides, seed=7, time_scale=0.005)
    expected = preset or reference.DEFAULT_PRESET
    assert flags_from_env(env) == (expected, resolve_flags(expected, overrides))
    assert (env["REFIMPL_SEED"], env["REFIMPL_TIME_SCALE"]) == ("7", "0.005")


def test_unset_values_are_left_to_the_app() -> None:
    assert reference.service_env() == {"REFIMPL_PRESET": reference.DEFAULT_PRESET}


def test_another_app_gets_no_reference_environment() -> None:
    assert reference.target_env("mypkg.main:app", seed=3, time_scale=0.5) == {}
    with pytest.raises(UsageError, match=r"^--preset/--flag apply to the reference service only"):
        reference.target_env("mypkg.main:app", flags={"no_scan_liveness": True})


@pytest.mark.parametrize(
    ("env", "kwargs"),
    [
        ({"REFIMPL_PRESET": "fixed"}, {"preset": "fixed"}),
        ({"REFIMPL_FLAGS": '{"no_such_flag": true}'}, {"flags": {"no_such_flag": True}}),
        ({"REFIMPL_FLAGS": '{"no_scan_liveness": "yes"}'}, {"flags": {"no_scan_liveness": "yes"}}),
        ({"REFIMPL_FLAGS": '{"retry_policy": "forever"}'}, {"flags": {"retry_policy": "forever"}}),
    ],
)
def test_what_the_app_refuses_the_harness_refuses_first(
    env: dict[str, str], kwargs: dict[str, object]
) -> None:
    with pytest.raises(ConfigError):
        flags_from_env(env)
    with pytest.raises(UsageError) as caught:
        reference.check_target(reference.DEFAULT_APP, **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("scale", [0, -1.0, float("nan"), float("inf"), 1000.0])
def test_a_time_scale_the_app_refuses_is_refused(scale: float) -> None:
    with pytest.raises(UsageError, match=r"^--time-scale .*: must be a number in \(0, 100\]"):
        reference.check_target(reference.DEFAULT_APP, time_scale=scale)


def test_only_the_reference_package_is_the_reference() -> None:
    assert reference.is_reference(reference.DEFAULT_APP)
    assert not reference.is_reference("tests.apps.whoami:app")
    assert reference.effective_preset(reference.DEFAULT_APP, "sound") == "sound"
    assert reference.effective_preset("tests.apps.whoami:app", None) is None
