"""``junit.xml``: one test case per anomaly class, for CI test dashboards.

A class over its threshold is a ``<failure>`` (count, rate, interval, first
witness in words); a class whose checker crashed, or that was never judged, is
an ``<error>``. Infrastructure reasons (the run itself could not be judged) go
to the suite's ``<system-err>``. ``ElementTree`` escapes text and attributes;
:func:`xml_safe` removes what XML 1.0 cannot carry at all.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

from harness import schema as S
from reports._markup import xml_safe
from reports._model import ReportModel, class_line, extras_line


def _sub(parent: ET.Element, tag: str, text: str = "", **attrs: str) -> ET.Element:
    el = ET.SubElement(parent, tag, {k: xml_safe(v) for k, v in attrs.items()})
    if text:
        el.text = xml_safe(text)
    return el


def render_junit(model: ReportModel) -> bytes:
    run, info = model.run, model.run.info
    failing, crashed = set(model.failing()), set(model.crashed())
    duration = "0" if math.isnan(run.duration_s) else f"{max(run.duration_s, 0.0):.3f}"
    root = ET.Element(
        "testsuites",
        {
            "name": xml_safe(
                f"scanproof scenario={info.scenario} preset={info.preset} seed={info.seed}"
            ),
            "tests": str(len(S.ANOMALY_CLASSES)),
            "failures": str(len(failing)),
            "errors": str(len(crashed)),
        },
    )
    suite = _sub(
        root,
        "testsuite",
        name="scanproof",
        tests=str(len(S.ANOMALY_CLASSES)),
        failures=str(len(failing)),
        errors=str(len(crashed)),
        skipped="0",
        time=duration,
        timestamp=info.started_at,
    )
    props = _sub(suite, "properties")
    for key, value in [
        ("app", info.app),
        ("preset", info.preset),
        ("scenario", info.scenario),
        ("seed", info.seed),
        ("workers", info.workers),
        ("redis", info.redis_backend),
        ("ops", str(run.op_counts.get("total", 0))),
        ("run_status", info.status),
        ("verdict", model.verdict),
    ]:
        _sub(props, "property", name=key, value=value)
    classname = f"scanproof.{info.scenario}"
    for name in S.ANOMALY_CLASSES:
        case = _sub(suite, "testcase", name=name, classname=classname, time="0")
        result = run.verdict.classes[name]
        accounts = model.accounts.get(name) or ()
        words = [a.plain() for a in accounts]
        extra = extras_line(model, name)
        if name in crashed:
            _sub(case, "error", result.error, message=f"{name}: {result.error}", type="unknown")
        elif name in failing:
            limit = model.thresholds.get(name, 0)
            message = f"{name}: {class_line(model, name)} > {limit} allowed"
            body = [message, *([extra] if extra else [])]
            body += [f"Witness {i + 1}: {w}" for i, w in enumerate(words)]
            _sub(case, "failure", "\n".join(body), message=message, type="anomaly")
        else:
            _sub(case, "system-out", f"{name}: {class_line(model, name)}")
    infra = [r for r in run.verdict.reasons if r.startswith("infrastructure")]
    infra += [f"warning: {n}" for n in [*run.info.warnings, *run.notes]]
    if infra:
        _sub(suite, "system-err", "\n".join(infra))
    ET.indent(root)
    data: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return data
