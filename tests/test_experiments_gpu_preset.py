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
