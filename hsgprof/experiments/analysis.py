"""From finished runs to tidy tables and verdicts (pure functions of the run records and the config).

Tables (each written by :func:`write_all` as ``experiments_<name>.json`` with provenance):

* ``entropy``: held-out NLL per run, branch, set (nats and bits), raw and calibrated;
* ``entropy_summary``: per variant (primary branch) the mean over seeds with a t-interval, and
  Δ = H_grid − H_hybrid paired by seed; known-by-construction references beside them;
* ``information``: I(Y_global; Q | G) per seed and estimator, the I(Y;Q|X)=0 toy;
* ``pairs``: linked overlapping pairs: pair NLL against the known H(Y_i, Y_j | X), and the
  dependence the variant's (factorised) predictions leave unexplained;
* ``occlusion``: Δ per occlusion bin; ``capacity``: Δ per attention-capacity point;
* ``stability``: per-branch gradient statistics, spikes, collapse; ``gradients``: the raw logs;
* ``convergence``: AP curves and steps to the declared AP; ``ap``: COCO AP by mode, set and bin;
* ``summary``: one row per seed claim with value, CI and verdict (statuses as the claims ledger's).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from hsgprof.experiments import entropy as E
from hsgprof.experiments import gate as G
from hsgprof.adapters.hsgdet_experiments import known_quantities
from hsgprof.experiments.config import ExperimentConfig, TrendRule
from hsgprof.experiments.evaluate import EvalSet, ObjectOutputs
from hsgprof.experiments.information import info_cmi, pca_reduce, plugin_cmi, probe_information, \
    toy_deterministic_queries
from hsgprof.experiments.stats import cluster_bootstrap, spearman, t_interval

SUPPORTED, REFUTED, INCONCLUSIVE, NOT_MEASURABLE = "supported", "refuted", "inconclusive", "not measurable as stated"
LN2 = math.log(2)
PRIMARY = {"grid-only": "dense", "sparse-only": "sparse"}


def primary_head(variant: str, cfg: ExperimentConfig) -> str:
    return PRIMARY.get(variant, cfg.hybrid_entropy_head)


def known(cfg: ExperimentConfig) -> dict[str, float]:
    """Known-by-construction quantities of the validation scenes (nats), plus the marginal pair MI."""
    k = known_quantities(cfg.val_scene)
    p, r = k["p_bit_equals_z"], cfg.val_scene.pair_link
    # I(Y_i; Y_j) without conditioning on z (what remains for a model that never sees the key).
    joint = np.zeros((2, 2))
    for z in (0, 1):
        pz = np.array([1 - p, p]) if z == 1 else np.array([p, 1 - p])     # P(bit = 0/1 | z)
        for i in range(2):
            for j in range(2):
                joint[i, j] += 0.5 * pz[i] * (r * (i == j) + (1 - r) * pz[j])
    mi = sum(joint[i, j] * math.log(joint[i, j] / (joint[i].sum() * joint[:, j].sum()))
             for i in range(2) for j in range(2) if joint[i, j] > 0)
    return {**k, "i_pair_marginal": float(mi)}


# ----------------------------------------------------------------------------- entropy
def _calib_masks(out: ObjectOutputs, cfg: ExperimentConfig) -> np.ndarray:
    """True for validation objects in the calibration half (first n_val // 2 images)."""
    return out.meta["image"].to_numpy() < cfg.n_val // 2


def per_object_table(records: Sequence[dict], cfg: ExperimentConfig) -> pd.DataFrame:
    """One row per (run, branch, scored object): NLLs (calibrated and raw) and bit probability."""
    frames = []
    for rec in records:
        sp = rec["spec"]
        val, occ = rec["objects"]["val"], rec["objects"].get("occlusion")
        calib = _calib_masks(val, cfg)
        temps = E.calibrate(val, calib, cfg.prob_eps) if cfg.calibrate else {}
        scored = [("val", val, ~calib)] + ([("occlusion", occ, np.ones(len(occ.meta), bool))] if occ is not None else [])
        for set_name, out, mask in scored:
            for head in E.available_heads(out):
                c, b = E.per_object_nll(out, head, temps, cfg.prob_eps)
                c_raw, b_raw = E.per_object_nll(out, head, {}, cfg.prob_eps)
                p1 = E.bit_probability(out, head, temps, cfg.prob_eps)
                m = out.meta[mask]
                frames.append(pd.DataFrame({
                    "tag": sp["tag"], "variant": sp["variant"], "seed": sp["seed"], "head": head,
                    "primary": head == primary_head(sp["variant"], cfg), "set": set_name,
                    "image": m["image"].to_numpy(), "obj": m["obj"].to_numpy(), "bit": m["bit"].to_numpy(),
                    "occlusion": m["occlusion"].to_numpy(), "occluder": m["occluder"].to_numpy(),
                    "partner": m["partner"].to_numpy(), "index": np.flatnonzero(mask),
                    "nll_class": c[mask], "nll_bit": b[mask], "nll_class_raw": c_raw[mask],
                    "nll_bit_raw": b_raw[mask], "p_bit1": p1[mask],
                    "temperature": temps.get(head, float("nan")) if head != "mix" else float("nan")}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def entropy_rows(obj: pd.DataFrame) -> pd.DataFrame:
    """Mean NLL per run, branch and set (nats and bits)."""
    g = obj.groupby(["tag", "variant", "seed", "head", "primary", "set"], as_index=False)
    rows = g.agg(n_objects=("nll_bit", "size"), n_images=("image", "nunique"), nll_class=("nll_class", "mean"),
                 nll_bit=("nll_bit", "mean"), nll_class_raw=("nll_class_raw", "mean"),
                 nll_bit_raw=("nll_bit_raw", "mean"), temperature=("temperature", "first"))
    for c in ("nll_class", "nll_bit", "nll_class_raw", "nll_bit_raw"):
        rows[f"{c}_bits"] = rows[c] / LN2
    return rows


def entropy_summary(obj: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """Per variant (primary branch, validation half) the mean NLL over seeds with t-CIs, and Δ rows."""
    kq = known(cfg)
    main = obj[(obj.tag == "main") & (obj.set == "val")]
    rows = []
    per_seed: dict[tuple[str, str], dict[int, float]] = {}
    for (variant, head), d in main.groupby(["variant", "head"]):
        for metric in ("nll_bit", "nll_class"):
            seeds = d.groupby("seed")[metric].mean()
            per_seed[(f"{variant}:{head}", metric)] = seeds.to_dict()
            m, lo, hi = t_interval(seeds.values, cfg.ci_level)
            blo, bhi = cluster_bootstrap(d[metric].to_numpy(), (d.seed.astype(str) + ":" + d.image.astype(str)).to_numpy(),
                                         cfg.bootstrap, cfg.ci_level)
            rows.append({"quantity": f"H[{metric}]", "variant": variant, "head": head,
                         "primary": head == primary_head(variant, cfg), "value": m, "ci_low": lo, "ci_high": hi,
                         "boot_low": blo, "boot_high": bhi, "n_seeds": len(seeds),
                         "per_seed": [float(v) for v in seeds.values], "unit": "nats per object"})
    hyb = f"hybrid:{cfg.hybrid_entropy_head}"
    for metric in ("nll_bit", "nll_class"):
        grid = per_seed.get(("grid-only:dense", metric), {})
        for other in dict.fromkeys((hyb, "hybrid:dense", "hybrid:sparse", "hybrid:mix", "sparse-only:sparse")):
            h = per_seed.get((other, metric), {})
            common = sorted(set(grid) & set(h))
            if not common:
                continue
            diffs = [grid[s] - h[s] for s in common]
            m, lo, hi = t_interval(diffs, cfg.ci_level)
            rows.append({"quantity": f"delta[{metric}]", "variant": other.split(":")[0], "head": other.split(":")[1],
                         "primary": other == hyb, "value": m, "ci_low": lo, "ci_high": hi, "n_seeds": len(common),
                         "per_seed": diffs, "unit": "nats per object (H_grid − H_other)"})
    for name in ("h_bit_given_x", "h_bit_given_local", "info_global"):
        rows.append({"quantity": f"known[{name}]", "variant": "data", "head": "", "primary": False,
                     "value": kq[name], "unit": "nats per object (by construction)"})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- information
def information_rows(records: Sequence[dict], cfg: ExperimentConfig) -> pd.DataFrame:
    """I(Y_global; Q | G) per seed: probe estimate (+ I(Y;G), I(Y;Q)) and hsgprof.info estimators."""
    kq = known(cfg)
    main = {(r["spec"]["variant"], r["spec"]["seed"]): r for r in records if r["spec"]["tag"] == "main"}
    rows = []
    for (variant, seed), rec in sorted(main.items()):
        if variant != "hybrid":
            continue
        out = rec["objects"]["val"]
        ok = out.sparse_matched.astype(bool)
        train = _calib_masks(out, cfg)
        y = out.meta["bit"].to_numpy()
        q = pca_reduce(out.Q, train & ok, cfg.pca_dims)
        sources = {"hybrid-grid-branch": out.G}
        grid = main.get(("grid-only", seed))
        if grid is not None:
            sources["grid-only-model"] = grid["objects"]["val"].G
        for g_source, graw in sources.items():
            g = pca_reduce(graw, train & ok, cfg.pca_dims)
            sel = ok
            pr = probe_information(y[sel], g[sel], q[sel], out.meta["image"].to_numpy()[sel], train[sel],
                                   cfg.bootstrap, cfg.ci_level, seed)
            base = {"seed": seed, "g_source": g_source, "pca_dims": cfg.pca_dims, "n_test": pr["n_test"],
                    "ceiling_info_global": kq["info_global"]}
            for q_name, label in (("cmi_q_given_g", "I(Y_global;Q|G)"), ("mi_g", "I(Y_global;G)"),
                                  ("mi_q", "I(Y_global;Q)")):
                rows.append({**base, "quantity": label, "method": "probe", "value": pr[q_name],
                             "ci_low": pr[f"{q_name}_low"], "ci_high": pr[f"{q_name}_high"], "status": "ok"})
            test = sel & ~train
            for method in cfg.cmi_methods:
                res = info_cmi(y[test].astype(float), q[test], g[test], method, ci=True, seed=seed)
                rows.append({**base, "quantity": "I(Y_global;Q|G)", "method": method,
                             "value": res.get("value", float("nan")), "ci_low": res.get("ci_low", float("nan")),
                             "ci_high": res.get("ci_high", float("nan")), "status": res["status"]})
    toy = toy_deterministic_queries(seed=0)
    for k, v in toy.items():
        rows.append({"seed": 0, "g_source": "toy", "quantity": f"toy[{k}]",
                     "method": "fp" if k == "cmi_continuous" else "plugin", "value": v, "status": "ok"})
    return pd.DataFrame(rows)


def information_summary(info: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """Mean over seeds (t-interval) per quantity, method and G source."""
    rows = []
    real = info[info.g_source != "toy"]
    for (quantity, method, g_source), d in real.groupby(["quantity", "method", "g_source"]):
        m, lo, hi = t_interval(d.value.to_numpy(), cfg.ci_level)
        rows.append({"quantity": quantity, "method": method, "g_source": g_source, "value": m, "ci_low": lo,
                     "ci_high": hi, "n_seeds": int(d.value.notna().sum()),
                     "status": ";".join(sorted(set(d.status.astype(str))))})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- pairs and occlusion
def pair_rows(obj: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """Linked overlapping pairs under each variant's primary branch (validation half + occlusion set)."""
    kq = known(cfg)
    rows = []
    d = obj[(obj.tag == "main") & obj.primary]
    for (variant, seed), dd in d.groupby(["variant", "seed"]):
        i_parts, j_parts = [], []
        for set_name, s in dd.groupby("set"):
            by_index = s.set_index("index")
            occd = s[(s.partner >= 0) & ~s.occluder.astype(bool)]
            occd = occd[occd.partner.isin(by_index.index)]
            i_parts.append(occd)
            j_parts.append(by_index.loc[occd.partner.to_numpy()])
        if not i_parts:
            continue
        a, b = pd.concat(i_parts), pd.concat(j_parts)
        if len(a) == 0:
            continue
        pair_nll = a.nll_bit.to_numpy() + b.nll_bit.to_numpy()
        zbin = np.column_stack([a.p_bit1.to_numpy() >= 0.5, b.p_bit1.to_numpy() >= 0.5])
        resid = plugin_cmi(a.bit.to_numpy(), b.bit.to_numpy(), zbin, miller_madow=True)
        rows.append({"variant": variant, "seed": seed, "n_pairs": len(a), "pair_nll": float(pair_nll.mean()),
                     "known_h_pair": kq["h_pair_given_x"], "gap": float(pair_nll.mean() - kq["h_pair_given_x"]),
                     "known_i_pair": kq["i_pair_given_x"], "known_i_pair_marginal": kq["i_pair_marginal"],
                     "model_i_pair": 0.0, "residual_i_pair": resid,
                     "residual_method": "Miller-Madow plug-in I(Y_i;Y_j | [p_i≥½], [p_j≥½])"})
    return pd.DataFrame(rows)


def occlusion_rows(obj: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """Per occlusion bin: each variant's bit NLL (primary branch) and Δ = grid − hybrid, per seed and CI."""
    d = obj[(obj.tag == "main") & obj.primary].copy()
    rows = []
    for lo, hi in cfg.occlusion_bins:
        b = d[(d.occlusion >= lo) & (d.occlusion < hi)]
        if b.empty:
            continue
        means = b.groupby(["variant", "seed"]).nll_bit.mean()
        label = f"{lo:.2f}-{min(hi, 1.0):.2f}"
        for variant in sorted(set(b.variant)):
            v = means.loc[variant]
            m, l, h = t_interval(v.values, cfg.ci_level)
            rows.append({"bin": label, "bin_lo": lo, "bin_mid": (lo + min(hi, 1.0)) / 2, "quantity": "nll_bit",
                         "variant": variant, "value": m, "ci_low": l, "ci_high": h,
                         "n_objects": int((b.variant == variant).sum() / max(len(v), 1))})
        if "grid-only" in set(b.variant) and "hybrid" in set(b.variant):
            g, hy = means.loc["grid-only"], means.loc["hybrid"]
            common = sorted(set(g.index) & set(hy.index))
            diffs = [g[s] - hy[s] for s in common]
            m, l, h = t_interval(diffs, cfg.ci_level)
            rows.append({"bin": label, "bin_lo": lo, "bin_mid": (lo + min(hi, 1.0)) / 2, "quantity": "delta",
                         "variant": "grid-only − hybrid", "value": m, "ci_low": l, "ci_high": h,
                         "per_seed": diffs})
    return pd.DataFrame(rows)


def capacity_axis(name: str) -> str:
    """The sweep axis of a capacity point: its name's letters (N, K, h, L), or ``ladder``."""
    letters = name.rstrip("0123456789")
    return letters if letters in ("N", "K", "h", "L") and letters != name else "ladder"


def capacity_rows(obj: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """Δ = H_grid − H_hybrid (bit NLL, validation half) at each declared attention capacity.

    The main hybrid runs (the preset's own N, K, heads, layers) are the ``default`` point and
    belong to every axis.
    """
    default = cfg.default_capacity()
    val = obj[(obj.set == "val") & obj.primary]
    grid = val[(val.tag == "main") & (val.variant == "grid-only")].groupby("seed").nll_bit.mean()
    points = [(c.name, capacity_axis(c.name), c.index, c.overrides()) for c in cfg.capacity]
    if cfg.capacity and not any(o == default for *_, o in points):
        l, h, n, k = (default["decoder_layers"], default["decoder_heads"], default["num_queries"],
                      default["num_tokens"])
        points.append(("default", "default", l * h * n * (n + k), default))
    rows = []
    for name, axis, index, overrides in points:
        tag = "main" if overrides == default else f"cap-{name}"
        if overrides == default:
            axis = "default"
        h = val[(val.tag == tag) & (val.variant == "hybrid")].groupby("seed").nll_bit.mean()
        for seed in sorted(set(h.index) & set(grid.index) & set(cfg.capacity_seeds)):
            rows.append({"capacity": name, "axis": axis, "index": index, **overrides, "seed": seed,
                         "h_grid": grid[seed], "h_hybrid": h[seed], "delta": grid[seed] - h[seed]})
    return pd.DataFrame(rows)


def capacity_trend(cap: pd.DataFrame, rule: TrendRule = TrendRule(), level: float = 0.95) -> dict[str, Any]:
    """Is Δ proportional to capacity, monotone in it, or neither (or is that inconclusive)?

    Overall (every point against the capacity index) and per axis (that axis's points plus the
    default point); each carries its class label (``trend``) under the declared ``rule``.
    """
    if cap.empty:
        return {"n_points": 0, "trend": "inconclusive", "trend_reason": "no capacity points"}
    out = trend(cap, rule, level)
    axes = sorted(set(cap.axis) - {"default"})
    if len(axes) > 1 or axes != ["ladder"]:
        out["by_axis"] = {a: trend(cap[cap.axis.isin([a, "default"])], rule, level) for a in axes}
    return out


def trend(cap: pd.DataFrame, rule: TrendRule = TrendRule(), level: float = 0.95) -> dict[str, Any]:
    """Statistics and class label of Δ against the capacity index (rows: ``index``, ``seed``, ``delta``).

    The label follows :class:`~hsgprof.experiments.config.TrendRule`: ``proportional``,
    ``monotone``, ``neither`` or ``inconclusive``, with the reason in ``trend_reason``.
    """
    m = cap.groupby("index").delta.mean().sort_index()
    x, y = m.index.to_numpy(float), m.to_numpy()
    slope = float((x * y).sum() / (x * x).sum()) if (x * x).sum() > 0 else float("nan")
    ss_res = float(((y - slope * x) ** 2).sum())
    ss_tot = float(((y - y.mean()) ** 2).sum()) if len(y) > 1 else float("nan")
    r2 = 1 - ss_res / ss_tot if ss_tot and ss_tot > 0 else float("nan")
    inc = bool(np.all(np.diff(y) > 0)) if len(y) > 1 else False
    dec = bool(np.all(np.diff(y) < 0)) if len(y) > 1 else False
    n_seeds = cap.groupby("index").seed.nunique().reindex(m.index)
    point_ci = [t_interval(cap[cap["index"] == i].delta.to_numpy(float), level) for i in m.index]
    ends = [cap[cap["index"] == i].set_index("seed").delta for i in (m.index[0], m.index[-1])]
    common = sorted(set(ends[0].index) & set(ends[1].index)) if len(m) > 1 else []
    _, c_lo, c_hi = t_interval([float(ends[1][s] - ends[0][s]) for s in common], level)

    if len(y) < rule.min_points:
        label, reason = "inconclusive", f"{len(y)} capacity point(s), the rule needs {rule.min_points}"
    elif int(n_seeds.min()) < rule.min_seeds:
        label, reason = "inconclusive", (f"{int(n_seeds.min())} seed(s) at a point, the rule needs {rule.min_seeds} "
                                         "for an interval")
    elif not (inc or dec):
        label, reason = "neither", "mean Δ is not monotone in capacity"
    elif not (np.isfinite(c_lo) and (c_lo > 0 or c_hi < 0)):
        label, reason = "inconclusive", (f"mean Δ is monotone, but the {level:.0%} interval of Δ(largest) − "
                                         f"Δ(smallest) [{c_lo:.4f}, {c_hi:.4f}] contains 0")
    elif inc and np.isfinite(r2) and r2 >= rule.proportional_r2:
        label, reason = "proportional", f"increasing, R² through the origin {r2:.2f} ≥ {rule.proportional_r2}"
    else:
        label, reason = "monotone", (f"{'increasing' if inc else 'decreasing'}"
                                     + (f", R² through the origin {r2:.2f} < {rule.proportional_r2}" if inc else ""))
    return {"n_points": len(y), "indices": x.tolist(), "deltas": y.tolist(),
            "ci_low": [c[1] for c in point_ci], "ci_high": [c[2] for c in point_ci],
            "seeds_per_point": [int(v) for v in n_seeds], "monotone_increasing": inc,
            "monotone_decreasing": dec, "spearman": spearman(x, y), "slope_through_origin": slope,
            "r2_through_origin": r2, "change_ci": [c_lo, c_hi], "n_seeds": int(cap.seed.nunique()),
            "trend": label, "trend_reason": reason}


# ----------------------------------------------------------------------------- stability, convergence
def _longest_run(mask: np.ndarray) -> int:
    best = cur = 0
    for v in mask:
        cur = cur + 1 if v else 0
        best = max(best, cur)
    return best


def stability_rows(records: Sequence[dict], cfg: ExperimentConfig) -> pd.DataFrame:
    """Per run and branch: gradient-norm distribution, spikes and the declared collapse test."""
    rows = []
    for rec in records:
        sp = rec["spec"]
        train = pd.DataFrame(rec["log"]["train"])
        grad = pd.DataFrame(rec["log"]["grad"])
        n = len(train)
        if n == 0:
            continue
        for branch, loss_col in (("dense", "loss_dense"), ("sparse", "loss_sparse")):
            g = train[f"grad_{branch}"].to_numpy(float)
            if not np.isfinite(g).any():
                continue
            med = float(np.median(g))
            mad = float(np.median(np.abs(g - med)))
            spikes = g > med + cfg.spike_mad * mad
            early = float(np.median(g[: max(n // 10, 1)]))
            loss = train[loss_col].to_numpy(float)
            loss0 = float(np.mean(loss[: min(10, n)]))
            low = (g < cfg.collapse_ratio * early) & (loss > cfg.collapse_loss_frac * loss0)
            run = _longest_run(low)
            row = {"tag": sp["tag"], "variant": sp["variant"], "seed": sp["seed"], "branch": branch, "steps": n,
                   "median": med, "mad": mad, "p99": float(np.quantile(g, 0.99)), "max": float(g.max()),
                   "max_over_median": float(g.max() / med) if med > 0 else float("nan"),
                   "spikes": int(spikes.sum()), "spike_frac": float(spikes.mean()),
                   "longest_low_run": run, "collapse": bool(run >= cfg.collapse_window * n),
                   "final_loss_ratio": float(np.mean(loss[-max(n // 20, 1):]) / loss0) if loss0 > 0 else float("nan")}
            if not grad.empty and f"shared_{branch}" in grad:
                row["shared_median"] = float(np.nanmedian(grad[f"shared_{branch}"].to_numpy(float)))
            if branch == "dense" and not grad.empty and grad["shared_cosine"].notna().any():
                cos = grad["shared_cosine"].dropna().to_numpy(float)
                row.update(cos_mean=float(cos.mean()), cos_median=float(np.median(cos)),
                           cos_frac_negative=float((cos < 0).mean()), cos_n=len(cos))
            rows.append(row)
    return pd.DataFrame(rows)


def gradient_log_rows(records: Sequence[dict]) -> pd.DataFrame:
    """Every logged step of every main run (tidy): losses, norms, shared-parameter cosine."""
    frames = []
    for rec in records:
        sp = rec["spec"]
        t = pd.DataFrame(rec["log"]["train"])
        g = pd.DataFrame(rec["log"]["grad"])
        if not g.empty:
            t = t.merge(g, on="step", how="left")
        frames.append(t.assign(tag=sp["tag"], variant=sp["variant"], seed=sp["seed"]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def convergence_rows(records: Sequence[dict], cfg: ExperimentConfig) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(AP curves, steps to the declared target per run and mode)."""
    curves, reach = [], []
    for rec in records:
        sp = rec["spec"]
        if sp["tag"] != "main":
            continue
        ev = pd.DataFrame(rec["log"]["eval"])
        if ev.empty:
            continue
        curves.append(ev.assign(variant=sp["variant"], seed=sp["seed"]))
        for mode, d in ev.groupby("mode"):
            d = d.sort_values("step")
            hit = d[d[cfg.convergence_metric] >= cfg.convergence_target]
            reached = not hit.empty
            reach.append({"variant": sp["variant"], "seed": sp["seed"], "mode": mode, "reached": reached,
                          "steps_to_target": int(hit.step.iloc[0]) if reached else None,
                          "steps_lower_bound": int(hit.step.iloc[0]) if reached else cfg.budget.steps + cfg.budget.eval_every,
                          "final": float(d[cfg.convergence_metric].iloc[-1]),
                          "mean_over_training": float(d[cfg.convergence_metric].mean()),
                          "untrained": float(d[cfg.convergence_metric].iloc[0])})
    return (pd.concat(curves, ignore_index=True) if curves else pd.DataFrame()), pd.DataFrame(reach)


def ap_table(records: Sequence[dict]) -> pd.DataFrame:
    rows = []
    for rec in records:
        sp = rec["spec"]
        for r in rec["ap"]:
            r = dict(r)
            lo, _, hi = str(r.get("bin", "")).partition("-")
            if r.get("breakdown") == "density" and hi.isdigit() and int(hi) >= 9999:
                r["bin"] = f"{lo}+"                              # the open last density bin
            rows.append({"tag": sp["tag"], "variant": sp["variant"], "seed": sp["seed"], **r})
    return pd.DataFrame(rows)


def ap_summary(ap: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    rows = []
    main = ap[ap.tag == "main"]
    for (set_name, breakdown, b, variant, mode), d in main.groupby(["set", "breakdown", "bin", "variant", "mode"]):
        for metric in ("AP", "AP50"):
            m, lo, hi = t_interval(d[metric].to_numpy(float), cfg.ci_level)
            rows.append({"set": set_name, "breakdown": breakdown, "bin": b, "bin_lo": d.bin_lo.iloc[0],
                         "variant": variant, "mode": mode, "metric": metric, "value": m, "ci_low": lo, "ci_high": hi,
                         "n_seeds": len(d), "n_gt": int(d.n_gt.iloc[0])})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- verdicts
def _ci_verdict(lo: float, hi: float, direction: int = 1) -> str:
    """supported if the CI lies entirely on the claimed side of 0, refuted if entirely on the other."""
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return INCONCLUSIVE
    if direction > 0:
        return SUPPORTED if lo > 0 else REFUTED if hi < 0 else INCONCLUSIVE
    return SUPPORTED if hi < 0 else REFUTED if lo > 0 else INCONCLUSIVE


def _paired(ap: pd.DataFrame, a: tuple[str, str], b: tuple[str, str], set_name: str, breakdown: str,
            bin_lo: float | None, metric: str = "AP") -> list[float]:
    d = ap[(ap.tag == "main") & (ap.set == set_name) & (ap.breakdown == breakdown)]
    if bin_lo is not None:
        d = d[d.bin_lo == bin_lo]
    x = d[(d.variant == a[0]) & (d["mode"] == a[1])].set_index("seed")[metric]
    y = d[(d.variant == b[0]) & (d["mode"] == b[1])].set_index("seed")[metric]
    return [float(x[s] - y[s]) for s in sorted(set(x.index) & set(y.index))
            if np.isfinite(x[s]) and np.isfinite(y[s])]


def capacity_verdict(cap: pd.DataFrame, cfg: ExperimentConfig) -> dict[str, Any]:
    """The ``delta_capacity`` summary row: the declared trend class decides the verdict on Δ ∝ capacity
    (proportional: supported; monotone or neither: refuted; inconclusive: inconclusive)."""
    tr = capacity_trend(cap, cfg.capacity_trend, cfg.ci_level)
    if tr.get("n_points", 0) < 1:
        return {}
    verdict = {"proportional": SUPPORTED, "monotone": REFUTED, "neither": REFUTED}.get(tr["trend"], INCONCLUSIVE)
    return {"claim": "corollary.delta_capacity", "measurement": "delta_capacity", "statement": "Δ ∝ attention capacity",
            "value": tr["slope_through_origin"], "ci_low": float("nan"), "ci_high": float("nan"),
            "unit": "nats per capacity unit (slope through origin)", "verdict": verdict, "trend": tr["trend"],
            "evidence": f"trend: {tr['trend']} ({tr['trend_reason']}); "
                        f"Δ at capacity {dict(zip(tr['indices'], [round(v, 4) for v in tr['deltas']]))}; "
                        f"R² through origin {tr['r2_through_origin']:.2f}, Spearman {tr['spearman']:.2f}; "
                        f"{tr['n_seeds']} seed(s)"
                        + "".join(f"; axis {a}: {t['trend']} ({t['trend_reason']})"
                                  for a, t in tr.get("by_axis", {}).items())}


def convergence_verdict(reach: pd.DataFrame, cfg: ExperimentConfig) -> dict[str, Any]:
    """The ``convergence_difference`` summary row: steps to the declared target, hybrid − sparse-only,
    paired by seed. A run that never reached the target is censored (counted at budget + one
    evaluation interval, a lower bound) and never counted as converged; all runs censored is
    inconclusive."""
    if reach.empty:
        return {}
    h = reach[(reach.variant == "hybrid") & (reach["mode"] == cfg.convergence_mode)].set_index("seed")
    s = reach[(reach.variant == "sparse-only") & (reach["mode"] == cfg.convergence_mode)].set_index("seed")
    common = sorted(set(h.index) & set(s.index))
    if not common:
        return {}
    diffs = [float(h.steps_lower_bound[i] - s.steps_lower_bound[i]) for i in common]
    censored = sum(int(not h.reached[i]) + int(not s.reached[i]) for i in common)
    m, lo, hi = t_interval(diffs, cfg.ci_level)
    auc = [float(h.mean_over_training[i] - s.mean_over_training[i]) for i in common]
    if censored == 2 * len(common):
        verdict = INCONCLUSIVE
    elif all(d < 0 for d in diffs):
        verdict = SUPPORTED if len(common) >= 3 else INCONCLUSIVE
    elif all(d > 0 for d in diffs):
        verdict = REFUTED if len(common) >= 3 else INCONCLUSIVE
    else:
        verdict = INCONCLUSIVE
    return {"claim": "convergence.faster_than_detr", "measurement": "convergence_difference",
            "statement": "convergence faster than pure DETR", "value": m, "ci_low": lo, "ci_high": hi,
            "unit": f"steps to {cfg.convergence_metric} ≥ {cfg.convergence_target} ({cfg.convergence_mode}), "
                    "hybrid − sparse-only",
            "verdict": verdict,
            "evidence": f"per seed {diffs}; {censored} of {2 * len(common)} runs never reached the target "
                        f"(counted as {cfg.budget.steps + cfg.budget.eval_every}, a lower bound); "
                        f"mean {cfg.convergence_metric} over training, hybrid − sparse-only: "
                        f"{np.mean(auc):.3f}"}


def summary_rows(tables: dict[str, pd.DataFrame], cfg: ExperimentConfig) -> pd.DataFrame:
    """One row per seed claim: the measurement key the claims ledger reads, value, CI, verdict, evidence."""
    kq = known(cfg)
    rows = []
    es = tables["entropy_summary"]

    def get(q: str, variant: str, head: str) -> dict:
        d = es[(es.quantity == q) & (es.variant == variant) & (es["head"] == head)]
        return d.iloc[0].to_dict() if len(d) else {}

    hyb_head = cfg.hybrid_entropy_head
    # Power: did any variant learn the global dependency at all (bit NLL clearly below ln 2)?
    bits = es[(es.quantity == "H[nll_bit]") & es.primary]
    best = float(bits.value.min()) if len(bits) else float("nan")
    power_note = ("" if not np.isfinite(best) or best < LN2 - 0.05 else
                  f"; no variant learned the global dependency (every primary bit NLL ≥ {best:.3f} nats, "
                  f"within 0.05 of ln 2; floor {kq['h_bit_given_x']:.3f}): the comparison has no power at this budget")
    for metric in ("nll_bit", "nll_class"):
        dl = get(f"delta[{metric}]", "hybrid", hyb_head)
        hg, hh = get(f"H[{metric}]", "grid-only", "dense"), get(f"H[{metric}]", "hybrid", hyb_head)
        if dl:
            v = _ci_verdict(dl["ci_low"], dl["ci_high"])
            rows.append({"claim": "theorem.entropy", "measurement": "entropy_difference" + ("" if metric == "nll_bit" else "_class"),
                         "statement": "H_hybrid < H_grid", "value": dl["value"], "ci_low": dl["ci_low"],
                         "ci_high": dl["ci_high"], "unit": "nats per object, H_grid − H_hybrid",
                         "verdict": v if metric == "nll_bit" else f"(secondary) {v}",
                         "evidence": (f"{metric}: H_grid {hg.get('value', float('nan')):.3f} "
                                      f"[{hg.get('ci_low', float('nan')):.3f}, {hg.get('ci_high', float('nan')):.3f}], "
                                      f"H_hybrid({hyb_head}) {hh.get('value', float('nan')):.3f} "
                                      f"[{hh.get('ci_low', float('nan')):.3f}, {hh.get('ci_high', float('nan')):.3f}] nats; "
                                      f"known H(bit|X) {kq['h_bit_given_x']:.3f}, ln 2 = {LN2:.3f}; "
                                      f"{int(dl['n_seeds'])} seeds, t-interval" + power_note)})
    # Both heads of the hybrid: its dense head sees the global block but no query, so
    # H_grid − H_hybrid(dense) isolates the global block; H_hybrid(dense) − H_hybrid(sparse)
    # (same model, paired by seed) isolates the queries.
    dd = get("delta[nll_bit]", "hybrid", "dense")
    if dd:
        rows.append({"claim": "theorem.entropy", "measurement": "entropy_difference_global_block",
                     "statement": "global block: H_hybrid(dense head) < H_grid", "value": dd["value"],
                     "ci_low": dd["ci_low"], "ci_high": dd["ci_high"], "unit": "nats per object (bit NLL), H_grid − H_hybrid(dense)",
                     "verdict": f"(secondary) {_ci_verdict(dd['ci_low'], dd['ci_high'])}",
                     "evidence": f"per seed {[round(float(x), 4) for x in dd['per_seed']]}; the hybrid's dense head "
                                 "receives the global block (attention over P5) but no query"})
    qd = _queries_over_dense(tables["entropy_summary"], cfg)
    if qd:
        rows.append(qd)
    info = tables["information_summary"]
    pr = info[(info.quantity == "I(Y_global;Q|G)") & (info.method == "probe") & (info.g_source == "hybrid-grid-branch")]
    if len(pr):
        r = pr.iloc[0]
        others = info[(info.quantity == "I(Y_global;Q|G)") & (info.g_source == "hybrid-grid-branch")]
        ev = "; ".join(f"{o.method}: {o.value:.3f} [{o.ci_low:.3f}, {o.ci_high:.3f}] ({o.status})"
                       for o in others.itertuples())
        rows.append({"claim": "theorem.bound", "measurement": "mi_queries_given_grid",
                     "statement": "I(Y_global; Q | X) > 0 (measured instead: I(Y_global; Q | G))",
                     "value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high, "unit": "nats per object",
                     "verdict": NOT_MEASURABLE,
                     "evidence": f"I(Y;Q|X) = 0 exactly (Q = f(X); toy check in the information table); "
                                 f"I(Y_global;Q|G), G = hybrid grid branch, PCA {cfg.pca_dims}+{cfg.pca_dims}: {ev}; "
                                 f"ceiling ln2 − H_b = {kq['info_global']:.3f}"})
    occ = tables["occlusion"]
    dd = occ[occ.quantity == "delta"].sort_values("bin_lo") if len(occ) else occ
    if len(dd):
        top = dd.iloc[-1]
        slope = (float(np.polyfit(dd.bin_mid, dd.value, 1)[0]) if len(dd) > 1 else float("nan"))
        rows.append({"claim": "corollary.occlusion", "measurement": "delta_occlusion",
                     "statement": "H_hybrid ≤ H_grid − Δ, Δ > 0 for overlapping objects",
                     "value": top.value, "ci_low": top.ci_low, "ci_high": top.ci_high,
                     "unit": f"nats per object (bit NLL), occlusion bin {top.bin}",
                     "verdict": _ci_verdict(top.ci_low, top.ci_high),
                     "evidence": "Δ by occlusion bin: " + ", ".join(f"{r.bin}: {r.value:.3f}" for r in dd.itertuples())
                                 + f"; slope vs occlusion {slope:.3f} nats per unit occlusion"})
    pairs = tables["pairs"]
    if len(pairs):
        ev = "; ".join(f"{v}: gap {d.gap.mean():.3f}, residual I {d.residual_i_pair.mean():.3f}"
                       for v, d in pairs.groupby("variant"))
        rows.append({"claim": "corollary.occlusion", "measurement": "pair_dependence",
                     "statement": "I(Y_i;Y_j|X) > 0 for overlapping objects; sparse attention models it",
                     "value": float(kq["i_pair_given_x"]), "ci_low": float("nan"), "ci_high": float("nan"),
                     "unit": "nats (known by construction)", "verdict": NOT_MEASURABLE,
                     "evidence": "both heads output a product over objects, so each model's I(Y_i;Y_j|X) = 0 and "
                                 "its pair NLL exceeds H(Y_i,Y_j|X) by ≥ I(Y_i;Y_j|X); " + ev})
    row = capacity_verdict(tables["capacity"], cfg)
    if row:
        rows.append(row)
    st = tables["stability"]
    if len(st):
        main = st[st.tag == "main"]
        n_coll = int(main.collapse.sum())
        hy = main[main.variant == "hybrid"]
        cos = hy.cos_mean.dropna() if "cos_mean" in hy else pd.Series(dtype=float)
        ev = "; ".join(f"{v}/{b}: spikes {d.spikes.sum()} of {d.steps.sum()} steps, max/median "
                       f"{d.max_over_median.max():.1f}, collapse runs {int(d.collapse.sum())}"
                       for (v, b), d in main.groupby(["variant", "branch"]))
        frac_neg = hy.cos_frac_negative.dropna() if "cos_frac_negative" in hy else pd.Series(dtype=float)
        rows.append({"claim": "stability.no_collapse", "measurement": "gradient_collapse",
                     "statement": "decoupled branches: no gradient collapse", "value": n_coll,
                     "ci_low": float("nan"), "ci_high": float("nan"), "unit": "runs × branches with a collapse",
                     "verdict": SUPPORTED if n_coll == 0 else REFUTED,
                     "evidence": ev + (f"; hybrid: both branch losses send gradient into the shared backbone, "
                                       f"cosine between them mean {cos.mean():.3f}, negative in "
                                       f"{100 * frac_neg.mean():.0f}% of logged steps" if len(cos) else "")})
    row = convergence_verdict(tables["convergence_steps"], cfg)
    if row:
        rows.append(row)
    ap = tables["ap"]
    if len(ap):
        ratios = []
        d = ap[(ap.tag == "main") & (ap.variant == "hybrid") & (ap.set == "val") & (ap.breakdown == "overall")]
        for seed, dd in d.groupby("seed"):
            x = dd.set_index("mode").AP
            if "nms_free" in x and "nms" in x:
                ratios.append((float(x["nms_free"]), float(x["nms"])))
        if ratios:
            free, nms = np.mean([r[0] for r in ratios]), np.mean([r[1] for r in ratios])
            ratio = free / nms if nms > 0 else float("nan")
            rows.append({"claim": "nms.optional", "measurement": "nms_optional", "statement": "NMS optional",
                         "value": ratio, "ci_low": float("nan"), "ci_high": float("nan"),
                         "unit": "AP(nms_free) / AP(nms), hybrid, seeds' mean",
                         "verdict": SUPPORTED if ratio >= cfg.nms_optional_ratio else REFUTED,
                         "evidence": f"AP nms_free {free:.3f}, nms {nms:.3f}; declared threshold {cfg.nms_optional_ratio}"})
        for claim, meas, set_name, breakdown in (("dense.strong", "dense_strong", "dense", "density"),
                                                 ("occlusion.strong", "occlusion_strong", "occlusion", "occlusion")):
            sub = ap[(ap.tag == "main") & (ap.set == set_name) & (ap.breakdown == breakdown) & ap.AP.notna()]
            if sub.empty:
                continue
            top = float(sub.bin_lo.max())
            diffs = _paired(ap, ("hybrid", cfg.hybrid_ap_mode), ("grid-only", "nms"), set_name, breakdown, top)
            if not diffs:
                continue
            m, lo, hi = t_interval(diffs, cfg.ci_level)
            verdict = (SUPPORTED if np.isfinite(lo) and lo >= 0 else REFUTED if np.isfinite(hi) and hi < 0
                       else INCONCLUSIVE if len(diffs) > 1 else INCONCLUSIVE)
            rows.append({"claim": claim, "measurement": meas, "statement": f"{set_name} objects: strong",
                         "value": m, "ci_low": lo, "ci_high": hi,
                         "unit": f"AP hybrid ({cfg.hybrid_ap_mode}) − AP grid-only (nms), top {breakdown} bin",
                         "verdict": verdict,
                         "evidence": f"bin from {top}; per seed {[round(x, 4) for x in diffs]}"})
    rows += G.control_summary_rows(tables.get("controls", pd.DataFrame()))
    prow = G.power_row(es, cfg, hyb_head)
    if prow:
        rows.append(prow)
    return G.apply_gate(pd.DataFrame(rows), G.gate_status(tables.get("controls", pd.DataFrame()), cfg))


def _queries_over_dense(es: pd.DataFrame, cfg: ExperimentConfig) -> dict[str, Any]:
    """H_hybrid(dense) − H_hybrid(sparse), bit NLL, paired by seed: what the queries add to the global block."""
    def seeds(head: str) -> dict:
        d = es[(es.quantity == "H[nll_bit]") & (es.variant == "hybrid") & (es["head"] == head)]
        return dict(enumerate(d.iloc[0]["per_seed"])) if len(d) else {}
    dense, sparse = seeds("dense"), seeds("sparse")
    common = sorted(set(dense) & set(sparse))
    if not common:
        return {}
    diffs = [float(dense[i] - sparse[i]) for i in common]
    m, lo, hi = t_interval(diffs, cfg.ci_level)
    return {"claim": "theorem.entropy", "measurement": "queries_over_global_block",
            "statement": "queries: H_hybrid(query head) < H_hybrid(dense head)", "value": m, "ci_low": lo, "ci_high": hi,
            "unit": "nats per object (bit NLL), H_hybrid(dense) − H_hybrid(sparse)",
            "verdict": f"(secondary) {_ci_verdict(lo, hi)}",
            "evidence": f"per seed {[round(x, 4) for x in diffs]}; same trained hybrid, two heads"}


# ----------------------------------------------------------------------------- everything
def build_tables(records: Sequence[dict], cfg: ExperimentConfig) -> dict[str, pd.DataFrame]:
    """Every results table from finished run records."""
    obj = per_object_table(records, cfg)
    tables: dict[str, pd.DataFrame] = {}
    tables["entropy"] = entropy_rows(obj)
    tables["entropy_summary"] = entropy_summary(obj, cfg)
    tables["information"] = information_rows(records, cfg)
    tables["information_summary"] = information_summary(tables["information"], cfg)
    tables["pairs"] = pair_rows(obj, cfg)
    tables["occlusion"] = occlusion_rows(obj, cfg)
    tables["capacity"] = capacity_rows(obj, cfg)
    tables["stability"] = stability_rows(records, cfg)
    tables["gradients"] = gradient_log_rows([r for r in records if r["spec"]["tag"] == "main"])
    tables["convergence"], tables["convergence_steps"] = convergence_rows(records, cfg)
    tables["ap"] = ap_table(records)
    tables["ap_summary"] = ap_summary(tables["ap"], cfg)
    tables["controls"] = G.control_rows(obj, cfg, known(cfg)["h_bit_given_x"])
    tables["fields"] = field_rows(records, cfg)
    tables["summary"] = summary_rows(tables, cfg)
    return tables


def write_all(records: Sequence[dict], cfg: ExperimentConfig, sets: dict[str, EvalSet], out_dir: str | Path,
              wall_s: float, command: str | None = None, training_invocation: dict | None = None) -> dict[str, Path]:
    """Write every table as ``experiments_<name>.json`` (tidy rows + provenance + declared config)."""
    import time

    from hsgprof.results import write_results

    t0 = time.perf_counter()
    tables = build_tables(records, cfg)
    out_dir = Path(out_dir)
    train_wall = float(sum(r["log"].get("wall_s", 0.0) for r in records))
    eval_wall = float(sum(r.get("eval_wall_s", 0.0) for r in records))
    meta = {"config_name": cfg.name, "config_key": cfg.key(), "seeds": list(cfg.seeds),
            "known": known(cfg), "wall_s_this_invocation": wall_s + time.perf_counter() - t0, "train_wall_s_sum": train_wall,
            "eval_wall_s_sum": eval_wall, "n_runs": len(records),
            "training_invocation": training_invocation,
            "eval_sets": {k: {"images": len(v.scenes), "objects": len(v.gt["annotations"])} for k, v in sets.items()},
            "capacity_trend": capacity_trend(tables["capacity"], cfg.capacity_trend, cfg.ci_level),
            "gate": G.gate_status(tables["controls"], cfg),
            "design": _design_meta(tables["fields"], cfg)}
    paths = {}
    for name, df in tables.items():
        paths[name] = write_results(out_dir / f"experiments_{name}.json", f"experiments.{name}", df,
                                    config=cfg.to_dict(), meta=meta, command=command)
    return paths


def field_rows(records: Sequence[dict], cfg: ExperimentConfig) -> pd.DataFrame:
    """The grid-only model's receptive fields on the validation canvas: random weights (the declared
    design check, recomputed here) and every trained grid-only run's weights (``record["fields"]``)."""
    from hsgprof.experiments.fields import grid_fields

    docs = [("random", -1, grid_fields(cfg, grow=False))]
    docs += [("trained", r["spec"]["seed"], r["fields"]) for r in records
             if r["spec"]["tag"] == "main" and r["spec"]["variant"] == "grid-only" and r.get("fields")]
    rows = []
    for weights, seed, doc in docs:
        for lv in doc["levels"]:
            rows.append({"weights": weights, "seed": seed, "level": lv["name"], "stride": lv["stride"],
                         "theoretical_rf": lv["theoretical_rf"], "theoretical_clipped": lv["theoretical_clipped"],
                         "effective_rf": lv["effective_rf"], "effective_radius": lv["effective_radius"],
                         "share": lv["share"], "key_gap": doc["key_gap"],
                         "key_outside": bool(doc["key_gap"] > lv["effective_radius"]), "input": doc["input"]})
    return pd.DataFrame(rows)


def _design_meta(fields: pd.DataFrame, cfg: ExperimentConfig) -> dict[str, Any]:
    """The design check in one place: key gap vs the largest effective radius, random and trained."""
    out: dict[str, Any] = {"key_gap": cfg.val_scene.key_gap, "share": cfg.design.share,
                           "canvas": [cfg.val_scene.height, cfg.val_scene.width]}
    for weights, d in fields.groupby("weights") if len(fields) else ():
        worst = d.loc[d.effective_radius.idxmax()]
        out[weights] = {"max_effective_radius": float(worst.effective_radius), "level": worst.level,
                        "key_outside_effective_field": bool(cfg.val_scene.key_gap > worst.effective_radius),
                        "n_models": int(d.seed.nunique())}
    return out


def load_tables(out_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Read the tables :func:`write_all` wrote (for notebooks and the report)."""
    from hsgprof.results import read_results

    out_dir = Path(out_dir)
    tables = {}
    for p in sorted(out_dir.glob("experiments_*.json")):
        doc = read_results(p)
        tables[p.stem.removeprefix("experiments_")] = pd.DataFrame(doc["rows"])
    return tables
