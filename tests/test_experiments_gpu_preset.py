"""The GPU preset as declared matches the committed estimate it was sized by."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from hsgprof.experiments.config import get_preset
from hsgprof.experiments.runner import run_specs
from hsgprof.results import read_results

ROOT = Path(__file__).resolve().parent.parent
SIX_MINUTES = 360.0


def test_the_gpu_preset_fits_six_minutes_by_the_estimate_of_its_own_declaration():
    full = get_preset("full")
    doc = read_results(ROOT / "reports/results/pilots/experiments_gpu_estimate_full.json", "experiments.gpu_estimate")
    est, config = doc["meta"]["estimate"], doc["provenance"]["config"]
    assert (est["runs"], est["steps"]) == (len(run_specs(full)), full.budget.steps)
    assert config["budget"]["batch_size"] == full.budget.batch_size
    mine = json.loads(json.dumps(full.to_dict()))                         # as the file holds it
    for key in ("train_scene", "curriculum", "model_overrides", "n_val"):
        assert config[key] == mine[key], key
    assert est["wall_s"] <= SIX_MINUTES
    assert {r["variant"]: r["runs"] for r in doc["rows"]} == Counter(s.variant for s in run_specs(full))


def test_the_estimates_step_profile_counts_one_hungarian_matching_per_image_with_objects_and_decoder_layer(
        one_torch_thread):
    """The host-side matchings of a step enter the estimate (MATCH_S each): the hybrid's and the
    sparse-only model's query heads match every image that has an object, once per decoder layer
    (the auxiliary losses); the grid-only model none."""
    import dataclasses

    from conftest import load_analysis

    from hsgprof.experiments.train import RunSpec, build_run_model, training_batches

    script = load_analysis("experiments_gpu_estimate")
    quick = get_preset("quick")
    cfg = dataclasses.replace(quick, budget=dataclasses.replace(quick.budget, batch_size=3))
    _, targets = training_batches(cfg, 0, 0, 1).get(0)
    with_objects = sum(len(t["labels"]) > 0 for t in targets)
    layers = build_run_model(cfg, RunSpec("hybrid", 0)).cfg.decoder_layers
    assert with_objects > 0 and layers > 1
    counts = {v: script.step_profile(cfg, v)["matchings"] for v in ("hybrid", "grid-only", "sparse-only")}
    assert counts == {"hybrid": with_objects * layers, "grid-only": 0, "sparse-only": with_objects * layers}
