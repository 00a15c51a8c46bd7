"""``junit.xml``: one test suite per run, one test case per anomaly class, for CI test
dashboards.

Ids name the run, so several presets, apps or seeds never collide in one dashboard:
the suite is ``scanproof <scenario> <preset or app> seed=<seed>`` and each case's
classname ``scanproof.<scenario>.<preset or app>.seed<seed>``:

>>> _classname("mixed", "claimed-fix", "7"), _classname("steady", "mypkg.main:app", "0")
('scanproof.mixed.claimed-fix.seed7', 'scanproof.steady.mypkg_main_app.seed0')

A class over its threshold is a ``<failure>`` (count, rate, interval, first
witness in words); a class whose checker crashed, or that was never judged, is
an ``<error>``; a class that is not applicable to the service (no tenants, no
progress...) is ``<skipped>`` with the reason. Infrastructure reasons (the run
itself could not be judged) go to the suite's ``<system-err>``. ``ElementTree``
escapes text and attributes; :func:`xml_safe` removes what XML 1.0 cannot carry at all.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

from harness.history import schema as S
from reports._markup import xml_safe
from reports._model import ReportModel, class_line, extras_line, log_items


def _sub(parent: ET.Element, tag: str, text: str = "", **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: xml_safe(v) for k, v in attrs.items()})
    if text:
        el.text = xml_safe(text)
    return el


def _segment(value: str) -> str:
    """One dot-free classname segment: ``mypkg.main:app`` -> ``mypkg_main_app``."""
    return re.sub(r"[^A-Za-z0-9_-]+", "_", value).strip("_") or "unknown"


def _classname(scenario: str, target: str, seed: str) -> str:
    return f"scanproof.{_segment(scenario)}.{_segment(target)}.seed{_segment(seed)}"


def _target(model: ReportModel) -> str:
    """The preset when the run had one, else the app (or host)."""
    items = dict(model.target)
    preset = items.get("preset", "")
    if preset and preset != "unknown":
        return preset
    return items.get("app") or items.get("target") or "unknown"


def _fail_message(model: ReportModel, name: str) -> str:
    """The verdict's own reason for this class (count, rate or interval over its limit)."""
    for reason in model.run.verdict.reasons:
        if reason.startswith(f"{name}: "):
            return f"{name}: {class_line(model, name)}; {reason.removeprefix(name + ': ')}"
    limit = model.run.verdict.classes[name].limit.describe()
    return f"{name}: {class_line(model, name)}; over the limit ({limit})"


def render_junit(model: ReportModel) -> bytes:
    run, info = model.run, model.run.info
    failing, crashed = set(model.failing()), set(model.crashed())
    moot = set(model.inapplicable())
    duration = "0" if math.isnan(run.duration_s) else f"{max(run.duration_s, 0.0):.3f}"
    target = _target(model)
    suite_name = f"scanproof {info.scenario} {target} seed={info.seed}"
    root = ET.Element(
        "testsuites",
        {
            "name": xml_safe(
                f"scanproof scenario={info.scenario} {model.target_label().replace(' ', '=', 1)} "
                f"seed={info.seed}"
            ),
            "tests": str(len(S.ANOMALY_CLASSES)),
            "failures": str(len(failing)),
            "errors": str(len(crashed)),
            "skipped": str(len(moot)),
        },
    )
    suite = _sub(
        root,
        "testsuite",
        name=suite_name,
        tests=str(len(S.ANOMALY_CLASSES)),
        failures=str(len(failing)),
        errors=str(len(crashed)),
        skipped=str(len(moot)),
        time=duration,
        timestamp=info.started_at,
    )
    props = _sub(suite, "properties")
    for key, value in [
        *model.target,
        *((f"timing.{t.name}", f"{t.value} ({t.source})") for t in model.timing),
        *((f"log.{path}", what) for path, what in log_items(model)),
        ("scenario", info.scenario),
        ("seed", info.seed),
        ("workers", info.workers),
        ("redis", info.redis_backend),
        ("ops", str(run.op_counts.get("total", 0))),
        ("run_status", info.status),
        ("verdict", model.verdict),
    ]:
        _sub(props, "property", name=key, value=value)
    classname = _classname(info.scenario, target, info.seed)
    for name in S.ANOMALY_CLASSES:
        case = _sub(suite, "testcase", name=name, classname=classname, time="0")
        result = run.verdict.classes[name]
        accounts = model.accounts.get(name) or ()
        words = [a.plain() for a in accounts]
        extra = extras_line(model, name)
        if name in moot:
            why = f"{name}: not applicable: {result.not_applicable}"
            _sub(case, "skipped", why, message=why)
        elif name in crashed:
            why = result.error or class_line(model, name)
            _sub(case, "error", why, message=f"{name}: {why}", type="unknown")
        elif name in failing:
            message = _fail_message(model, name)
            body = [message, *([extra] if extra else [])]
            body += [f"Witness {i + 1}: {w}" for i, w in enumerate(words)]
            _sub(case, "failure", "\n".join(body), message=message, type="anomaly")
        else:
            _sub(case, "system-out", f"{name}: {class_line(model, name)}")
    # Reasons no class carries (infrastructure, no scan accepted, an incomplete run).
    infra = [r for r in run.verdict.reasons if not r.startswith(tuple(S.ANOMALY_CLASSES))]
    infra += [f"note: {n}" for n in run.verdict.notes]
    infra += [f"warning: {n}" for n in [*model.understanding, *run.info.warnings, *run.notes]]
    if infra:
        _sub(suite, "system-err", "\n".join(infra))
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data
