"""Power analysis for Δ = H_grid − H_hybrid: how many seeds and scored objects detect |Δ| ≥ δ.

Model of one seed's measured Δ: Δ_s = Δ + e_s + ē_s, with e_s the training-run difference
between seeds (variance 2σ²_seed: two independently trained models) and ē_s the mean over m
scored objects of the per-object difference (variance 2σ²_object / m). Correlation between the
two variants' errors on the same objects is ignored, which overstates the variance (conservative).

The verdict is a two-sided t-interval over n seeds at level 1 − α. The minimum detectable
difference at power 1 − β (the |Δ| that gives an interval excluding 0 with probability 1 − β):

    MDΔ(n, m) = (t_{1−α/2, n−1} + t_{1−β, n−1}) · sqrt((2σ²_seed + 2σ²_object / m) / n)

σ_seed and σ_object come from pilot runs (:func:`variance_components`) or from the compared runs
themselves (the post-hoc ``power`` row of the results).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats


def mdd(n_seeds: int, sigma_seed: float, sigma_object: float, m_objects: int, alpha: float = 0.05,
        power: float = 0.8) -> float:
    """Minimum detectable |Δ| (nats) with n seeds and m scored objects per run; inf below 2 seeds."""
    if n_seeds < 2 or m_objects < 1:
        return float("inf")
    df = n_seeds - 1
    k = stats.t.ppf(1 - alpha / 2, df) + stats.t.ppf(power, df)
    return float(k * math.sqrt((2 * sigma_seed ** 2 + 2 * sigma_object ** 2 / m_objects) / n_seeds))


def seeds_needed(delta: float, sigma_seed: float, sigma_object: float, m_objects: int, alpha: float = 0.05,
                 power: float = 0.8, max_seeds: int = 100) -> int | None:
    """The fewest seeds (≥ 2) whose MDΔ ≤ δ, or None if more than ``max_seeds`` would be needed."""
    for n in range(2, max_seeds + 1):
        if mdd(n, sigma_seed, sigma_object, m_objects, alpha, power) <= delta:
            return n
    return None


def objects_needed(delta: float, n_seeds: int, sigma_seed: float, sigma_object: float, alpha: float = 0.05,
                   power: float = 0.8, max_objects: int = 10 ** 6) -> int | None:
    """The fewest scored objects per run whose MDΔ ≤ δ at ``n_seeds``, or None (seed noise alone is too big)."""
    if mdd(n_seeds, sigma_seed, 0.0, 1, alpha, power) > delta:
        return None
    lo, hi = 1, max_objects
    if mdd(n_seeds, sigma_seed, sigma_object, hi, alpha, power) > delta:
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        if mdd(n_seeds, sigma_seed, sigma_object, mid, alpha, power) <= delta:
            hi = mid
        else:
            lo = mid + 1
    return lo


def variance_components(per_object: pd.DataFrame, value: str = "nll_bit", run: str = "seed") -> dict[str, Any]:
    """σ_object (pooled within-run SD of ``value``) and σ_seed (between-run SD of run means, with the
    object-sampling part removed, floored at 0) from one variant's scored objects, one group per run."""
    groups = [g[value].to_numpy(float) for _, g in per_object.groupby(run)]
    n_obj = np.array([len(g) for g in groups])
    within = np.array([g.var(ddof=1) if len(g) > 1 else np.nan for g in groups])
    sigma_obj = float(np.sqrt(np.nansum(within * (n_obj - 1)) / max(np.sum(n_obj - 1), 1)))
    means = np.array([g.mean() for g in groups])
    if len(means) > 1:
        between = float(means.var(ddof=1) - sigma_obj ** 2 / float(np.mean(n_obj)))
    else:
        between = float("nan")
    return {"sigma_object": sigma_obj, "sigma_seed": math.sqrt(max(between, 0.0)) if np.isfinite(between) else float("nan"),
            "var_between_raw": between, "n_runs": len(groups), "objects_per_run": float(np.mean(n_obj)),
            "run_means": means.tolist()}


def pooled(components: list[dict[str, Any]]) -> dict[str, float]:
    """Conservative pooling over pilot variants: the largest σ_object, and σ_seed from the pooled
    between-run variance (each variant contributes n_runs − 1 degrees of freedom), never below the
    largest single estimate's half."""
    ok = [c for c in components if c["n_runs"] > 1 and np.isfinite(c["var_between_raw"])]
    sigma_obj = max(c["sigma_object"] for c in components)
    if not ok:
        return {"sigma_object": sigma_obj, "sigma_seed": float("nan"), "df_seed": 0}
    df = sum(c["n_runs"] - 1 for c in ok)
    var = sum(max(c["var_between_raw"], 0.0) * (c["n_runs"] - 1) for c in ok) / df
    return {"sigma_object": sigma_obj, "sigma_seed": math.sqrt(var), "df_seed": df}


def power_table(sigma_seed: float, sigma_object: float, objects: list[int], seeds: list[int], alpha: float = 0.05,
                power: float = 0.8) -> pd.DataFrame:
    """MDΔ for every (seeds, objects) pair: the grid a design is chosen from."""
    return pd.DataFrame([{"n_seeds": n, "objects_per_run": m, "mdd": mdd(n, sigma_seed, sigma_object, m, alpha, power)}
                         for n in seeds for m in objects])
