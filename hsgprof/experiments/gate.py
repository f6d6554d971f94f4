"""Controls, the validity gate and the power of the compared runs (pure functions of the tables).

* ``controls``: each control's bit NLL (its variant's primary head, validation half) per seed
  and over seeds, against its target (the floor H_b((1+s)/2) or ln 2);
* the **gate** (:class:`~hsgprof.experiments.config.Gate`): passed only if the positive control's
  mean is within ``positive_within`` nats of the floor and the negative control's within
  ``negative_within`` of ln 2; when it fails, every verdict that compares bit NLLs between
  variants is *inconclusive (no power)*, with what is missing;
* ``power``: the minimum detectable Δ of the compared runs themselves (paired over seeds, the
  declared α and power), beside the pilots' planned one.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from hsgprof.experiments.config import ExperimentConfig
from hsgprof.experiments.stats import t_interval

LN2 = math.log(2)
PRIMARY = {"grid-only": "dense", "sparse-only": "sparse", "hybrid": "sparse"}
# Summary measurements whose verdict compares bit NLLs between variants: they need the gate.
GATED = ("entropy_difference", "entropy_difference_class", "entropy_difference_global_block",
         "queries_over_global_block", "delta_occlusion", "delta_capacity")


def control_rows(obj: pd.DataFrame, cfg: ExperimentConfig, floor: float) -> pd.DataFrame:
    """Per control and seed, and over seeds: bit NLL against the control's target."""
    rows = []
    for c in cfg.controls:
        head = PRIMARY[c.variant] if c.variant != "hybrid" else cfg.hybrid_entropy_head
        d = obj[(obj.tag == c.tag) & (obj.set == "val") & (obj["head"] == head)]
        if d.empty:
            continue
        target = floor if c.expect == "floor" else LN2
        within = cfg.gate.positive_within if c.expect == "floor" else cfg.gate.negative_within
        seeds = d.groupby("seed").nll_bit.mean()
        for seed, v in seeds.items():
            rows.append({"control": c.name, "variant": c.variant, "head": head, "seed": int(seed), "value": float(v),
                         "target": target, "expect": c.expect, "within": within, "n_objects": int((d.seed == seed).sum()),
                         "kind": "seed"})
        m, lo, hi = t_interval(seeds.values, cfg.ci_level)
        dist = m - target if c.expect == "floor" else abs(m - target)
        rows.append({"control": c.name, "variant": c.variant, "head": head, "seed": -1, "value": m, "ci_low": lo,
                     "ci_high": hi, "target": target, "expect": c.expect, "within": within, "distance": dist,
                     "passed": bool(np.isfinite(m) and dist <= within), "n_seeds": len(seeds), "kind": "mean",
                     "scene": dict(c.scene), "model": dict(c.model)})
    return pd.DataFrame(rows)


def gate_status(controls: pd.DataFrame, cfg: ExperimentConfig) -> dict[str, Any]:
    """{"passed": bool, "text": one line naming each control's number against its target, "missing": [...]}."""
    if not cfg.controls:
        return {"passed": False, "text": "no controls declared: the comparison has no validity gate",
                "missing": ["declare a positive and a negative control"]}
    means = controls[controls.kind == "mean"] if len(controls) else controls
    parts, missing = [], []
    for c in cfg.controls:
        r = means[means.control == c.name] if len(means) else means
        want = "the floor" if c.expect == "floor" else "ln 2"
        if r.empty:
            parts.append(f"{c.name} control: not run")
            missing.append(f"the {c.name} control's runs")
            continue
        r = r.iloc[0]
        ok = bool(r.passed)
        parts.append(f"{c.name} control ({c.variant}) bit NLL {r.value:.3f} vs {want} {r.target:.3f} "
                     f"(allowed {r.within:.2f}): {'pass' if ok else 'FAIL'}")
        if not ok:
            missing.append(f"the {c.name} control at {want}: {'the budget/curriculum does not make z learnable even locally' if c.expect == 'floor' else 'z leaks through something other than the key'}")
    passed = not missing
    return {"passed": passed, "text": ("gate passed: " if passed else "gate failed (no power): ") + "; ".join(parts),
            "missing": missing}


def power_row(entropy_summary: pd.DataFrame, cfg: ExperimentConfig, hyb_head: str) -> dict[str, Any]:
    """The compared runs' own minimum detectable Δ (paired t over seeds, declared α and power)."""
    d = entropy_summary[(entropy_summary.quantity == "delta[nll_bit]") & (entropy_summary.variant == "hybrid")
                        & (entropy_summary["head"] == hyb_head)] if len(entropy_summary) else entropy_summary
    pw = cfg.power
    if d.empty:
        return {}
    diffs = np.asarray(d.iloc[0]["per_seed"], float)
    n = len(diffs)
    if n < 2:
        mdd = float("inf")
    else:
        k = stats.t.ppf(1 - pw.alpha / 2, n - 1) + stats.t.ppf(pw.power, n - 1)
        mdd = float(k * diffs.std(ddof=1) / math.sqrt(n))
    ok = mdd <= pw.delta
    return {"claim": "design.power", "measurement": "power", "statement": f"the compared runs can detect |Δ| ≥ {pw.delta} nats",
            "value": mdd, "ci_low": float("nan"), "ci_high": float("nan"),
            "unit": f"nats, minimum detectable |Δ| (α = {pw.alpha}, power {pw.power}, {n} seeds, paired)",
            "verdict": "adequate" if ok else "underpowered",
            "evidence": f"per-seed Δ (bit NLL, grid − hybrid {hyb_head}) {[round(float(x), 4) for x in diffs]}; "
                        f"declared target |Δ| ≥ {pw.delta}; pilots: {pw.pilot or 'none'}"}


def control_summary_rows(controls: pd.DataFrame) -> list[dict[str, Any]]:
    """``control_positive`` / ``control_negative`` rows of the summary table."""
    out = []
    if controls.empty:
        return out
    for r in controls[controls.kind == "mean"].itertuples():
        want = "floor H_b((1+s)/2)" if r.expect == "floor" else "ln 2"
        per = controls[(controls.kind == "seed") & (controls.control == r.control)].value.round(4).tolist()
        out.append({"claim": "design.gate", "measurement": f"control_{r.control}",
                    "statement": f"{r.control} control reaches {want} (within {r.within})", "value": r.value,
                    "ci_low": r.ci_low, "ci_high": r.ci_high, "unit": f"nats per object, bit NLL ({r.variant}, {r.head} head)",
                    "verdict": "pass" if r.passed else "fail",
                    "evidence": f"target {r.target:.3f}; distance {r.distance:.3f} (allowed {r.within}); per seed {per}; "
                                f"scene overrides {r.scene}, model overrides {r.model}"})
    return out


def apply_gate(summary: pd.DataFrame, gate: dict[str, Any]) -> pd.DataFrame:
    """Every summary row says whether the gate passed; gated verdicts become inconclusive (no power) when not."""
    if summary.empty:
        return summary
    s = summary.copy()
    gated = s.measurement.isin(GATED)
    s["gate"] = np.where(gated, "passed" if gate["passed"] else "failed", "not required")
    if not gate["passed"]:
        for i in s.index[gated]:
            v = str(s.at[i, "verdict"])
            if v in ("supported", "refuted", "inconclusive", "(secondary) supported", "(secondary) refuted",
                     "(secondary) inconclusive"):
                s.at[i, "verdict"] = ("(secondary) " if v.startswith("(secondary)") else "") + "inconclusive"
                s.at[i, "evidence"] = (f"no power: {gate['text']}; missing: {'; '.join(gate['missing'])}; "
                                       f"verdict before the gate: {v}; " + str(s.at[i, "evidence"]))
    return s
