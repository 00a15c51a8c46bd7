"""report.html in a real browser: headless Chromium at 1280 px, as a reviewer opens it.

Checks, per rendered run: the page never scrolls sideways, the verdict is in the
first screen, every image decodes, and nothing is logged as an error. A probe
script is injected into a COPY of the report (the report itself carries no
script); it writes its findings into the DOM, which ``chromium --dump-dom`` prints.

Chromium is Debian's ``chromium`` package (``.ci/run`` installs it). Under
``CI=true`` a missing browser fails the test; locally it is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from harness.history import schema as S
from reports import render_run
from tests.unit.history_catalogue import Hist, healthy_scan
from tests.unit.reports.run_catalogue import (
    full_record,
    healthy_history,
    hostile_history,
    lost_scan_history,
    write_run,
)

pytestmark = pytest.mark.processes

WIDTH, FIRST_SCREEN = 1280, 800
_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
)
# Installed first thing in <head>: catches console errors, uncaught errors and failed
# loads from then on; after "load" it measures and writes JSON into <pre id=probe>.
_PROBE = """<script>
(function () {
  var errors = [];
  var realError = console.error;
  console.error = function () {
    errors.push(Array.prototype.join.call(arguments, " "));
    return realError.apply(console, arguments);
  };
  window.addEventListener("error", function (e) {
    var t = e.target || {};
    errors.push(e.message || ("failed to load " + (t.src || t.href || t.tagName)));
  }, true);
  window.addEventListener("unhandledrejection", function (e) { errors.push(String(e.reason)); });
  window.addEventListener("load", function () {
    var doc = document.documentElement, verdict = document.getElementById("verdict");
    var box = verdict ? verdict.getBoundingClientRect() : null;
    var imgs = Array.prototype.map.call(document.images, function (i) {
      return {alt: i.alt, complete: i.complete, naturalWidth: i.naturalWidth};
    });
    var wide = Array.prototype.filter.call(document.body.querySelectorAll("*"), function (el) {
      return el.getBoundingClientRect().right > window.innerWidth + 0.5
        && !el.closest(".scroll") && !el.closest("pre");
    }).map(function (el) { return el.tagName + "." + el.className; }).slice(0, 5);
    var out = document.createElement("pre");
    out.id = "probe";
    out.textContent = "PROBE" + JSON.stringify({
      innerWidth: window.innerWidth, scrollWidth: doc.scrollWidth,
      verdictTop: box ? box.top : null, verdictBottom: box ? box.bottom : null,
      verdictText: verdict ? verdict.textContent : null,
      images: imgs, errors: errors, wide: wide,
      details: document.querySelectorAll("details").length
    }) + "PROBE";
    document.body.appendChild(out);
  });
})();
</script>"""


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _chromium() -> str:
    found = shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )
    if found:
        return found
    if _in_ci():
        pytest.fail("chromium is not on PATH but CI=true: install it (apt-get install chromium)")
    pytest.skip("chromium is not on PATH (apt-get install chromium to check report.html)")


def _probe(html: Path, tmp: Path) -> dict[str, Any]:
    """Open a probed copy of ``html`` at 1280x800 and return what the probe measured."""
    page = tmp / f"probed-{html.parent.name}.html"
    text = html.read_text(encoding="utf-8")
    assert "<script" not in text.lower(), "the report must carry no script of its own"
    page.write_text(text.replace("<head>", "<head>" + _PROBE, 1), encoding="utf-8")
    profile = tmp / f"profile-{html.parent.name}"
    cmd = [
        _chromium(),
        *_FLAGS,
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{FIRST_SCREEN}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90, check=False)
    found = re.search(r"PROBE(\{.*?\})PROBE", done.stdout, re.S)
    assert found, (
        f"chromium printed no probe result (exit {done.returncode}): {done.stderr[-2000:]}"
    )
    result: dict[str, Any] = json.loads(found.group(1).replace("&quot;", '"'))
    return result


def _wide_run(tmp: Path) -> Path:
    """Eight workers, many answer words, long unbroken ids: the widest tables we make."""
    h = Hist()
    for i in range(8):
        healthy_scan(h, tenant=f"tenant{i}", scan=f"scan-{'x' * 190}-{i}", start=i * 40)
        h.ops[-2][S.WORKER] = i
    for i, word in enumerate(("queued", "running", "paused", "weird", "other", "x" * 90)):
        h.status("tenant0", f"scan-{'x' * 190}-0", "", at=500 + i, worker=i, raw_status=word)
    h.status("tenant0", f"scan-{'x' * 190}-0", "not_found", at=120, worker=5)
    h.fault("worker_kill", at=100, until=300)
    return write_run(tmp / "wide", h.build(), record=full_record())


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("browser")
    runs = {
        "failing": write_run(tmp / "failing", lost_scan_history().build(), record=full_record()),
        "passing": write_run(tmp / "passing", healthy_history().build(), record=full_record()),
        "hostile": write_run(tmp / "hostile", hostile_history().build(), record=full_record()),
        "interrupted": write_run(
            tmp / "interrupted",
            lost_scan_history().build(),
            record=full_record(status="interrupted"),
        ),
        "wide": _wide_run(tmp),
    }
    return {name: render_run(run, step_summary=False).html for name, run in runs.items()}


@pytest.mark.parametrize("name", ["failing", "passing", "hostile", "interrupted", "wide"])
def test_report_fits_1280px_opens_on_the_verdict_and_loads_every_image(
    reports: dict[str, Path], name: str, tmp_path: Path
) -> None:
    seen = _probe(reports[name], tmp_path)
    assert seen["innerWidth"] == WIDTH
    assert seen["scrollWidth"] <= WIDTH, f"the page scrolls sideways: {seen['wide']}"
    assert seen["wide"] == []
    assert seen["verdictTop"] is not None
    assert 0 <= seen["verdictTop"] < FIRST_SCREEN
    assert seen["verdictBottom"] <= FIRST_SCREEN
    assert seen["images"], "no plot in the page"
    broken = [i for i in seen["images"] if not (i["complete"] and i["naturalWidth"] > 0)]
    assert broken == []
    assert seen["errors"] == []


def test_the_interrupted_run_says_so_in_the_first_screen(
    reports: dict[str, Path], tmp_path: Path
) -> None:
    seen = _probe(reports["interrupted"], tmp_path)
    assert "run interrupted, history partial" in seen["verdictText"]


def test_a_broken_image_is_caught(reports: dict[str, Path], tmp_path: Path) -> None:
    """The probe can fail: a plot that does not decode is reported as not loaded."""
    broken = tmp_path / "broken" / "report.html"
    broken.parent.mkdir()
    text = reports["failing"].read_text(encoding="utf-8")
    broken.write_text(
        re.sub(
            r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,AAAA", text, count=1
        ),
        encoding="utf-8",
    )
    seen = _probe(broken, tmp_path)
    assert [i for i in seen["images"] if i["naturalWidth"] == 0]
