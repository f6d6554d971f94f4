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


def test_the_gpu_preset_fits_six_minutes_at_a_stated_host_speed_by_the_estimate_of_its_own_declaration():
    """The committed estimate is of the preset as declared (its runs, steps, batch, scenes, curriculum,
    model and validation size), and says the preset fits six minutes on some host: its GPU side alone
    does, and the file states the host reference time up to which the CPU side does too (the first
    GPU run measures that host's reference: hsgprof experiments gpu)."""
    full = get_preset("full")
    doc = read_results(ROOT / "reports/results/pilots/experiments_gpu_estimate_full.json", "experiments.gpu_estimate")
    est, config = doc["meta"]["estimate"], doc["provenance"]["config"]
    assert (est["runs"], est["steps"]) == (len(run_specs(full)), full.budget.steps)
    assert config["budget"]["batch_size"] == full.budget.batch_size
    mine = json.loads(json.dumps(full.to_dict()))                         # as the file holds it
    for key in ("train_scene", "curriculum", "model_overrides", "n_val"):
        assert config[key] == mine[key], key
    fit = doc["meta"]["fit"]
    assert fit["limit_s"] == SIX_MINUTES and fit["host_scale_to_fit"] is not None
    assert fit["wall_s_infinitely_fast_host"] <= SIX_MINUTES
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


def test_the_host_reference_is_a_median_of_real_timings_and_refuses_no_repeats(one_torch_thread):
    import pytest

    from hsgprof.experiments.hostspeed import VERSION, reference_seconds

    ref = reference_seconds(repeats=3)
    assert ref["version"] == VERSION and len(ref["times_s"]) == 3 and ref["torch_threads"] == 1
    assert min(ref["times_s"]) <= ref["median_s"] <= max(ref["times_s"]) and ref["median_s"] > 0
    with pytest.raises(ValueError, match="repeats=0"):
        reference_seconds(repeats=0)


def _toy_profiles():
    return {"hybrid": {"ops": 6000, "syncs": 18, "matchings": 320, "gemm_flops": 4e10},
            "grid-only": {"ops": 3000, "syncs": 13, "matchings": 0, "gemm_flops": 4e10}}


def test_the_estimate_scales_every_measured_cpu_term_by_the_host_and_finds_where_it_stops_fitting():
    """host_scale s multiplies data, evaluation and results time (what the machine running the
    script measured), not the declared GPU-side constants; the largest s that fits six minutes is
    where the wall time meets the limit; an estimate over the limit at s = 0 has no such s."""
    import pytest
    from conftest import load_analysis

    script = load_analysis("experiments_gpu_estimate")
    prof, runs = _toy_profiles(), {"hybrid": 16, "grid-only": 16}
    base = script.estimate(prof, 0.2, runs, 200, 10.0, 20.0)
    doubled = script.estimate(prof, 0.2, runs, 200, 10.0, 20.0, host_scale=2.0)
    by_hand = script.estimate(prof, 0.4, runs, 200, 20.0, 40.0)
    assert doubled["wall_s"] == pytest.approx(by_hand["wall_s"]) and doubled["wall_s"] > base["wall_s"]
    assert doubled["per_variant"]["hybrid"]["t_host_s"] == base["per_variant"]["hybrid"]["t_host_s"]

    def wall_at(s):
        return script.estimate(prof, 0.2, runs, 200, 10.0, 20.0, host_scale=s)["wall_s"]

    s = script.largest_host_scale_to_fit(wall_at)
    assert s is not None and wall_at(s) <= script.WALL_LIMIT_S < wall_at(s * 1.001)
    assert script.largest_host_scale_to_fit(lambda x: 100.0 + 10.0 * x, limit=160.0) == pytest.approx(6.0)
    assert script.largest_host_scale_to_fit(lambda x: 400.0 + x) is None
    with pytest.raises(ValueError, match="host_scale=-1"):
        script.estimate(prof, 0.2, runs, 200, 10.0, 20.0, host_scale=-1.0)


def test_the_committed_estimate_states_its_machines_speed_and_where_the_preset_stops_fitting():
    """The estimate of the declared preset carries the host reference it was measured beside, and its
    fit line is the estimate's own: recomputed from the file's profiles at the scale it names, the
    wall time is the limit (or, with none named, over the limit at any host speed)."""
    import pytest
    from conftest import load_analysis

    from hsgprof.experiments.hostspeed import VERSION

    script = load_analysis("experiments_gpu_estimate")
    doc = read_results(ROOT / "reports/results/pilots/experiments_gpu_estimate_full.json", "experiments.gpu_estimate")
    meta = doc["meta"]
    assert meta["host_reference"]["version"] == VERSION and meta["host_reference"]["median_s"] > 0
    prof = {r["variant"]: r for r in doc["rows"]}
    runs = {r["variant"]: r["runs"] for r in doc["rows"]}
    est, fit = meta["estimate"], meta["fit"]

    def wall_at(s):
        return script.estimate(prof, meta["data_s_per_batch"], runs, est["steps"], meta["eval_s_per_run_cpu"],
                               meta["results_s_quick_scaled"], host_scale=s, eval_net_s=meta["eval_net_s_per_run"],
                               fields_s=meta["fields_s_cpu"])["wall_s"]

    assert wall_at(1.0) == pytest.approx(est["wall_s"]) and fit["fits_at_this_host_speed"] == (est["wall_s"] <= 360.0)
    if fit["host_scale_to_fit"] is None:
        assert wall_at(0.0) > fit["limit_s"]
    else:
        assert wall_at(fit["host_scale_to_fit"]) == pytest.approx(fit["limit_s"], rel=1e-4)
        assert fit["host_reference_s_to_fit"] == pytest.approx(fit["host_scale_to_fit"] * meta["host_reference"]["median_s"])


def test_the_gpu_command_reads_its_hosts_speed_against_the_estimate_of_its_design(tmp_path, monkeypatch):
    """hsgprof experiments gpu times the host reference and says whether the estimate's premise holds:
    within its limit, over it, or not comparable (no estimate, another design, another reference)."""
    import hsgprof.experiments.gpu as GPU
    import hsgprof.experiments.hostspeed as H
    from hsgprof.results import write_results

    quick = get_preset("quick")
    monkeypatch.setattr(H, "reference_seconds", lambda repeats=5: {"version": H.VERSION, "median_s": 0.5})
    path = tmp_path / "est.json"

    def estimate_file(limit, config=quick, version=H.VERSION):
        write_results(path, "experiments.gpu_estimate", [], config=config.to_dict(),
                      meta={"host_reference": {"version": version, "median_s": 0.2},
                            "fit": {"limit_s": 360.0, "host_reference_s_to_fit": limit}})
        return path

    assert GPU.host_check(quick, "quick", estimate_file(0.6))["status"] == GPU.FITS
    over = GPU.host_check(quick, "quick", estimate_file(0.4))
    assert over["status"] == GPU.SLOWER and "0.400 s" in over["text"] and "0.500 s" in over["text"]
    assert GPU.host_check(quick, "quick", estimate_file(None))["status"] == GPU.SLOWER
    assert GPU.host_check(quick, "quick", estimate_file(0.6, config=get_preset("smoke")))["status"] == GPU.NOT_COMPARED
    assert GPU.host_check(quick, "quick", estimate_file(0.6, version=H.VERSION + 1))["status"] == GPU.NOT_COMPARED
    assert GPU.host_check(quick, "quick", tmp_path / "absent.json")["status"] == GPU.NOT_COMPARED


def test_the_estimate_takes_a_candidate_design_only_with_its_own_results_file():
    import pytest
    from conftest import load_analysis

    script = load_analysis("experiments_gpu_estimate")
    full = get_preset("full")
    preset, cfg, out = script.candidate(["full"])
    assert (preset, cfg, out.name) == ("full", full, "experiments_gpu_estimate_full.json")
    words = ["full", "n_val=512", "curriculum.share=0.75", "curriculum.key_gap=2", "curriculum.key_reach=64"]
    _, cand, out = script.candidate(words + ["out=/tmp/cand.json"])
    assert cand.n_val == 512 and cand.curriculum.share == 0.75 and str(out) == "/tmp/cand.json"
    assert cand.budget == full.budget and cand.train_scene == full.train_scene
    with pytest.raises(ValueError, match="give out=FILE"):
        script.candidate(words)
    with pytest.raises(ValueError, match="'steps' is not accepted"):
        script.candidate(["full", "steps=10", "out=/tmp/x.json"])
    with pytest.raises(ValueError, match="n_val=1 is not accepted"):
        script.candidate(["full", "n_val=1", "out=/tmp/x.json"])
    assert script.candidate(["full", "seeds=8", "out=/tmp/x.json"])[1].seeds == tuple(range(8))
    with pytest.raises(ValueError, match="seeds=0 is not accepted"):
        script.candidate(["full", "seeds=0", "out=/tmp/x.json"])


def test_the_estimates_cpu_terms_are_timed_beside_reference_passes(one_torch_thread):
    """Each batch is drawn after a reference pass and reported in reference units too; a long
    measurement runs between reference passes, whose median comes back with its result."""
    from conftest import load_analysis

    script = load_analysis("experiments_gpu_estimate")
    dt = script.data_time(get_preset("smoke"), repeats=3)
    assert dt["data_s"] > 0 and dt["ref_s"] > 0 and dt["ratio"] > 0
    out, ref = script.beside_reference(lambda: "done", passes=1)
    assert out == "done" and ref > 0
