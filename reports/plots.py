"""Three plots a reviewer reads at a glance, each returned as PNG bytes.

Figures are built with :class:`matplotlib.figure.Figure` and rendered by the
Agg canvas directly: no pyplot, so no global figure state, no display, and it is
safe to call from any thread.

>>> png = status_plot(run.ops, run.faults, t0_ns=run.t0_ns)  # doctest: +SKIP
>>> Path("plot_status.png").write_bytes(png)  # doctest: +SKIP

Large runs are thinned for drawing only: the ordinary answers (``scanning``,
``complete``, other tenants' correct refusals, latency points) are sampled
down to a cap, the owner's ``not_found``/``refused`` and ``failed`` answers are
always drawn, and the title says so. Every anomaly class with anomalies gets its
own timeline (:func:`class_timeline_plot`).
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.history import schema as S
from reports._markup import clip

_NS = 1_000_000_000
MAX_POINTS = 20_000  # per series; beyond this the plot shows a regular sample
MAX_FAULT_LABELS = 16
_DPI = 100
_STATUS_COLOURS = {
    "scanning": "#4c72b0",
    "complete": "#55a868",
    "not_found": "#c44e52",
    "failed": "#8172b2",
}
_OTHER_COLOUR = "#999999"
_ANOMALY_COLOUR = "#d62728"
_REFUSAL_COLOUR = "#c7d3dd"  # another tenant refused: correct, so pale and neutral
CORRECT_REFUSAL = "other tenant: refused/not_found (correct)"
_KIND_COLOURS = {"discover": "#dd8452", "status": "#4c72b0", "results": "#55a868"}
_FAULT_PALETTE = ("#f2b134", "#9b59b6", "#3498db", "#e67e22", "#1abc9c", "#e84393", "#7f8c8d")


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def _thin(frame: pd.DataFrame, cap: int = MAX_POINTS) -> tuple[pd.DataFrame, int]:
    """Every k-th row so at most ``cap`` remain; returns (rows, k)."""
    step = max(1, math.ceil(len(frame) / cap))
    return frame.iloc[::step], step


def _shade_faults(axes: list[Axes], faults: pd.DataFrame, t0_ns: int) -> None:
    """Shade each fault window on every row; label them on the top row."""
    names = list(dict.fromkeys(faults[S.FAULT].astype(str))) if len(faults) else []
    colour = {n: _FAULT_PALETTE[i % len(_FAULT_PALETTE)] for i, n in enumerate(names)}
    label = len(faults) <= MAX_FAULT_LABELS
    for f in faults.itertuples(index=False):
        start = (int(getattr(f, S.T_START)) - t0_ns) / _NS
        end = (max(int(getattr(f, S.T_START)), int(getattr(f, S.T_END))) - t0_ns) / _NS
        c = colour[str(getattr(f, S.FAULT))]
        for ax in axes:
            if end > start:
                ax.axvspan(start, end, color=c, alpha=0.18, lw=0)
            else:
                ax.axvline(start, color=c, lw=1.2, alpha=0.8)
        if label:
            text = clip(f"{getattr(f, S.FAULT_ID)} {getattr(f, S.FAULT)}", 28)
            axes[0].annotate(
                text,
                xy=(start, 1.0),
                xycoords=("data", "axes fraction"),
                rotation=35,
                fontsize=7,
                va="bottom",
                ha="left",
                color="#333333",
                annotation_clip=False,
            )


def _owners(ops: pd.DataFrame) -> pd.Series:
    """scan id -> the tenant whose discover was answered with it."""
    disc = ops[(ops[S.KIND] == "discover") & (ops[S.OUTCOME] == "ok") & (ops[S.SCAN_ID] != "")]
    return disc.drop_duplicates(S.SCAN_ID).set_index(S.SCAN_ID)[S.TENANT]


# (lane label, colour, marker): the status plot's lanes, bottom to top.
_LANES: tuple[tuple[str, str, str], ...] = (
    ("scanning", _STATUS_COLOURS["scanning"], "o"),
    ("complete", _STATUS_COLOURS["complete"], "o"),
    ("failed", _STATUS_COLOURS["failed"], "o"),
    ("other", _OTHER_COLOUR, "o"),
    (CORRECT_REFUSAL, _REFUSAL_COLOUR, "o"),
    ("owner: not_found", _ANOMALY_COLOUR, "o"),
    ("owner: refused", _ANOMALY_COLOUR, "s"),
    ("owner: results not_found", _ANOMALY_COLOUR, "x"),
)


def _lane_of(ops: pd.DataFrame) -> pd.Series:
    """Each answered status or results op's lane label ("" for results that are not drawn)."""
    owner = _owners(ops).reindex(ops[S.SCAN_ID]).to_numpy()
    mine = ops[S.TENANT].to_numpy() == owner
    word = ops[S.BODY_STATUS].astype(str).to_numpy()
    status = (ops[S.KIND] == "status").to_numpy()
    results = (ops[S.KIND] == "results").to_numpy()
    gone = (word == "not_found") | (results & (ops[S.HTTP_STATUS].to_numpy() == 404))
    refusal = gone | (word == "refused")
    known = np.isin(word, ["scanning", "complete", "failed"])
    lane = np.select(
        [
            refusal & ~mine,
            status & gone & mine,
            refusal & mine & (word == "refused"),
            results & gone & mine,
            status & known,
            status,
        ],
        [
            CORRECT_REFUSAL,
            "owner: not_found",
            "owner: refused",
            "owner: results not_found",
            word,
            "other",
        ],
        default="",
    )
    return pd.Series(lane, index=ops.index)


def status_plot(ops: pd.DataFrame, faults: pd.DataFrame, *, t0_ns: int) -> bytes:
    """Status answers over time, one row per worker, fault windows shaded.

    x is seconds into the run; each status poll is a point coloured by its state
    on its own lane within the worker's row. Red lanes are the scan's owner being
    told ``not_found`` or ``refused`` (status, or results); another tenant refused
    or told ``not_found`` about a scan that is not theirs is a correct refusal,
    drawn in a pale neutral colour on its own lane.
    """
    answered = ops[ops[S.WORKER].astype("int64") >= 0] if len(ops) else ops
    workers = sorted(int(w) for w in answered[S.WORKER].unique()) if len(answered) else []
    lanes_of = _lane_of(answered) if len(answered) else pd.Series(dtype=object)
    rows = max(1, len(workers))
    fig = Figure(figsize=(11, 1.6 + 1.45 * rows), layout="constrained")
    axes_arr = fig.subplots(rows, 1, sharex=True, squeeze=False)
    axes: list[Axes] = [a for (a,) in axes_arr]
    thinned_by = 1
    legend_done: set[str] = set()
    for ax, w in zip(axes, workers, strict=False):
        on_worker = (answered[S.WORKER] == w).to_numpy()
        for lane, (label, colour, marker) in enumerate(_LANES):
            pts = answered[on_worker & (lanes_of == label).to_numpy()]
            if label in ("scanning", "complete", CORRECT_REFUSAL):
                pts, step = _thin(pts)
                thinned_by = max(thinned_by, step)
            if not len(pts):
                continue
            x = (pts[S.T_INVOKE].to_numpy() - t0_ns) / _NS
            size = 22 if colour == _ANOMALY_COLOUR else 9
            ax.scatter(x, np.full(len(x), lane), label=None if label in legend_done else label,
                       marker=marker, color=colour, s=size, linewidths=1)  # fmt: skip
            legend_done.add(label)
        ax.set_yticks(range(len(_LANES)), [lbl for lbl, _, _ in _LANES], fontsize=7)
        ax.set_ylim(-0.7, len(_LANES) - 0.3)
        ax.set_ylabel(f"worker {w}", rotation=0, ha="right", va="center", fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    if not workers:
        axes[0].text(0.5, 0.5, "no answered ops", ha="center", va="center",
                     transform=axes[0].transAxes)  # fmt: skip
    _shade_faults(axes, faults, t0_ns)
    axes[-1].set_xlabel("seconds into the run")
    title = "Answers per worker over time (red: the owner told not_found/refused; shaded: faults)"
    if thinned_by > 1:
        title += f" - ordinary answers: 1 in {thinned_by} shown"
    fig.suptitle(title, fontsize=11)
    if legend_done:
        fig.legend(loc="outside lower center", fontsize=8, ncols=min(4, len(legend_done)),
                   frameon=False)  # fmt: skip
    return _png(fig)


def class_timeline_plot(
    name: str,
    anomalies: pd.DataFrame,
    ops: pd.DataFrame,
    faults: pd.DataFrame,
    *,
    t0_ns: int,
    count: int,
) -> bytes:
    """One anomaly class over time: its anomalous ops by worker (red), every other
    answered op as context (grey), fault windows shaded.

    ``anomalies`` has the op columns ``t_invoke_ns`` and ``worker`` (the ops
    verdict.json names for the class; often only its recorded witnesses);
    ``count`` is the class's unexcused count, for the title.
    """
    fig = Figure(figsize=(11, 2.9), layout="constrained")
    ax = fig.subplots()
    answered = ops[(ops[S.WORKER].astype("int64") >= 0) & (ops[S.KIND] != "discover")]
    context, step = _thin(answered)
    if len(context):
        ax.scatter((context[S.T_INVOKE].to_numpy() - t0_ns) / _NS,
                   context[S.WORKER].to_numpy(dtype=float), s=8, color="#b5b5b5",
                   linewidths=0, label="other answers")  # fmt: skip
    if len(anomalies):
        ax.scatter((anomalies[S.T_INVOKE].to_numpy() - t0_ns) / _NS,
                   anomalies[S.WORKER].to_numpy(dtype=float), s=40, marker="X",
                   color=_ANOMALY_COLOUR, label=name)  # fmt: skip
        ax.legend(loc="upper right", fontsize=8)
    workers = sorted({int(w) for w in answered[S.WORKER]} | {int(w) for w in anomalies[S.WORKER]})
    ax.set_yticks(workers, [f"worker {w}" for w in workers] if workers else [], fontsize=8)
    _shade_faults([ax], faults, t0_ns)
    ax.set_xlabel("seconds into the run")
    shown = len(anomalies)
    title = f"{clip(name, 40)}: {count} unexcused {'anomaly' if count == 1 else 'anomalies'}"
    if shown < count:
        title += f" ({shown} recorded witnesses shown)"
    if step > 1:
        title += f"; other answers 1 in {step}"
    ax.set_title(title, fontsize=10, pad=40 if 0 < len(faults) <= MAX_FAULT_LABELS else 6)
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def rates_plot(table: pd.DataFrame) -> bytes:
    """Anomaly rate per class with its 95% interval; classes with no opportunities say so.

    ``table`` is :func:`reports.tables.class_table`'s frame.
    """
    fig = Figure(figsize=(9, 4.2), layout="constrained")
    ax = fig.subplots()
    names = list(table["class"])[::-1]
    y = np.arange(len(names))
    rows = table.set_index("class").loc[names]
    rate = rows["rate_pct"].to_numpy(dtype=float)
    lo, hi = rows["ci95_low_pct"].to_numpy(dtype=float), rows["ci95_high_pct"].to_numpy(dtype=float)
    known = ~np.isnan(rate)
    colours = ["#c44e52" if v == "fail" else "#8c8c8c" for v in rows["verdict"]]
    ax.barh(y[known], rate[known], color=[c for c, k in zip(colours, known, strict=True) if k])
    err = np.vstack([rate[known] - lo[known], hi[known] - rate[known]])
    ax.errorbar(rate[known], y[known], xerr=err, fmt="none", ecolor="#222222", capsize=3, lw=1)
    top = float(np.nanmax(hi)) if known.any() else 1.0
    for yi, (_, r) in zip(y, rows.iterrows(), strict=True):
        if r["verdict"] == "unknown":
            note = "checker error"
        elif math.isnan(float(r["rate_pct"])):
            note = "no data (no opportunities)"
        else:
            note = f"{int(r['count'])}/{int(r['opportunities'])}"
        x = 0 if math.isnan(float(r["rate_pct"])) else float(r["ci95_high_pct"])
        ax.text(x + top * 0.01, float(yi), note, va="center", fontsize=8, color="#333333")
    ax.set_yticks(y, names)
    ax.set_xlim(0, min(max(top * 1.25, 1.0), 115.0))
    ax.set_xlabel("unexcused anomaly rate (% of opportunities), bars: 95% Wilson interval")
    ax.set_title("Anomaly rate per class (red: over threshold)")
    ax.grid(axis="x", alpha=0.3)
    return _png(fig)


def latency_plot(ops: pd.DataFrame, faults: pd.DataFrame, *, t0_ns: int) -> bytes:
    """Op duration (ms, log scale) over time, coloured by kind, fault windows shaded."""
    fig = Figure(figsize=(11, 3.8), layout="constrained")
    ax = fig.subplots()
    done = ops[ops[S.T_COMPLETE] >= ops[S.T_INVOKE]] if len(ops) else ops
    thinned_by = 1
    for kind in S.KINDS:
        pts = done[done[S.KIND] == kind]
        if not len(pts):
            continue
        pts, step = _thin(pts)
        thinned_by = max(thinned_by, step)
        x = (pts[S.T_INVOKE].to_numpy() - t0_ns) / _NS
        ms = np.maximum((pts[S.T_COMPLETE] - pts[S.T_INVOKE]).to_numpy() / 1e6, 1e-3)
        ax.scatter(x, ms, s=10, alpha=0.7, color=_KIND_COLOURS[kind], label=kind, linewidths=0)
    if len(done):
        ax.set_yscale("log")
        ax.legend(loc="upper right", fontsize=8)
    else:
        ax.text(0.5, 0.5, "no completed ops", ha="center", va="center", transform=ax.transAxes)
    _shade_faults([ax], faults, t0_ns)
    ax.set_xlabel("seconds into the run")
    ax.set_ylabel("op duration (ms, log)")
    title = "Latency over time by op kind (shaded: fault windows)"
    if thinned_by > 1:
        title += f" - 1 in {thinned_by} shown"
    ax.set_title(title, pad=40 if 0 < len(faults) <= MAX_FAULT_LABELS else 6)
    ax.grid(alpha=0.3)
    return _png(fig)
