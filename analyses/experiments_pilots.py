"""Pilots for a theory-experiment preset, run before any compared variant trains (issue 12).

What they decide, and nothing else: on the preset's declared canvas,

1. the grid-only model's *effective* receptive field per dense level (random weights; the key
   gap must exceed it: :class:`~hsgprof.experiments.config.Design`);
2. whether the *controls* behave at a candidate budget: the positive control (grid-only told z
   by an extra input plane) must reach the floor H_b((1+s)/2) within the gate, the negative
   control (hybrid, key hidden) must stay at ln 2; and the *hybrid alone* (as the feasibility
   runs did), whose bit NLL is logged but never compared with anything here;
3. the variances the power analysis needs (between seeds, between objects), hence the seeds and
   scored objects needed to detect |Δ| ≥ δ;
4. the time per training step by phase (scene generation, forward, backward + step), the input
   of the GPU preset's wall-time estimate.

No grid-only run without a control and no compared pair is trained here, so nothing in these
results can say which variant would win.

Usage: python analyses/experiments_pilots.py PRESET [steps=N] [batch_size=B] [lr=X] [curriculum.share=X curriculum.F=V ... out=FILE] [seeds=0,1] [workers=W] [out=FILE]
Results: reports/results/pilots/experiments_pilots_<preset>.json (tidy rows + provenance).
"""

from __future__ import annotations

import ast
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

PILOTS = ("positive", "negative", "hybrid")
POWER_SEEDS = list(range(2, 21))


def command_line(argv: list[str], doc: str) -> tuple[str, dict[str, str]] | None:
    """``PRESET KEY=VALUE ...`` of a pilot script: the preset and its options, or None (after printing
    the usage line of ``doc``) when no preset comes first. A word that is not KEY=VALUE raises a
    ValueError naming it (the scripts report it in one line)."""
    if not argv or "=" in argv[0]:
        print(doc.split("Usage: ", 1)[1].split("\n", 1)[0], file=sys.stderr)
        return None
    bad = [a for a in argv[1:] if "=" not in a]
    if bad:
        raise ValueError(f"argument {bad[0]!r} is not KEY=VALUE")
    return argv[0], dict(a.split("=", 1) for a in argv[1:])


def option(opts: dict[str, str], key: str, kind: type, default: Any = None) -> Any:
    """Option ``key`` of a pilot script as ``kind`` (int or float), ``default`` when absent; a value
    that is not such a number raises a ValueError naming the option."""
    if key not in opts:
        return default
    try:
        return kind(opts[key])
    except ValueError:
        raise ValueError(f"{key}={opts[key]!r} is not accepted; need a number ({kind.__name__})") from None


def seed_list(opts: dict[str, str], default: str) -> list[int]:
    """The ``seeds=0,1,...`` option as integers; anything else raises a ValueError naming it."""
    text = opts.get("seeds", default)
    try:
        return [int(s) for s in text.split(",")]
    except ValueError:
        raise ValueError(f"seeds={text!r} is not accepted; need integers separated by commas") from None


def _value(text: str) -> Any:
    """A design value as written: a Python literal (16, 1.0, True, (4, 8)), else the string itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _check_fields(scene: dict[str, Any], model: dict[str, Any], scene_prefix: str = "scene") -> None:
    """Every design field names a field of the scene generator or of the model config, and its value
    has the type of that field's default (an int where a float is expected is taken as that float)."""
    import dataclasses

    from hsgprof.adapters.hsgdet_experiments import SceneConfig
    from hsgdet.config import HSGDetConfig

    for prefix, cls, given in ((scene_prefix, SceneConfig, scene), ("model", HSGDetConfig, model)):
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name, value in given.items():
            if name not in fields:
                raise ValueError(f"{prefix}.{name} is not a field of {cls.__name__}")
            f = fields[name]
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                given[name] = value = float(value)
            if type(value) is not type(default):
                raise ValueError(f"{prefix}.{name}={value!r} is a {type(value).__name__}; "
                                 f"the field is of type {type(default).__name__} (default {default!r})")


def design_options(opts: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The design options of a pilot command line, checked: ``scene.F=V``, ``model.F=V`` and
    ``curriculum.share=X curriculum.until=STEP curriculum.F=V`` as (scene, model, curriculum) dicts
    (each empty when not given); a bad field or value raises ValueError naming it."""
    design = {k: _value(v) for k, v in opts.items() if k.startswith(("scene.", "model.", "curriculum."))}
    scene = {k[6:]: v for k, v in design.items() if k.startswith("scene.")}
    model = {k[6:]: v for k, v in design.items() if k.startswith("model.")}
    curriculum = {k[11:]: v for k, v in design.items() if k.startswith("curriculum.")}
    _check_fields(scene, model)
    _check_fields({k: v for k, v in curriculum.items() if k not in ("share", "until")}, {}, "curriculum")
    share, until = curriculum.get("share", 0.0), curriculum.get("until", 0)
    if type(share) not in (int, float):
        raise ValueError(f"curriculum.share={share!r} is not accepted; need a number in 0..1")
    if type(until) is not int:
        raise ValueError(f"curriculum.until={until!r} is not accepted; need a number (a step; 0: every step)")
    return scene, model, curriculum


def pilot_config(preset: str, steps: int | None = None, batch_size: int | None = None, lr: float | None = None,
                 key_size: int | None = None, scene: dict[str, Any] | None = None,
                 model: dict[str, Any] | None = None, curriculum: dict[str, Any] | None = None):
    """The preset, with a candidate budget when one is given (evaluation every tenth of it), and a
    candidate design change when one is given: ``scene`` fields set on every scene set the pilots
    train and score on (``key_size`` is shorthand for ``scene={"key_size": K}``), ``model`` fields
    added to the preset's model overrides (e.g. a loss weight), ``curriculum`` the training
    curriculum (``share``, ``until`` and scene fields for its share of each batch:
    :class:`~hsgprof.experiments.config.Curriculum`). Each changes the config's key."""
    from hsgprof.experiments.config import get_preset

    cfg = get_preset(preset)
    b = cfg.budget
    steps = steps or b.steps
    budget = b.__class__(**{**b.__dict__, "steps": steps, "batch_size": batch_size or b.batch_size,
                            "lr": lr or b.lr, "eval_every": max(steps // 10, 1), "checkpoint_every": steps})
    scene = {**(scene or {}), **({"key_size": key_size} if key_size else {})}
    return with_design(cfg.replace(budget=budget), scene, model, curriculum)


def with_design(cfg, scene: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
                curriculum: dict[str, Any] | None = None):
    """``cfg`` with a candidate design change (the budget untouched): ``scene`` fields on every scene
    set, ``model`` fields added to the model overrides, ``curriculum`` the training curriculum
    (``share``, ``until`` and scene fields, as :func:`design_options` parses them)."""
    from hsgprof.experiments.config import Curriculum

    if scene:
        cfg = cfg.replace(**{f: getattr(cfg, f).replace(**scene) for f in ("train_scene", "val_scene", "occlusion_scene")})
    if model:
        cfg = cfg.replace(model_overrides=tuple({**dict(cfg.model_overrides), **model}.items()))
    if curriculum:
        rest = {k: v for k, v in curriculum.items() if k not in ("share", "until")}
        cfg = cfg.replace(curriculum=Curriculum(share=float(curriculum.get("share", 0.0)),
                                                scene=tuple(sorted(rest.items())),
                                                until=int(curriculum.get("until", 0))))
    return cfg


def pilot_spec(cfg, name: str, seed: int):
    from hsgprof.experiments.train import RunSpec

    if name in ("hybrid", "grid-only"):                      # a variant alone (never a compared pair)
        return RunSpec(name, seed, tag="pilot")
    c = cfg.control(name)
    return RunSpec(c.variant, seed, tag=f"pilot-{c.tag}", overrides=c.model, scene=c.scene)


def bit_nll(model, sets, cfg, heads=("dense", "sparse")) -> dict[str, Any]:
    """Bit NLL (nats, validation half, temperature fitted on the calibration half) per head, and
    the per-object values of each head (for the variances)."""
    from hsgprof.experiments import entropy as E
    from hsgprof.experiments.evaluate import object_outputs

    out = object_outputs(model, sets["val"].scenes, "val")
    calib = out.meta["image"].to_numpy() < cfg.n_val // 2
    temps = E.calibrate(out, calib, cfg.prob_eps)
    res: dict[str, Any] = {}
    for h in E.available_heads(out):
        if h not in heads:
            continue
        _, b = E.per_object_nll(out, h, temps, cfg.prob_eps)
        res[f"nll_bit_{h}"] = float(b[~calib].mean())
        res[f"_objects_{h}"] = b[~calib]
    return res


def one_pilot(preset: str, name: str, seed: int, budget: dict[str, Any], probe: int = 0) -> dict[str, Any]:
    """Train one pilot run (own process), logging the bit NLL at every evaluation point (and, with
    ``probe`` images, the key probe of the features: :mod:`hsgprof.experiments.probe`); a finished
    run is kept under reports/cache/pilots/ (git-ignored) and reused by a rerun with the same key."""
    import json

    cfg = pilot_config(preset, **budget)
    cache = Path("reports/cache/pilots") / f"{preset}-{cfg.key()}-{name}-s{seed}{f'-probe{probe}' if probe else ''}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    res = _train_pilot(preset, name, seed, budget, probe)
    from hsgprof.results import atomic_write_text

    atomic_write_text(cache, json.dumps(res) + "\n")
    return res


def _train_pilot(preset: str, name: str, seed: int, budget: dict[str, Any], probe: int = 0) -> dict[str, Any]:
    import torch

    from hsgprof.experiments.runner import eval_sets
    from hsgprof.experiments.train import train_run

    torch.set_num_threads(1)
    cfg = pilot_config(preset, **budget)
    spec = pilot_spec(cfg, name, seed)
    sets = eval_sets(cfg, spec)
    t0 = time.perf_counter()
    curve = []

    def on_eval(model, step):
        r = bit_nll(model, sets, cfg)
        if probe and model.neck.pan is not None:          # z read from the features the dense head sees
            from hsgprof.experiments.probe import key_probe

            for lv in key_probe(cfg, images=probe, model=model)["levels"]:
                r[f"probe_{lv['name']}"] = lv["accuracy"]
        curve.append({k: v for k, v in r.items() if not k.startswith("_")} | {"step": step})
        print(f"[{preset} {name} s{seed}] step {step}: " + ", ".join(           # progress, on stderr
            f"{k} {v:.3f}" for k, v in r.items() if not k.startswith("_") and isinstance(v, float)),
            file=sys.stderr, flush=True)
        return {k: v for k, v in r.items() if not k.startswith("_")}

    with tempfile.TemporaryDirectory() as d:
        model, log = train_run(cfg, spec, d, None, resume=False, progress=False, on_eval=on_eval)
    final = bit_nll(model, sets, cfg)
    return {"pilot": name, "seed": seed, "variant": spec.variant, "curve": curve, "wall_s": time.perf_counter() - t0,
            "train_wall_s": log["wall_s"], "objects": {k[9:]: v.tolist() for k, v in final.items() if k.startswith("_")},
            "final": {k: v for k, v in final.items() if not k.startswith("_")}}


def step_phases(preset: str, variant: str = "grid-only", steps: int = 12, device: str = "cpu",
                budget: dict[str, Any] | None = None) -> dict[str, float]:
    """Median seconds per training step by phase: scene generation, forward (incl. matching and
    losses), backward + optimiser step; one torch thread on CPU. ``budget``: the pilots' candidate
    budget and curriculum (:func:`pilot_config`), else the preset as declared."""
    import torch

    from hsgprof.experiments.train import RunSpec, build_run_model, training_batches

    torch.set_num_threads(1)
    cfg = pilot_config(preset, **(budget or {}))
    batches = training_batches(cfg, 0, 0, steps)                      # as training draws them (curriculum too)
    model = build_run_model(cfg, RunSpec(variant, 0)).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.budget.lr)
    sync = (lambda: torch.cuda.synchronize()) if device.startswith("cuda") else (lambda: None)
    rows = []
    for step in range(steps):
        t0 = time.perf_counter()
        images, targets = batches.get(step)
        images = images.to(device)
        targets = [{k: v.to(device) for k, v in t.items()} for t in targets]
        sync()
        t1 = time.perf_counter()
        loss = model(images, targets)["loss"]
        sync()
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sync()
        t3 = time.perf_counter()
        rows.append((t1 - t0, t2 - t1, t3 - t2))
    a = np.array(rows[2:])                                     # the first steps warm up allocators
    return {"variant": variant, "data_s": float(np.median(a[:, 0])), "forward_s": float(np.median(a[:, 1])),
            "backward_step_s": float(np.median(a[:, 2])), "steps_timed": len(a), "device": device,
            "batch_size": cfg.budget.batch_size, "loadavg": list(os.getloadavg())}


def design_fields(preset: str) -> dict[str, Any]:
    """The grid-only model's fields per dense level on the declared canvas (random weights)."""
    import torch

    from hsgprof.experiments.config import get_preset
    from hsgprof.experiments.fields import grid_fields

    torch.set_num_threads(1)
    cfg = get_preset(preset)
    return grid_fields(cfg, seed=0)


def main(argv: list[str]) -> int:
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing as mp

    from hsgprof.errors import HsgprofError
    from hsgprof.experiments import power as P
    from hsgprof.results import check_writable, write_results

    try:
        parsed = command_line(argv, __doc__)
        if parsed is None:
            return 2
        preset, opts = parsed
        unknown = {k for k in opts if not k.startswith("curriculum.")} - {"steps", "batch_size", "lr", "seeds",
                                                                            "workers", "out"}
        if unknown:
            raise ValueError(f"options {sorted(unknown)} not accepted")
        budget = {"steps": option(opts, "steps", int), "batch_size": option(opts, "batch_size", int),
                  "lr": option(opts, "lr", float)}
        curriculum = design_options(opts)[2]
        if curriculum:
            if "out" not in opts:                              # never over the preset's own power pilots
                raise ValueError(f"curriculum options pilot a candidate, not the preset as declared: give out=FILE "
                                 f"(the default, experiments_pilots_{preset}.json, is the preset's own)")
            budget["curriculum"] = curriculum                  # a candidate curriculum (pilot_config)
        seeds = seed_list(opts, "0,1")
        workers = option(opts, "workers", int, os.cpu_count() or 1)
        out = check_writable(opts.get("out", f"reports/results/pilots/experiments_pilots_{preset}.json"), "out")
        cfg = pilot_config(preset, **budget)
    except (HsgprofError, ValueError) as e:                    # bad options or out=, or an unknown preset
        print(f"experiments_pilots: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    jobs = [(preset, name, s, budget) for s in seeds for name in PILOTS]
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        fields = pool.submit(design_fields, preset).result()           # first: a fault shows before any run
        runs = list(pool.map(one_pilot, *zip(*jobs)))
        phases = [pool.submit(step_phases, preset, v, budget=budget).result() for v in ("grid-only", "hybrid")]
    wall = time.perf_counter() - t0

    rows = []
    for r in runs:
        for c in r["curve"]:
            for key, v in c.items():
                if key.startswith("nll_bit_"):
                    rows.append({"pilot": r["pilot"], "variant": r["variant"], "seed": r["seed"], "step": c["step"],
                                 "head": key[8:], "nll_bit": v, "final": c["step"] == cfg.budget.steps})
    df = pd.DataFrame(rows)
    # Variances from each pilot's primary head (grid-only: dense; hybrid: sparse), final step.
    comps = []
    for name in PILOTS:
        head = "dense" if name == "positive" else "sparse"
        objs = [pd.DataFrame({"seed": r["seed"], "nll_bit": r["objects"][head]}) for r in runs if r["pilot"] == name]
        c = P.variance_components(pd.concat(objs), "nll_bit", "seed")
        comps.append({"pilot": name, "head": head, **c})
    pool_ = P.pooled(comps)
    m = int(np.mean([len(r["objects"]["dense"]) for r in runs if "dense" in r["objects"]]))
    pw = cfg.power
    table = P.power_table(pool_["sigma_seed"], pool_["sigma_object"], [m, 2 * m, 4 * m], POWER_SEEDS, pw.alpha, pw.power)
    need = P.seeds_needed(pw.delta, pool_["sigma_seed"], pool_["sigma_object"], m, pw.alpha, pw.power)
    gate = cfg.gate
    from hsgprof.adapters.hsgdet_experiments import known_quantities

    floor = known_quantities(cfg.val_scene)["h_bit_given_x"]
    fin = df[df.final]
    pos = fin[(fin.pilot == "positive") & (fin["head"] == "dense")].nll_bit.mean()
    neg = fin[(fin.pilot == "negative") & (fin["head"] == "sparse")].nll_bit.mean()
    meta = {"preset": preset, "budget": cfg.budget.__dict__, "seeds": seeds, "wall_s": wall,
            "floor": floor, "ln2": float(np.log(2)),
            "gate": {"positive_mean": float(pos), "positive_pass": bool(pos <= floor + gate.positive_within),
                     "negative_mean": float(neg), "negative_pass": bool(abs(neg - np.log(2)) <= gate.negative_within),
                     **gate.__dict__},
            "variance_components": comps, "pooled": pool_, "objects_per_run": m,
            "power": {"delta": pw.delta, "alpha": pw.alpha, "power": pw.power, "seeds_needed": need,
                      "mdd_at_declared": {str(n): P.mdd(n, pool_["sigma_seed"], pool_["sigma_object"], m, pw.alpha, pw.power)
                                          for n in (2, 3, 4, 5, 8)},
                      "table": table.to_dict("records")},
            "fields": fields, "key_gap": cfg.train_scene.key_gap, "step_phases": phases,
            "run_wall_s": {f"{r['pilot']}-s{r['seed']}": r["wall_s"] for r in runs}}
    write_results(out, "experiments.pilots", df, config=cfg.to_dict(), meta=meta,
                  command="python analyses/experiments_pilots.py " + " ".join(argv))
    print(df[df.final].to_string())
    print({k: meta[k] for k in ("gate", "pooled", "objects_per_run")}, meta["power"]["seeds_needed"])
    print("fields", [(lv["name"], lv["effective_radius"]) for lv in fields["levels"]], "gap", cfg.train_scene.key_gap)
    print("phases", phases, f"wall {wall:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
