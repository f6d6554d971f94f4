"""Can a preset's budget learn the far key at all? The learnability pilot, read before compared runs.

A compared run of variants has power only if the hybrid can learn the bit from the far key
within the budget: if it cannot, H_hybrid = H_grid = ln 2 whatever the architecture could do
with more training, and every theory verdict comes out *inconclusive* for a reason the design
fixed in advance. ``analyses/experiments_learnability.py PRESET steps=N`` trains the hybrid alone
(never a compared pair) at the preset's model, batch and learning rate for N steps and writes
``reports/results/pilots/experiments_learnability_<preset>.json``. This module reads that file
against a preset's declared budget (:func:`budget_check`); ``hsgprof experiments gpu`` prints the
outcome before it spends the GPU on the runs, and records it with them.

A head counts as having learned the key at the first evaluation step from which its bit NLL stays
within the validity gate's positive margin of the floor H_b((1 + s)/2) (:func:`learned_at`): the
margin the positive control must meet.

The same script with ``variant=grid-only`` writes the design's *reach control*
(``experiments_learnability_<preset>_grid-only.json``): the grid-only model alone, trained as
long. :func:`reach_check` reads it: if the grid-only model learns the far key, the key is within
its reach after training (whatever the receptive-field and probe checks said at initialisation),
and a difference between it and the hybrid no longer isolates the global block.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

from hsgprof.experiments.config import Curriculum, ExperimentConfig
from hsgprof.provenance import REPO_ROOT

HEADS = ("dense", "sparse")
PILOT_DIR = REPO_ROOT / "reports" / "results" / "pilots"

# Outcomes of budget_check.
REACHES = "reaches"            # every pilot seed learned within the preset's steps
BELOW = "below"                # some pilot seed did not learn within the preset's steps
NEVER = "never"                # no head learned within the pilot's steps, which cover the preset's
UNKNOWN = "unknown"            # no pilot for this budget, or the preset trains longer than the pilot
# Outcomes of reach_check.
IN_REACH = "in reach"          # the grid-only model alone learned the far key
NOT_LEARNED = "not learned"    # it did not, within the reach control's steps


def learned_at(curve: Sequence[dict[str, Any]], head: str, threshold: float) -> int | None:
    """The first evaluation step from which ``head``'s bit NLL stays at or below ``threshold``, else None
    (a missing or NaN value is never "learned")."""
    steps = [(c["step"], c.get(f"nll_bit_{head}")) for c in curve]
    for i, (step, _) in enumerate(steps):
        tail = [v for _, v in steps[i:]]
        if tail and all(v is not None and not math.isnan(v) and v <= threshold for v in tail):
            return step
    return None


def pilot_path(preset: str) -> Path:
    return PILOT_DIR / f"experiments_learnability_{preset}.json"


def reach_path(preset: str) -> Path:
    """The preset's reach control: the grid-only model alone, trained as long as the learnability pilot."""
    return PILOT_DIR / f"experiments_learnability_{preset}_grid-only.json"


def _declared(path: str) -> Path | None:
    """A results file a preset's design names (relative to the repository), or None."""
    return (REPO_ROOT / path) if path else None


def _same_design(doc: dict[str, Any], cfg: ExperimentConfig) -> bool:
    """Whether a pilot file trained the preset's model and scenes at its batch size and learning rate."""
    b = doc["meta"]["budget"]
    pcfg = doc["provenance"].get("config") or {}
    mine = json.loads(json.dumps(cfg.to_dict()))                # as the file holds it (lists, not tuples)
    return (b["batch_size"] == cfg.budget.batch_size and b["lr"] == cfg.budget.lr
            and all(pcfg.get(k) == mine.get(k) for k in ("preset", "model_overrides", "train_scene"))
            and pcfg.get("curriculum", Curriculum().as_dict()) == mine["curriculum"])   # files from before it: none


def reach_check(cfg: ExperimentConfig, pilot: str | Path | None = None) -> dict[str, Any]:
    """Did the grid-only model, trained alone on the preset's design, learn the far key anyway?

    Returns ``{"status", "text", "pilot", "pilot_steps", "learned_at_step", "seeds", "seeds_learned"}``
    with status :data:`IN_REACH` (it learned the bit in some seed: after training the key is within
    the grid-only model's reach, and H_grid − H_hybrid on this design does not isolate the global
    block), :data:`NOT_LEARNED` (in no seed within the pilot's steps) or :data:`UNKNOWN` (no reach
    control of this design, model and budget).
    """
    from hsgprof.results import read_results

    path = Path(pilot) if pilot else _declared(cfg.design.reach) or reach_path(cfg.name)
    out: dict[str, Any] = {"pilot": str(path), "pilot_steps": None, "learned_at_step": None}
    if not path.is_file():
        return {**out, "status": UNKNOWN, "text": f"no reach control for the {cfg.name} preset ({path.name})"}
    doc = read_results(path, "experiments.learnability")
    meta = doc["meta"]
    out["pilot_steps"] = meta["budget"]["steps"]
    if meta.get("variant") != "grid-only" or not _same_design(doc, cfg):
        return {**out, "status": UNKNOWN, "text": f"{path.name} is not a grid-only run of the {cfg.name} preset's "
                                                  "model, scenes, batch and learning rate"}
    seeds = sorted({r["seed"] for r in meta["learned"]})
    steps = [r["learned_at_step"] for r in meta["learned"] if r["learned_at_step"] is not None]
    learned = sorted({r["seed"] for r in meta["learned"] if r["learned_at_step"] is not None})
    out.update(seeds=len(seeds), seeds_learned=len(learned))
    if steps:
        out["learned_at_step"] = min(steps)
        return {**out, "status": IN_REACH,
                "text": f"in the reach control ({path.name}: the grid-only model alone, {out['pilot_steps']} steps) "
                        f"the grid-only model learned the far key in {len(learned)} of {len(seeds)} seed(s), first "
                        f"at step {min(steps)}: after training the key is within its reach, so on this design a "
                        "difference H_grid − H_hybrid does not isolate the global block"}
    return {**out, "status": NOT_LEARNED,
            "text": f"in the reach control ({path.name}) the grid-only model alone did not learn the far key within "
                    f"{out['pilot_steps']} steps in any of {len(seeds)} seed(s)"}


def budget_check(cfg: ExperimentConfig, pilot: str | Path | None = None) -> dict[str, Any]:
    """The preset's steps against the learnability pilot of the same model, batch and learning rate.

    Returns ``{"status", "text", "pilot", "preset_steps", "pilot_steps", "learned_at_step", "seeds",
    "seeds_learned", "seeds_learned_in_budget"}`` with status one of :data:`REACHES` (every pilot seed
    learned within the preset's steps), :data:`BELOW` (some seed did not, or learned later),
    :data:`NEVER` (no seed learned, over at least the preset's steps) or :data:`UNKNOWN`. A seed has
    learned when any head has (:func:`learned_at`). The pilot's schedule is its own (warm-up and
    decay over its steps), so "reaches" says the budget was long enough in the runs measured, not
    that every seed of a compared run will learn.
    """
    from hsgprof.results import read_results

    path = Path(pilot) if pilot else _declared(cfg.design.learnability) or pilot_path(cfg.name)
    out: dict[str, Any] = {"pilot": str(path), "preset_steps": cfg.budget.steps, "pilot_steps": None,
                           "learned_at_step": None}
    if not path.is_file():
        return {**out, "status": UNKNOWN, "text": f"no learnability pilot for the {cfg.name} preset ({path.name})"}
    doc = read_results(path, "experiments.learnability")
    meta = doc["meta"]
    b = meta["budget"]
    out["pilot_steps"] = b["steps"]
    if meta.get("variant", "hybrid") != "hybrid":
        return {**out, "status": UNKNOWN, "text": f"{path.name} pilots the {meta['variant']} variant, not the hybrid"}
    if not _same_design(doc, cfg):
        return {**out, "status": UNKNOWN,
                "text": f"the learnability pilot ({path.name}) trained another model or budget (batch "
                        f"{b['batch_size']}, lr {b['lr']}) than the {cfg.name} preset (batch "
                        f"{cfg.budget.batch_size}, lr {cfg.budget.lr})"}
    by_seed: dict[int, int | None] = {}                  # seed -> the first step any head learned, or None
    for r in meta["learned"]:
        at, prev = r["learned_at_step"], by_seed.get(r["seed"])
        by_seed[r["seed"]] = at if prev is None else (prev if at is None else min(prev, at))
    n = len(by_seed)
    steps = [s for s in by_seed.values() if s is not None]
    in_budget = [s for s in steps if s <= cfg.budget.steps]
    out.update(seeds=n, seeds_learned=len(steps), seeds_learned_in_budget=len(in_budget))
    if steps:
        first = min(steps)
        out["learned_at_step"] = first
        if len(in_budget) == n:
            return {**out, "status": REACHES,
                    "text": f"in the learnability pilot the hybrid learned the key in every seed ({n}) by step "
                            f"{max(steps)}; the preset trains {cfg.budget.steps} steps"}
        if b["steps"] >= cfg.budget.steps or len(in_budget) < len(steps):
            return {**out, "status": BELOW,
                    "text": f"the preset trains {cfg.budget.steps} steps; in the learnability pilot ({b['steps']} "
                            f"steps) the hybrid learned the key in {len(steps)} of {n} seed(s), first at step {first}, "
                            f"{len(in_budget)} within the preset's steps: "
                            + ("its theory verdicts are expected to be inconclusive (no power)" if not in_budget else
                               "its theory comparisons may lack power (a seed that does not learn adds Δ = 0)")}
    elif b["steps"] >= cfg.budget.steps:
        return {**out, "status": NEVER,
                "text": f"in the learnability pilot ({n} seed(s), {b['steps']} steps, at least the preset's "
                        f"{cfg.budget.steps}) no head of the hybrid learned the key: the preset's theory verdicts "
                        "are expected to be inconclusive (no power)"}
    return {**out, "status": UNKNOWN,
            "text": f"the learnability pilot stopped at {b['steps']} steps with {n - len(steps)} of {n} seed(s) not "
                    f"learned; the preset trains {cfg.budget.steps}"}
