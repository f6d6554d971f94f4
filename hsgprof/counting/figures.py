"""Figures of counting results: functions take tidy rows and return a Figure (saving is the caller's job)."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

CONVENTION = "FLOPs = 2 × MACs (referee, GEMM work)"


def sweep_figure(rows: pd.DataFrame, sweep: str, xlabel: str, x: Sequence[float] | None = None,
                 title: str | None = None) -> Figure:
    """Total GEMM GFLOPs (left) and the global-reasoning share (right) along one sweep, one line per mode."""
    df = rows[rows.sweep == sweep]
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax2 = ax.twinx()
    for mode, g in df.groupby("mode", sort=False):
        xs = list(x) if x is not None and len(x) == len(g) else list(range(len(g)))
        ax.plot(xs, g.flops / 1e9, marker="o", label=f"total GFLOPs ({mode})")
        if "global_share" in g and g.global_share.notna().any():
            ax2.plot(xs, g.global_share * 100, marker="s", linestyle="--", label=f"global share % ({mode})")
        if x is None or len(x) != len(g):
            ax.set_xticks(xs, [str(v) for v in g.value], rotation=30, ha="right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("GFLOPs (GEMM, 2 × MACs)")
    ax2.set_ylabel("global-reasoning share of FLOPs [%]")
    ax2.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    lines = ax.get_legend_handles_labels()[0] + ax2.get_legend_handles_labels()[0]
    labels = ax.get_legend_handles_labels()[1] + ax2.get_legend_handles_labels()[1]
    ax.legend(lines, labels, fontsize=8, loc="upper left")
    ax.set_title(title or f"HSG-Det FLOPs vs {xlabel} ({CONVENTION})", fontsize=9)
    fig.tight_layout()
    return fig


def training_figure(rows: pd.DataFrame, title: str | None = None) -> Figure:
    """Forward and backward GFLOPs per measured step (referee), with backward/forward ratios annotated."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    labels = [f"{r.what}\n{r.input}" for r in rows.itertuples()]
    xs = range(len(rows))
    ax.bar([i - 0.2 for i in xs], rows.forward_flops / 1e9, width=0.4, label="forward")
    ax.bar([i + 0.2 for i in xs], rows.backward_flops / 1e9, width=0.4, label="backward")
    for i, r in zip(xs, rows.itertuples()):
        ax.annotate(f"×{r.backward_over_forward:.2f}", (i + 0.2, r.backward_flops / 1e9), ha="center",
                    va="bottom", fontsize=8)
    ax.set_xticks(list(xs), labels, fontsize=7)
    ax.set_ylabel("GFLOPs (GEMM, 2 × MACs)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(title or f"Forward vs backward FLOPs, measured ({CONVENTION})", fontsize=9)
    fig.tight_layout()
    return fig


def components_figure(table: pd.DataFrame, title: str | None = None) -> Figure:
    """Measured vs seed parameters per component, and each component's share of FLOPs."""
    comps = table[table.kind == "component"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 4.0))
    xs = range(len(comps))
    a.bar([i - 0.2 for i in xs], comps.params / 1e6, width=0.4, label="measured")
    if "seed_params" in comps:
        a.bar([i + 0.2 for i in xs], comps.seed_params / 1e6, width=0.4, label="seed")
    a.set_xticks(list(xs), comps.component, rotation=40, ha="right", fontsize=7)
    a.set_ylabel("parameters [M]")
    a.legend(fontsize=8)
    b.bar(list(xs), comps.share * 100)
    b.set_xticks(list(xs), comps.component, rotation=40, ha="right", fontsize=7)
    b.set_ylabel("share of GEMM FLOPs [%]")
    fig.suptitle(title or "HSG-Det per component", fontsize=9)
    fig.tight_layout()
    return fig
