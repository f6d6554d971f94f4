"""Figures and display tables for the experiment notebooks: data in, ``Figure``/DataFrame out.

Every function takes the tables :func:`hsgprof.experiments.analysis.load_tables` returns (a dict
of DataFrames) and never saves or shows anything itself.
"""

from __future__ import annotations

import math
from typing import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

VARIANT_COLORS = {"hybrid": "tab:purple", "grid-only": "tab:green", "sparse-only": "tab:orange"}
LN2 = math.log(2)


def verdicts(tables: dict[str, pd.DataFrame], claims: Sequence[str] | None = None) -> pd.DataFrame:
    """The summary rows (claim, value, CI, verdict, evidence), optionally only some claims."""
    s = tables["summary"]
    if claims is not None:
        s = s[s.claim.isin(claims)]
    cols = [c for c in ("claim", "measurement", "value", "ci_low", "ci_high", "unit", "verdict", "evidence") if c in s]
    return s[cols].reset_index(drop=True)


def entropy_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """H per variant and branch (bit and class NLL, nats) and the Δ rows, with CIs over seeds."""
    es = tables["entropy_summary"]
    cols = [c for c in ("quantity", "variant", "head", "primary", "value", "ci_low", "ci_high", "boot_low",
                        "boot_high", "n_seeds", "unit") if c in es]
    return es[cols].reset_index(drop=True)


def information_table(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """I(Y_global; Q | G) and friends (mean over seeds), and the I(Y;Q|X) = 0 toy."""
    info = tables["information_summary"]
    toy = tables["information"]
    toy = toy[toy.g_source == "toy"][["quantity", "method", "value"]].assign(g_source="toy")
    return pd.concat([info, toy], ignore_index=True)


def plot_entropy(tables: dict[str, pd.DataFrame], known: dict[str, float]) -> plt.Figure:
    """Bit NLL per variant/branch with seed CIs, against ln 2 and the known H(bit | X)."""
    es = tables["entropy_summary"]
    d = es[es.quantity == "H[nll_bit]"].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7, 3.6))
    x = np.arange(len(d))
    err = np.array([d.value - d.ci_low, d.ci_high - d.value]) if d.ci_low.notna().all() else None
    bars = ax.bar(x, d.value, yerr=err, capsize=4, color=[VARIANT_COLORS.get(v, "grey") for v in d.variant])
    for bar, primary in zip(bars, d.primary):
        bar.set_alpha(0.95 if primary else 0.4)            # faint: secondary branches of the hybrid
    ax.axhline(LN2, ls="--", c="k", lw=1, label="ln 2: no global information")
    ax.axhline(known.get("h_bit_given_x", float("nan")), ls=":", c="r", lw=1.2, label="H(bit | X) by construction")
    ax.set_xticks(x, [f"{v}\n{h}" for v, h in zip(d.variant, d["head"])], fontsize=8)
    ax.set_ylabel("held-out bit NLL (nats / object)")
    ax.set_title("Upper bounds on H(bit | X): hybrid vs grid (95% CI over seeds)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_delta_occlusion(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Bit NLL per occlusion bin for each variant, and Δ = grid − hybrid with CIs."""
    occ = tables["occlusion"]
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    for variant, d in occ[occ.quantity == "nll_bit"].groupby("variant"):
        a.errorbar(d.bin_mid, d.value, yerr=_err(d), marker="o", capsize=3, label=variant,
                   color=VARIANT_COLORS.get(variant))
    a.axhline(LN2, ls="--", c="k", lw=1)
    a.set_xlabel("occluded fraction of the object")
    a.set_ylabel("bit NLL (nats)")
    a.legend(fontsize=8)
    d = occ[occ.quantity == "delta"]
    b.errorbar(d.bin_mid, d.value, yerr=_err(d), marker="o", capsize=3, color="k")
    b.axhline(0, c="grey", lw=0.8)
    b.set_xlabel("occluded fraction of the object")
    b.set_ylabel("Δ = H_grid − H_hybrid (nats)")
    fig.suptitle("Occlusion corollary: does the hybrid's advantage grow with overlap?")
    fig.tight_layout()
    return fig


def plot_capacity(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Δ against the declared attention-capacity index (log scale), one point per seed."""
    cap = tables["capacity"]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    if len(cap):
        ax.scatter(cap["index"], cap.delta, c="k", s=18, label="per seed")
        m = cap.groupby("index").delta.mean()
        ax.plot(m.index, m.values, "-o", c="tab:purple", label="mean")
        for name, idx in cap.groupby("capacity")["index"].first().items():
            ax.annotate(name, (idx, m[idx]), fontsize=8, xytext=(3, 3), textcoords="offset points")
        ax.set_xscale("log")
    ax.axhline(0, c="grey", lw=0.8)
    ax.set_xlabel("capacity index L·h·N·(N+K)")
    ax.set_ylabel("Δ = H_grid − H_hybrid (nats)")
    ax.set_title("Δ versus attention capacity")
    fig.tight_layout()
    return fig


def plot_gradients(tables: dict[str, pd.DataFrame], seed: int | None = None) -> plt.Figure:
    """Per-branch gradient norms over training (own parameters), and the shared-parameter cosine."""
    g = tables["gradients"]
    if seed is None and len(g):
        seed = int(g.seed.min())
    g = g[g.seed == seed]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for variant, d in g.groupby("variant"):
        for ax, branch in zip(axes[:2], ("dense", "sparse")):
            col = f"grad_{branch}"
            if col in d and d[col].notna().any():
                ax.plot(d.step, d[col], lw=0.8, label=variant, color=VARIANT_COLORS.get(variant))
    for ax, branch in zip(axes[:2], ("grid (dense)", "query (sparse)")):
        ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_title(f"{branch} branch: gradient norm")
        ax.legend(fontsize=8)
    h = g[(g.variant == "hybrid")]
    if "shared_cosine" in h:
        h = h[h.shared_cosine.notna()]
        axes[2].plot(h.step, h.shared_cosine, ".", ms=3, c="tab:purple")
    axes[2].axhline(0, c="grey", lw=0.8)
    axes[2].set_xlabel("step")
    axes[2].set_title("hybrid: cosine of branch gradients on backbone", fontsize=9)
    fig.suptitle(f"seed {seed}")
    fig.tight_layout()
    return fig


def plot_convergence(tables: dict[str, pd.DataFrame], metric: str = "AP50", target: float | None = None
                     ) -> plt.Figure:
    """AP on the convergence set during training, per variant and output mode (mean over seeds)."""
    c = tables["convergence"]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    for (variant, mode), d in c.groupby(["variant", "mode"]):
        m = d.groupby("step")[metric].agg(["mean", "min", "max"])
        ls = {"nms_free": "-", "nms": "--", "fused": ":"}[mode]
        ax.plot(m.index, m["mean"], ls, color=VARIANT_COLORS.get(variant), label=f"{variant} {mode}")
        ax.fill_between(m.index, m["min"], m["max"], color=VARIANT_COLORS.get(variant), alpha=0.12)
    if target is not None:
        ax.axhline(target, c="k", lw=0.8, ls="-.", label=f"declared target {target}")
    ax.set_xlabel("step")
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    ax.set_title("Convergence (band: min–max over seeds)")
    fig.tight_layout()
    return fig


def ap_mode_table(tables: dict[str, pd.DataFrame], set_name: str = "val", breakdown: str = "overall",
                  metric: str = "AP") -> pd.DataFrame:
    """AP (mean [CI] over seeds) by variant and output mode, one column per bin."""
    a = tables["ap_summary"]
    d = a[(a.set == set_name) & (a.breakdown == breakdown) & (a.metric == metric)].copy()
    d["cell"] = [f"{v:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(lo) else f"{v:.3f}"
                 for v, lo, hi in zip(d.value, d.ci_low.astype(float), d.ci_high.astype(float))]
    return d.pivot_table(index=["variant", "mode"], columns="bin", values="cell", aggfunc="first")


def plot_ap_bins(tables: dict[str, pd.DataFrame], set_name: str = "dense", breakdown: str = "density",
                 metric: str = "AP") -> plt.Figure:
    """AP per bin for every variant and mode (mean over seeds, CI bars)."""
    a = tables["ap_summary"]
    d = a[(a.set == set_name) & (a.breakdown == breakdown) & (a.metric == metric)]
    fig, ax = plt.subplots(figsize=(6.5, 3.6))
    bins = sorted(set(d.bin_lo))
    for (variant, mode), dd in d.groupby(["variant", "mode"]):
        dd = dd.sort_values("bin_lo")
        ls = {"nms_free": "-", "nms": "--", "fused": ":"}[mode]
        ax.errorbar([bins.index(b) for b in dd.bin_lo], dd.value, yerr=_err(dd), fmt="o" + ls, capsize=3,
                    color=VARIANT_COLORS.get(variant), label=f"{variant} {mode}")
    labels = d.drop_duplicates("bin_lo").sort_values("bin_lo").bin
    ax.set_xticks(range(len(bins)), labels)
    ax.set_xlabel({"density": "objects per image", "occlusion": "occluded fraction"}.get(breakdown, breakdown))
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    ax.set_title(f"{metric} by {breakdown} ({set_name} set)")
    fig.tight_layout()
    return fig


def _err(d: pd.DataFrame) -> np.ndarray | None:
    lo, hi = d.ci_low.astype(float).to_numpy(), d.ci_high.astype(float).to_numpy()
    if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
        return None
    return np.array([d.value.to_numpy() - lo, hi - d.value.to_numpy()])


def plot_controls(tables: dict[str, pd.DataFrame], known: dict[str, float]) -> plt.Figure:
    """Every variant's bit NLL (each head of the hybrid) beside the two controls, the floor and ln 2
    (mean over seeds, 95% t-interval, seeds as dots); the title says whether the gate passed."""
    es = tables["entropy_summary"]
    ctl = tables.get("controls", pd.DataFrame())
    bits = es[es.quantity == "H[nll_bit]"]
    items = [(f"{r.variant}\n({r.head})", r.value, r.ci_low, r.ci_high, r.per_seed,
              VARIANT_COLORS.get(r.variant, "grey")) for r in bits.itertuples() if r.head != "mix"]
    if len(ctl):
        for r in ctl[ctl.kind == "mean"].itertuples():
            per = ctl[(ctl.kind == "seed") & (ctl.control == r.control)].value.tolist()
            items.append((f"{r.control} control\n({r.variant}, {r.head})", r.value, r.ci_low, r.ci_high, per,
                          "tab:blue" if r.expect == "floor" else "tab:red"))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(items)), 3.8))
    for i, (label, v, lo, hi, per, color) in enumerate(items):
        ok = lo is not None and hi is not None and np.isfinite(lo) and np.isfinite(hi)
        ax.errorbar([i], [v], yerr=[[v - lo], [hi - v]] if ok else None, fmt="o", color=color, capsize=4)
        ax.scatter(np.full(len(per), i + 0.15), per, s=10, color=color, alpha=0.5)
    floor = known.get("h_bit_given_x", float("nan"))
    ax.axhline(LN2, color="k", ls="--", lw=1, label=f"ln 2 = {LN2:.3f} (key not used)")
    ax.axhline(floor, color="tab:blue", ls=":", lw=1, label=f"floor H_b((1+s)/2) = {floor:.3f}")
    ax.set_xticks(range(len(items)), [it[0] for it in items], fontsize=8)
    ax.set_ylabel("held-out bit NLL (nats per object)")
    summ = tables.get("summary", pd.DataFrame())
    gate = summ.gate.iloc[0] if "gate" in summ and len(summ) else ""
    gated = summ[summ.get("gate", pd.Series(dtype=str)) != "not required"] if "gate" in summ else summ
    state = gated.gate.iloc[0] if len(gated) else gate
    ax.set_title(f"variants beside the controls (validity gate: {state or 'not evaluated'})", fontsize=10)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig
