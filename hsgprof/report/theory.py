"""The report's theory sections: the MI estimators' validation and the theory experiments (verdicts,
the design behind them: receptive fields, controls, gate, learnability, power; figures).

Helpers shared with the other sections (number formatting, figures, provenance lines) are
:mod:`hsgprof.report.sections`'.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .document import Block, Heading, PageBreak, Paragraph, Table
from .sections import _device_name, _figures, _missing, _provenance_line, num


def trained_on(summary: dict[str, Any]) -> str:
    """The device the theory experiments trained on, from their results' own record."""
    ti = summary["meta"].get("training_invocation") or {}
    device = ti.get("device")
    if device is None:
        return "not recorded"
    if str(device).startswith("cuda"):
        return summary["provenance"]["device"].get("gpu") or "CUDA"
    return f"CPU ({summary['provenance']['device'].get('cpu', '?')})"


def info_section(store) -> list[Block]:
    out: list[Block] = [PageBreak(), Heading("Information estimators, validated on ground truth")]
    doc = store.get("info_validation")
    if doc is None:
        return out + [_missing("estimator validation", "python analyses/info_validation.py --quick")]
    from hsgprof.info import validation

    summary = pd.DataFrame(doc["meta"].get("summary", []))
    out.append(Paragraph("Every estimator of hsgprof.info is run on data whose mutual information is known in "
                         "closed form (correlated Gaussians over ρ and d, Gaussian chains and colliders, "
                         "independent data, monotone transforms, discrete–continuous mixtures). Values in nats; "
                         "bias = mean error over repeated draws. Intervals are subsampling intervals (plain "
                         "bootstrap duplicates points and biases k-NN estimators; it is refused for them). "
                         + _provenance_line(doc, store.path_of(doc))))
    if len(summary):
        bias = validation.bias_table(summary, 10_000)
        if len(bias):
            out.append(Table(bias.map(lambda v: num(v, 4) if isinstance(v, float) else v),
                             f"Bias at N = 10,000 (nats; empty = method not applicable to the case; {_device_name(doc)})"))
        for stage, title, cols in (
                ("high_mi", "High MI (d = 4 per variable, N = 10,000)", ["case", "truth", "method", "reps", "bias", "sd"]),
                ("coverage", "Coverage of 95% intervals over repeated trials",
                 ["case", "method", "n", "reps", "bias", "sd", "coverage"])):
            part = summary[summary["stage"] == stage]
            if len(part):
                part = part[[c for c in cols if c in part]].copy()
                for c in ("truth", "bias", "sd", "coverage"):
                    if c in part:
                        part[c] = part[c].map(lambda v: num(v, 4))
                out.append(Table(part, f"{title} (nats; {_device_name(doc)})"))
    out += _figures(store, ["info_bias_vs_n", "info_bias_vs_d", "info_coverage", "info_high_mi"],
                    lambda name: name.replace("_", " ") + f" (nats; closed-form truths; {_device_name(doc)})")
    return out


def experiments_section(store) -> list[Block]:
    out: list[Block] = [PageBreak(), Heading("Theory experiments")]
    summary = store.get("experiments.summary", prefer_gpu=True)     # a GPU run's results when there is one
    if summary is None:
        return out + [_missing("experiment", "hsgprof experiments run --quick")]
    cfg = summary["provenance"]["config"]
    known = summary["meta"].get("known", {})
    out.append(Paragraph(
        f"Preset {summary['meta'].get('config_name')} (declared before running, key {summary['meta'].get('config_key')}); "
        f"seeds {summary['meta'].get('seeds')}. Synthetic scenes whose class bits follow a scene latent shown "
        "only by a distant key, so the information available to global reasoning is known by construction: "
        + ", ".join(f"{k} = {num(v)}" for k, v in known.items() if isinstance(v, (int, float)))
        + ". Entropies are held-out negative log-likelihoods (nats per object) on the declared representation "
        "of Y; they upper-bound H(Y|X). Intervals are 95% over seeds. " + _provenance_line(summary, store.path_of(summary))))
    sizes = scene_sizes(summary)
    trained = trained_on(summary)
    every = "scenes " + ", ".join(f"{k} {v}" for k, v in sizes.items())

    def at(set_name: str) -> str:
        return f"{set_name} set, input {sizes.get(_SET_SCENE.get(set_name, set_name), 'not recorded')}"

    out += design_blocks(store, summary, trained)
    s = pd.DataFrame(summary["rows"])
    for col in ("value", "ci_low", "ci_high"):
        s[col] = s[col].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.4g}")
    if "gate" not in s:
        s["gate"] = "not evaluated"
    out.append(Table(s[["claim", "statement", "value", "ci_low", "ci_high", "unit", "verdict", "gate", "evidence"]],
                     f"Experiment verdicts (rules declared in the experiment config; {every}; trained on {trained})",
                     (1.2, 1.5, 0.6, 0.6, 0.6, 1.4, 0.9, 0.6, 4.0)))
    ent = store.get("experiments.entropy_summary", prefer_gpu=True)
    if ent is not None:
        e = pd.DataFrame(ent["rows"])
        for col in ("value", "ci_low", "ci_high"):
            e[col] = e[col].map(num)
        out.append(Table(e[["quantity", "variant", "head", "primary", "value", "ci_low", "ci_high", "n_seeds", "unit"]],
                         f"Held-out NLL per variant and head ({at('val')}; trained on {trained})"))
    ap = store.get("experiments.ap_summary", prefer_gpu=True)
    if ap is not None:
        a = pd.DataFrame(ap["rows"])
        a = a[(a["breakdown"] == "overall") & (a["metric"] == "AP")].copy()
        for col in ("value", "ci_low", "ci_high"):
            a[col] = a[col].map(num)
        a["input"] = a["set"].map(lambda name: sizes.get(_SET_SCENE.get(name, name), "not recorded"))
        out.append(Table(a[["set", "input", "variant", "mode", "value", "ci_low", "ci_high", "n_seeds"]],
                         f"COCO AP@[.5:.95] (pycocotools) per variant and output mode (input per set; trained on "
                         f"{trained})"))
    info = store.get("experiments.information_summary", prefer_gpu=True)
    if info is not None:
        i = pd.DataFrame(info["rows"])
        for col in ("value", "ci_low", "ci_high"):
            i[col] = i[col].map(lambda v: "" if v is None or pd.isna(v) else f"{v:.4f}")
        out.append(Table(i, "Information measured instead of I(Y;Q|X) (which is 0 when Q is a function of X; "
                            f"nats; {at('val')}; trained on {trained})"))
    from_gpu = summary is not store.cpu.get("experiments.summary")
    quick = store.cpu.get("experiments.summary")
    fig_preset = (quick or summary)["meta"].get("config_name")
    fig_trained = trained_on(quick) if quick is not None else trained
    out += _figures(store, [f"experiments_{name}" for name in _FIGURE_SET],
                    lambda name: f"{name.removeprefix('experiments_').replace('_', ' ')} (synthetic scenes, preset "
                                 f"{fig_preset}, "
                                 f"{at(_FIGURE_SET[name.removeprefix('experiments_')])}; trained on {fig_trained}"
                                 + ("; the tables above come from the GPU run, this figure from the CPU results)"
                                    if from_gpu else ")"))
    return out


def design_blocks(store, summary: dict[str, Any], trained: str) -> list[Block]:
    """The design behind the verdicts: receptive fields vs the key, controls, gate and power."""
    meta = summary["meta"]
    out: list[Block] = []
    gate = meta.get("gate")
    design = meta.get("design") or {}
    if gate is None:
        return [Paragraph("These results were written before controls, a validity gate and a power analysis were "
                          "declared: their compared verdicts carry no evidence of power.")]
    rnd, tr = design.get("random", {}), design.get("trained", {})
    out.append(Paragraph(
        f"Validity gate: {gate['text']}. Every verdict that compares bit NLLs between variants counts only if the "
        "gate passed; otherwise it is inconclusive (no power)"
        + (f" — missing: {'; '.join(gate['missing'])}" if gate.get("missing") else "") + ". "
        f"Design: canvas {design.get('canvas')}, key at least {design.get('key_gap')} px (Chebyshev) from every object; "
        f"the grid-only model's largest effective receptive-field radius ({design.get('share', 0.95):.0%} of the "
        f"gradient mass, every dense level) is {num(rnd.get('max_effective_radius'), 1)} px with random weights"
        + (f" and {num(tr.get('max_effective_radius'), 1)} px with its trained weights "
           f"({'key outside' if tr.get('key_outside_effective_field') else 'KEY INSIDE'} the trained field)" if tr else "")
        + "."))
    learn = _learnability(meta)
    if learn:
        out.append(Paragraph(learn))
    ctl = store.get("experiments.controls", prefer_gpu=True)
    if ctl is not None and ctl["rows"]:
        c = pd.DataFrame(ctl["rows"])
        c = c[c["kind"] == "mean"].copy()
        for col in ("value", "ci_low", "ci_high", "target", "distance"):
            if col in c:
                c[col] = c[col].map(num)
        out.append(Table(c[[k for k in ("control", "variant", "head", "value", "ci_low", "ci_high", "target",
                                        "distance", "within", "passed", "n_seeds") if k in c]],
                         f"Controls: bit NLL against the floor (positive) and ln 2 (negative), nats; trained on {trained}"))
    fields = store.get("experiments.fields", prefer_gpu=True)
    if fields is not None and fields["rows"]:
        f = pd.DataFrame(fields["rows"])
        f["input"] = f["input"].map(lambda v: "×".join(str(x) for x in v[-2:]) if isinstance(v, list) else v)
        out.append(Table(f[["weights", "seed", "level", "stride", "theoretical_rf", "effective_rf", "effective_radius",
                            "key_gap", "key_outside", "input"]],
                         "Grid-only receptive fields on the experiment canvas (pixels; theoretical at this canvas is a "
                         "lower bound where clipped; effective = side of the square holding the declared share)"))
    return out


def _learnability(meta: dict[str, Any]) -> str | None:
    """The preset's budget against its committed learnability pilot (the hybrid alone, trained longer),
    and its reach control (the grid-only model alone) when there is one, when these results are that
    preset's as declared now (same config key); else None."""
    from hsgprof.experiments.config import PRESETS, get_preset
    from hsgprof.experiments.learnability import UNKNOWN, budget_check, reach_check

    name = meta.get("config_name")
    if name not in PRESETS:
        return None
    cfg = get_preset(name)
    if cfg.key() != meta.get("config_key"):
        return None
    check, reach = budget_check(cfg), reach_check(cfg)
    if check["status"] == UNKNOWN and check["pilot_steps"] is None:
        return None
    return (f"Learnability ({Path(check['pilot']).name}, the hybrid alone at this preset's model, batch and "
            f"learning rate, trained longer; never a compared pair): {check['text']}."
            + (f" {reach['text'][:1].upper()}{reach['text'][1:]}." if reach["status"] != UNKNOWN else ""))


# evaluation set -> the scene config it is drawn from (the convergence set is the first images of val)
_SET_SCENE = {"val": "val", "convergence": "val", "occlusion": "occlusion", "dense": "dense", "train": "train"}


# experiment figure -> the set its numbers come from
_FIGURE_SET = {"controls": "val", "entropy": "val", "delta_occlusion": "occlusion", "capacity": "val", "gradients": "train",
               "convergence": "convergence", "ap_density": "dense"}


def scene_sizes(summary: dict[str, Any]) -> dict[str, str]:
    """{"train": "64×64", "val": ..., "dense": "256×256"} from the experiment config in the results' provenance."""
    cfg = summary["provenance"].get("config") or {}
    return {key.removesuffix("_scene"): f"{v['height']}×{v['width']}" for key, v in cfg.items()
            if key.endswith("_scene") and isinstance(v, dict) and "height" in v and "width" in v}
