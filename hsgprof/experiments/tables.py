"""From finished runs to tidy tables (pure functions of the run records and the config).

The tables :func:`hsgprof.experiments.analysis.write_all` writes, one ``experiments_<name>.json``
each (the verdicts built on them are :mod:`hsgprof.experiments.verdicts`):

* ``entropy``: held-out NLL per run, branch, set (nats and bits), raw and calibrated;
* ``entropy_summary``: per variant (primary branch) the mean over seeds with a t-interval, and
  Δ = H_grid − H_hybrid paired by seed; known-by-construction references beside them;
* ``information``: I(Y_global; Q | G) per seed and estimator, the I(Y;Q|X)=0 toy;
* ``pairs``: linked overlapping pairs: pair NLL against the known H(Y_i, Y_j | X), and the
  dependence the variant's (factorised) predictions leave unexplained;
* ``occlusion``: Δ per occlusion bin; ``capacity``: Δ per attention-capacity point;
* ``stability``: per-branch gradient statistics, spikes, collapse; ``gradients``: the raw logs;
* ``convergence``: AP curves and steps to the declared AP; ``ap``: COCO AP by mode, set and bin.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import pandas as pd

from hsgprof.experiments import entropy as E
from hsgprof.adapters.hsgdet_experiments import known_quantities
from hsgprof.experiments.config import ExperimentConfig, TrendRule
from hsgprof.experiments.evaluate import ObjectOutputs
from hsgprof.experiments.information import info_cmi, pca_reduce, plugin_cmi, probe_information, \
    toy_deterministic_queries
from hsgprof.experiments.stats import cluster_bootstrap, spearman, t_interval

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
