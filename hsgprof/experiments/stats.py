"""Confidence intervals: Student-t over seeds, and a cluster bootstrap over images."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from scipy import stats as _st


def t_interval(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of the mean over independent runs (seeds); NaN bounds with fewer than 2."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], float)
    if v.size == 0:
        return float("nan"), float("nan"), float("nan")
    m = float(v.mean())
    if v.size < 2:
        return m, float("nan"), float("nan")
    half = float(_st.t.ppf(0.5 + level / 2, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size))
    return m, m - half, m + half


def cluster_bootstrap(values: np.ndarray, groups: np.ndarray, n_boot: int = 200, level: float = 0.95,
                      seed: int = 0, stat: Callable[[np.ndarray], float] = np.mean) -> tuple[float, float]:
    """Percentile interval of ``stat`` resampling whole groups (images) with replacement.

    Objects of one image share the scene latent, so they are resampled together.
    """
    values, groups = np.asarray(values, float), np.asarray(groups)
    uniq, inv = np.unique(groups, return_inverse=True)
    if uniq.size < 2:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(inv == g) for g in range(uniq.size)]
    out = np.empty(n_boot)
    for b in range(n_boot):
        pick = rng.integers(0, uniq.size, uniq.size)
        out[b] = stat(values[np.concatenate([members[i] for i in pick])])
    a = (1 - level) / 2
    return float(np.quantile(out, a)), float(np.quantile(out, 1 - a))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rank correlation (NaN with fewer than 3 points)."""
    if len(x) < 3:
        return float("nan")
    return float(_st.spearmanr(x, y).statistic)
