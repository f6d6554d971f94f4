"""Learnability pilots: does the hybrid read the far key at all, and after how many images?

The issue-12 pilots (``analyses/experiments_pilots.py``) showed the controls behaving at the quick
budget while the hybrid stayed at ln 2. That alone cannot tell "the architecture cannot use the
key" from "the budget is too short". This script trains the *hybrid alone* (no compared variant:
nothing here can say which variant wins) for longer budgets and logs both heads' bit NLL at ten
evaluation points, so a preset's budget can be set where the key is learnable, before any compared
run of that preset.

A head counts as having learned the key at the first evaluation point where its bit NLL is within
the validity gate's positive margin of the floor H_b((1 + s)/2) (the same margin the positive
control must meet), and stays so at every later point (``hsgprof.experiments.learnability``, which
also reads the results file against a preset's budget). A design change is piloted with
``scene.FIELD=VALUE`` (a scene-generator field set on every scene set, e.g. ``scene.key_size=16``;
``key_size=K`` is shorthand for it) and ``model.FIELD=VALUE`` (a model-config field added to the
preset's overrides, e.g. a loss weight ``model.loss_dense_cls=2.0``); both go into the results'
config and its key, so :func:`~hsgprof.experiments.learnability.budget_check` reads a pilot only
against a preset that declares the same design. ``curriculum.share=X`` (with ``curriculum.until=STEP``
and scene fields ``curriculum.F=V``) pilots a training curriculum
(:class:`~hsgprof.experiments.config.Curriculum`: that share of each training batch drawn with the
scene fields set; evaluation unchanged).

``variant=grid-only`` trains the grid-only model alone instead: a *reach control* for the design,
not a comparison (it is never read against a preset's budget). The key is meant to be out of the
grid-only model's reach; if that model learns the bit anyway, the design does not isolate the
global block, whatever the receptive-field and probe checks said at initialisation.

``probe=IMAGES`` also runs the key probe (:mod:`hsgprof.experiments.probe`) on the training
model's features at every evaluation point (columns ``probe_P3``..``probe_P5``: held-out accuracy
of z from each level's features at the objects' cells): it tells a model whose features carry z
but whose head does not use it yet from one whose features never receive it.

Usage: python analyses/experiments_learnability.py PRESET steps=N [seeds=0] [batch_size=B] [lr=X] [key_size=K] [scene.F=V ...] [model.F=V ...] [curriculum.share=X curriculum.until=STEP curriculum.F=V ...] [variant=hybrid|grid-only] [probe=IMAGES] [out=FILE]
Results: reports/results/pilots/experiments_learnability_<preset>.json, with ``variant=grid-only``
``..._<preset>_grid-only.json`` (the reach control's name), tidy rows + provenance. A candidate
(``batch_size``, ``lr``, ``key_size``, ``scene.``/``model.``/``curriculum.`` options) needs ``out=FILE``:
those two names are the preset's own pilot and reach control.
A run is cached under reports/cache/pilots/ (git-ignored) by its config key, as the pilots are.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from experiments_pilots import command_line, design_options, one_pilot, option, pilot_config, seed_list  # noqa: E402  (analyses/ is not a package)

from hsgprof.experiments.learnability import HEADS, learned_at, pilot_path, reach_path  # noqa: E402


def default_out(preset: str, variant: str) -> Path:
    """Where a pilot goes without ``out=``: the preset's learnability file, or for the grid-only model
    its reach-control file (the names ``hsgprof.experiments.learnability`` reads)."""
    return reach_path(preset) if variant == "grid-only" else pilot_path(preset)


def run(preset: str, steps: int, seeds: list[int], batch_size: int | None = None, lr: float | None = None,
        out: Path | None = None, command: str = "", key_size: int | None = None,
        scene: dict[str, Any] | None = None, model: dict[str, Any] | None = None, variant: str = "hybrid",
        probe: int = 0, curriculum: dict[str, Any] | None = None) -> Path:
    from hsgprof.adapters.hsgdet_experiments import known_quantities
    from hsgprof.results import check_writable, write_results

    out = Path(out or default_out(preset, variant))
    check_writable(out)
    budget = {"steps": steps, "batch_size": batch_size, "lr": lr}
    if key_size:
        budget["key_size"] = key_size                   # a design change (every scene set's key), given with the budget
    if scene:
        budget["scene"] = scene
    if model:
        budget["model"] = model
    if curriculum:
        budget["curriculum"] = curriculum
    cfg = pilot_config(preset, **budget)
    floor = known_quantities(cfg.val_scene)["h_bit_given_x"]
    threshold = floor + cfg.gate.positive_within
    t0 = time.perf_counter()
    runs = [one_pilot(preset, variant, s, budget, probe) for s in seeds]
    rows, learned = [], []
    for r in runs:
        for c in r["curve"]:
            for head in HEADS:
                v = c.get(f"nll_bit_{head}")
                if v is not None:
                    rows.append({"preset": preset, "pilot": variant, "seed": r["seed"], "step": c["step"],
                                 "images": c["step"] * cfg.budget.batch_size, "head": head, "nll_bit": v,
                                 **{k: c[k] for k in c if k.startswith("probe_")}})
        for head in HEADS:
            at = learned_at(r["curve"], head, threshold)
            learned.append({"seed": r["seed"], "head": head, "learned_at_step": at,
                            "learned_at_images": None if at is None else at * cfg.budget.batch_size,
                            "final_nll_bit": r["final"].get(f"nll_bit_{head}"), "train_wall_s": r["train_wall_s"]})
    meta = {"preset": preset, "variant": variant, "budget": cfg.budget.__dict__, "seeds": seeds, "floor": floor, "ln2": math.log(2),
            "learned_threshold": threshold, "rule": "learned at the first evaluation step from which the bit NLL "
            "stays within the gate's positive margin of the floor", "learned": learned,
            "wall_s": time.perf_counter() - t0}
    return write_results(out, "experiments.learnability", rows, config=cfg.to_dict(), meta=meta,
                         command=command or f"python analyses/experiments_learnability.py {preset} steps={steps}")


def main(argv: list[str]) -> int:
    from hsgprof.errors import HsgprofError

    try:
        parsed = command_line(argv, __doc__)
        if parsed is None:
            return 2
        preset, opts = parsed
        design = {k for k in opts if k.startswith(("scene.", "model.", "curriculum."))}
        unknown = set(opts) - design - {"steps", "seeds", "batch_size", "lr", "key_size", "variant", "probe", "out"}
        if unknown or "steps" not in opts:
            raise ValueError(f"options {sorted(unknown)} not accepted" if unknown else "steps=N is required")
        steps, seeds = option(opts, "steps", int), seed_list(opts, "0")
        batch, lr, key_size = option(opts, "batch_size", int), option(opts, "lr", float), option(opts, "key_size", int)
        if steps < 1 or (batch is not None and batch < 1) or (key_size is not None and key_size < 1):
            raise ValueError(f"steps={steps}, batch_size={batch} and key_size={key_size} must be >= 1")
        scene, model, curriculum = design_options(opts)
        variant = opts.get("variant", "hybrid")
        probe = option(opts, "probe", int, 0)
        if probe and probe < 4:
            raise ValueError(f"probe={probe} is too few images; 0 (no probe) or at least 4")
        if variant not in ("hybrid", "grid-only"):
            raise ValueError(f"variant={variant!r} is not accepted (hybrid, grid-only)")
        candidate = [k for k in opts if k in ("batch_size", "lr", "key_size") or k in design]
        if candidate and "out" not in opts:                 # never over the preset's own pilot or reach control
            raise ValueError(f"{', '.join(sorted(candidate))} pilot(s) a candidate, not the preset as declared: "
                             f"give out=FILE (the default, {default_out(preset, variant).name}, is the preset's own)")
    except ValueError as exc:
        print(f"experiments_learnability: {exc}; accepted: PRESET steps=N [seeds=0,1] [batch_size=B] [lr=X] "
              "[key_size=K] [scene.FIELD=VALUE] [model.FIELD=VALUE] [curriculum.share=X curriculum.until=STEP curriculum.FIELD=VALUE] [variant=hybrid|grid-only] [probe=IMAGES] [out=FILE]",
              file=sys.stderr)
        return 2
    try:
        path = run(preset, steps, seeds, batch, lr, Path(opts["out"]) if "out" in opts else None,
                   command="python analyses/experiments_learnability.py " + " ".join(argv), key_size=key_size,
                   scene=scene, model=model, variant=variant, probe=probe, curriculum=curriculum)
    except (HsgprofError, ValueError) as exc:            # ValueError: a scene the key does not fit
        print(f"experiments_learnability: {exc}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
