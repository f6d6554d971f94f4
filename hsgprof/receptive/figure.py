"""The gradient map of each level's centre cell, with its theoretical and effective fields drawn on it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.patches import Rectangle

from .api import FieldsResult


def plot_fields(res: FieldsResult) -> plt.Figure:
    """One panel per level: mean |gradient| (log colour scale), the effective square (solid) and the
    exact theoretical box (dashed, when it fits the input)."""
    n = len(res.levels)
    h, w = res.input_shape[-2:]
    cols = min(n, 3)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols * max(w / h, 1) ** 0.5, 3.6 * rows), squeeze=False)
    for ax, lv in zip(axes.ravel(), res.levels):
        m = lv.grad_map
        pos = m[m > 0]
        if len(pos):
            im = ax.imshow(np.where(m > 0, m, np.nan), cmap="magma",
                           norm=LogNorm(vmin=max(pos.min(), pos.max() * 1e-6), vmax=pos.max()))
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)
        cy, cx = lv.centre
        r = lv.effective_radius
        ax.add_patch(Rectangle((cx - r - 0.5, cy - r - 0.5), 2 * r + 1, 2 * r + 1, fill=False, ec="cyan", lw=1.2,
                               label=f"effective {lv.effective_rf} px ({lv.share:.0%})"))
        if not lv.theoretical_clipped:
            th, tw = lv.theoretical_hw
            ax.add_patch(Rectangle((cx - (tw - 1) / 2 - 0.5, cy - (th - 1) / 2 - 0.5), tw, th, fill=False, ec="white",
                                   ls="--", lw=1.0, label=f"theoretical {lv.theoretical_rf} px"))
        stride = "" if lv.stride is None else f", stride {lv.stride:g}"
        theo = "global" if lv.is_global else (f"≥ {lv.theoretical_rf}" if lv.theoretical_clipped else lv.theoretical_rf)
        ax.set_title(f"{lv.name}{stride}: theoretical {theo}, effective {lv.effective_rf} px", fontsize=9)
        ax.set_xlim(-0.5, w - 0.5)
        ax.set_ylim(h - 0.5, -0.5)
        ax.legend(loc="lower right", fontsize=7)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    fig.suptitle(f"{res.target}: |∂ centre cell / ∂ input|, input {'x'.join(map(str, res.input_shape))}, "
                 f"{res.weights}, mean of {res.samples} inputs", fontsize=10)
    fig.tight_layout()
    return fig
