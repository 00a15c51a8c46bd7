"""``scanproof calibrate``: measure how long the app's scans take; print a contract snippet.

Starts the cluster like ``run`` (same target and cluster options), runs a few
fault-free scans with dense polling (:mod:`harness.run.calibrate`), prints each
scan's time to terminal, the median, p95 and spread, the derived time scale,
scan deadline and poll floor, and the lines to paste into the contract file so
that later runs need no calibration::

    $ scanproof calibrate --app mypkg.main:app --contract jobs.toml
    ...
    time_scale = 0.00612
    scan_deadline_s = 3.15

Exits 0 when it measured, 2 on bad usage, 3 when it could not (no scan
accepted, the app answered 5xx, too few scans finished within
``--calibrate-timeout``): the line says which, with the answers seen.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli._options import (
    add_calibration_options,
    add_cluster_options,
    check_target_args,
    start_cluster,
)
from harness.errors import EXIT_PASS

if TYPE_CHECKING:
    from harness.run.calibrate import Calibration

HELP = "measure how long the app's scans take and print the time scale to put in its contract"
CALIBRATION_JSON = "calibration.json"


def configure(parser: argparse.ArgumentParser) -> None:
    add_cluster_options(parser)
    g = parser.add_argument_group("calibration")
    g.add_argument("--contract", type=Path, default=None, help="contract .toml file")
    add_calibration_options(g, scans_flag="--scans")
    g.add_argument(
        "--out",
        type=Path,
        default=None,
        help=f"keep the calibration's history (calibrate.jsonl) and {CALIBRATION_JSON} here "
        "(default: a temporary directory, removed)",
    )


def format_calibration(c: Calibration, *, derived: bool = True) -> str:
    """The measurements, one scan a line, then (``derived``) what was derived from them."""
    lines = [f"{'scan':<24} {'tenant':<11} {'filters':<18} {'seconds':>8} {'+-':>6} polls state"]
    for s in c.scans:
        seconds = "-" if s.seconds is None else f"{s.seconds:.3f}"
        lines.append(
            f"{s.scan_id[:24]:<24} {s.tenant:<11} {s.filters[:18]:<18} {seconds:>8} "
            f"{s.resolution_s:>6.3f} {s.polls:>5} {s.state}"
        )
    if not derived:
        return "\n".join(lines)
    lines += [
        f"n {c.n}  median {c.median_s:.3f} s  p95 {c.p95_s:.3f} s  spread {c.spread_s:.3f} s  "
        f"({c.requests} requests in {c.elapsed_s:.1f} s; status answers in "
        f"{c.answer_latency_s * 1000:.1f} ms, median)",
        f"time scale {c.time_scale:.6g} real s per service s (the median over the "
        f"{c.catalogue_scan_s:g} service-second scan the scenarios are written for)",
        f"scan deadline {c.scan_deadline_s:.4g} s (p95 x {c.slack:g}); runs never poll faster "
        f"than every {c.poll_floor_s * 1000:.1f} ms",
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from harness.run.calibrate import CalibrationError, CalibrationSettings, calibrate
    from harness.run.client import read_meta
    from harness.targets.contract import Contract, load_contract

    flags = check_target_args(args)  # a bad app, preset, flag or Redis: exit 2, nothing started
    contract = load_contract(args.contract) if args.contract else Contract()
    default = CalibrationSettings()
    settings = CalibrationSettings(
        scans=args.calibrate_scans,
        timeout_s=args.calibrate_timeout or default.timeout_s,
    )
    out: Path = args.out or Path(tempfile.mkdtemp(prefix="scanproof-calibrate-"))
    if args.out is not None:
        from harness.run.runner import check_out_dir

        check_out_dir(out, holds=CALIBRATION_JSON, what="calibration")
    try:
        with start_cluster(args, flags) as cluster:
            meta = read_meta(cluster.router_url, contract.meta_path)
            if isinstance(meta.get("time_scale"), int | float):
                print(f"the app's meta states time_scale = {meta['time_scale']}; measuring anyway")
            try:
                measured = calibrate(cluster.router_url, contract, out, settings)
            except CalibrationError as exc:
                if exc.calibration is not None and exc.calibration.scans:
                    print(format_calibration(exc.calibration, derived=False))
                raise
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)
    if args.out is not None:
        (out / CALIBRATION_JSON).write_text(json.dumps(measured.to_json(), indent=2) + "\n")
    print(f"calibrated {args.app}:")
    print(format_calibration(measured))
    print("\n# paste into the --contract file, so that runs need no calibration:")
    print(measured.snippet(), end="")
    return EXIT_PASS
