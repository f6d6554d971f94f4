"""The report's headline figures: each a function from tidy data to a matplotlib ``Figure``.

Functions here only draw: they take DataFrames already read from results files (by
:mod:`hsgprof.report.headlines`), never a file or the store, and they never save; the caller
renders the figure and decides where it goes. Titles and notes come from the
caller too, so every number printed on a figure is one the caller read from a results file.
Figures use ``matplotlib.figure.Figure`` directly (no pyplot state, no GUI backend).
"""

from __future__ import annotations

import math

import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Rectangle

from hsgprof.claims.rules import fmt

from .colours import HIGHLIGHT, MEASURED, SEED, verdict_fill, verdict_strong

SIZE = (5.1, 2.85)          # inches: the size a figure is shown at, two to a row on landscape A4
FONT = 7.0


def _figure(size: tuple[float, float] = SIZE) -> Figure:
    return Figure(figsize=size, layout="constrained")


def _style(ax, title: str) -> None:
    ax.set_title(title, fontsize=FONT + 0.5, loc="left")
    ax.tick_params(labelsize=FONT)
    ax.xaxis.label.set_size(FONT)
    ax.yaxis.label.set_size(FONT)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def params_per_component(df: pd.DataFrame, title: str) -> Figure:
    """Measured against seed parameters per component, as paired horizontal bars (millions, linear).

    ``df``: one row per component, top to bottom, with ``component``, ``params`` and ``seed_params``
    (NaN where the seed gives no figure).
    """
    fig = _figure()
    ax = fig.subplots()
    y = range(len(df))
    h = 0.38
    ax.barh([i - h / 2 for i in y], df["params"] / 1e6, h, color=MEASURED, label="measured")
    seed = df["seed_params"].astype(float)
    ax.barh([i + h / 2 for i in y], seed.fillna(0) / 1e6, h, color=SEED, label="seed")
    top = max(df["params"].max(), seed.max(skipna=True) if seed.notna().any() else 0) / 1e6
    for i, (m, s) in enumerate(zip(df["params"], seed)):
        ax.text(m / 1e6 + top * 0.01, i - h / 2, fmt(m), va="center", fontsize=FONT - 1, color=MEASURED)
        if not math.isnan(s):
            ax.text(s / 1e6 + top * 0.01, i + h / 2, fmt(s), va="center", fontsize=FONT - 1, color="#555555")
    ax.set_yticks(list(y), df["component"])
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.15)
    ax.set_xlabel("parameters [M = 1e6]")
    ax.legend(fontsize=FONT, frameon=False, loc="lower right")
    _style(ax, title)
    return fig


def flop_share(df: pd.DataFrame, title: str, highlight_label: str) -> Figure:
    """Each component's share of the model's FLOPs, as horizontal bars labelled "share (GFLOPs)".

    ``df``: ``component``, ``flops`` (FLOPs), ``share`` (fraction of the total) and ``highlight``
    (bool: drawn in the highlight colour, named ``highlight_label`` in the legend).
    """
    fig = _figure()
    ax = fig.subplots()
    y = list(range(len(df)))
    pct = df["share"] * 100
    ax.barh(y, pct, 0.7, color=[HIGHLIGHT if h else MEASURED for h in df["highlight"]])
    for i, (p, f) in enumerate(zip(pct, df["flops"])):
        ax.text(p + pct.max() * 0.01, i, f"{p:.2g}% ({f / 1e9:.3g} G)" if p < 1 else f"{p:.1f}% ({f / 1e9:.3g} G)",
                va="center", fontsize=FONT - 1)
    ax.set_yticks(y, df["component"])
    ax.invert_yaxis()
    ax.set_xlim(0, pct.max() * 1.55)
    ax.set_xlabel("share of the model's FLOPs [%]")
    ax.legend(handles=[Patch(color=MEASURED, label="grid path"), Patch(color=HIGHLIGHT, label=highlight_label)],
              fontsize=FONT, frameon=False, loc="lower right")
    _style(ax, title)
    return fig


def memory_against_card(points: pd.DataFrame, usable_gib: float, card: str, title: str) -> Figure:
    """Peak memory against batch size for each configuration, under the card's usable memory.

    ``points``: ``config`` (legend label, which should carry its max batch), ``batch``, ``peak_GiB``
    and ``fits`` (False: the batch ran out of memory, drawn as a cross at the peak reached).
    """
    fig = _figure()
    ax = fig.subplots()
    palette = ("#1f5fa8", "#2e7d32", "#8e44ad", "#c0392b", "#7f6000", "#117a8b")
    for k, (config, part) in enumerate(points.groupby("config", sort=False)):
        colour = palette[k % len(palette)]
        part = part.sort_values("batch")
        ok = part[part["fits"]]
        ax.plot(ok["batch"], ok["peak_GiB"], "o-", color=colour, ms=3.5, lw=1.2, label=config)
        oom = part[~part["fits"]]
        if len(oom):
            ax.plot(oom["batch"], oom["peak_GiB"], "x", color=colour, ms=5, mew=1.4)
    ax.axhline(usable_gib, color="#c62828", ls="--", lw=1)
    ax.text(points["batch"].min(), usable_gib * 0.985, f" {card}: {usable_gib:.3g} GiB usable", color="#c62828",
            va="top", fontsize=FONT - 0.5)
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:g}")
    ax.set_ylim(0, usable_gib * 1.45)
    ax.set_xlabel("batch size (log scale); × = out of memory")
    ax.set_ylabel("peak reserved [GiB]")
    ax.legend(fontsize=FONT - 1, frameon=False, loc="upper left", ncol=2, columnspacing=1.0, handlelength=1.5)
    _style(ax, title)
    return fig


def latency_ratios(ratios: pd.DataFrame, tolerance: float, shares: pd.DataFrame | None, bound: float | None,
                   title: str) -> Figure:
    """Latency ratio to the reference (median, IQR whiskers) with the declared tolerance band; beside it,
    when ``shares`` is given, the global-reasoning share of time against its share of FLOPs.

    ``ratios``: ``label``, ``ratio``, ``q1``, ``q3``. ``shares``: ``label``, ``time_share``, ``flops_share``.
    ``bound``: the seed's bound on the share (a fraction), drawn as a line.
    """
    fig = _figure()
    fig.suptitle(title, fontsize=FONT + 0.5, x=0.02, ha="left")
    axes = fig.subplots(1, 2, width_ratios=(1.35, 1)) if shares is not None and len(shares) else [fig.subplots()]
    ax = axes[0]
    y = list(range(len(ratios)))
    ax.axvspan(1 - tolerance, 1 + tolerance, color="#b9e4b4", alpha=0.6, lw=0)
    ax.axvline(1.0, color="#555555", lw=0.8)
    ax.errorbar(ratios["ratio"], y, xerr=[ratios["ratio"] - ratios["q1"], ratios["q3"] - ratios["ratio"]],
                fmt="o", color=MEASURED, ms=3.5, capsize=2, lw=1)
    for i, (r, q3) in enumerate(zip(ratios["ratio"], ratios["q3"])):
        ax.text(q3 + 0.03, i, f"{r:.2f}", va="center", fontsize=FONT - 1.5)
    ax.set_yticks(y, ratios["label"])
    ax.invert_yaxis()
    ax.set_xlim(min(0.6, ratios["q1"].min() * 0.9), max(2.0, ratios["q3"].max() * 1.15))
    ax.set_xlabel("latency / reference latency")
    _style(ax, f"ratio (median, IQR); shaded: ±{tolerance:.0%}")
    if len(axes) > 1:
        bx = axes[1]
        y2 = list(range(len(shares)))
        h = 0.38
        bx.barh([i - h / 2 for i in y2], shares["time_share"] * 100, h, color=HIGHLIGHT, label="share of time")
        bx.barh([i + h / 2 for i in y2], shares["flops_share"] * 100, h, color=SEED, label="share of FLOPs")
        if bound is not None:
            bx.axvline(bound * 100, color="#c62828", ls="--", lw=1, label=f"seed: < {bound:.0%}")
        bx.set_yticks(y2, shares["label"])
        bx.invert_yaxis()
        top = max(shares["time_share"].max(), shares["flops_share"].max(), bound or 0) * 100
        bx.set_xlim(0, top * 2.1)
        bx.set_xlabel("share [%]")
        bx.legend(fontsize=FONT - 1, frameon=False, loc="lower right")
        _style(bx, "global reasoning")
    return fig


def entropy_comparison(rows: pd.DataFrame, floor: float | None, ceiling: float | None, title: str) -> Figure:
    """Held-out bit NLL per variant (mean and 95% interval over seeds), controls marked apart, between the
    known floor H(bit|X) and the ceiling H(bit|local) of a model that cannot read the global key.

    ``rows``: ``label``, ``value``, ``ci_low``, ``ci_high``, ``role`` ("variant" or "control") and
    ``primary`` (bool: the variant/head pair the verdict uses, drawn solid).
    """
    fig = _figure()
    ax = fig.subplots()
    y = list(range(len(rows)))
    for i, r in enumerate(rows.itertuples(index=False)):
        control = r.role == "control"
        colour = "#2e7d32" if control else MEASURED
        lo = r.value - r.ci_low if not pd.isna(r.ci_low) else 0
        hi = r.ci_high - r.value if not pd.isna(r.ci_high) else 0
        ax.errorbar([r.value], [i], xerr=[[lo], [hi]], fmt="D" if control else "o", color=colour, capsize=2, lw=1,
                    ms=4, mfc=colour if (r.primary or control) else "white")
    if floor is not None:
        ax.axvline(floor, color="#2e7d32", ls=":", lw=1)
        ax.text(floor, len(rows) - 0.4, f" H(bit|X) = {floor:.3f}", color="#2e7d32", fontsize=FONT - 1,
                va="top")
    if ceiling is not None:
        ax.axvline(ceiling, color="#c62828", ls=":", lw=1)
        ax.text(ceiling, len(rows) - 0.4, f"H(bit|local) = {ceiling:.3f} ", color="#c62828", fontsize=FONT - 1,
                ha="right", va="top")
    ax.set_yticks(y, rows["label"])
    ax.set_ylim(len(rows) - 0.2 + (0.6 if floor is not None or ceiling is not None else 0), -0.6)
    ax.set_xlabel("held-out bit NLL [nats per object]")
    _style(ax, title)
    return fig


def readings_matrix(df: pd.DataFrame, title: str) -> Figure:
    """Verdict of each claim (columns) under each reading of the seed (rows), coloured by verdict.

    ``df``: ``claim``, ``reading``, ``verdict`` (one row per pair; order of first appearance kept).
    """
    claims = list(dict.fromkeys(df["claim"]))
    readings = list(dict.fromkeys(df["reading"]))
    grid = df.set_index(["reading", "claim"])["verdict"]
    fig = _figure()
    ax = fig.subplots()
    for i, reading in enumerate(readings):
        for j, claim in enumerate(claims):
            status = grid.get((reading, claim))
            colour = "#ffffff" if status is None else verdict_fill(status)
            ax.add_patch(_cell(j, i, colour))
    ax.set_xlim(-0.5, len(claims) - 0.5)
    ax.set_ylim(len(readings) - 0.5, -0.5)
    ax.set_xticks(range(len(claims)), claims, rotation=90, fontsize=FONT - 1.5)
    ax.set_yticks(range(len(readings)), readings)
    ax.tick_params(length=0)
    seen = list(dict.fromkeys(df["verdict"]))
    ax.legend(handles=[Patch(facecolor=verdict_fill(s), edgecolor=verdict_strong(s), label=s) for s in seen],
              fontsize=FONT - 0.5, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _style(ax, title)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return fig


def _cell(x: float, y: float, colour: str) -> Rectangle:
    return Rectangle((x - 0.5, y - 0.5), 1, 1, facecolor=colour, edgecolor="white", lw=1)
