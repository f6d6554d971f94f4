"""Sweeps, forward/backward counts, the seed audit and the analysis entry point."""

from __future__ import annotations

import pytest
import torch

from hsgprof.claims.seed import SEED_DECODER, SEED_FLOPS
from hsgprof.components import param_count
from hsgprof.counting import count, count_modes
from hsgprof.counting.audit import seed_audit
from hsgprof.counting.sweep import count_step, sweep_config, sweep_inputs
from hsgprof.results import read_results
from hsgprof.targets import load_target, output_loss

from conftest import load_analysis


def _analysis():
    return load_analysis("count_hsgdet")


def test_sweeps_grow_with_what_they_sweep():
    rows = sweep_inputs("hsgdet-tiny", ["64x64", "128x128", "128x256"], modes=("native", "padded"))
    native = [r for r in rows if r["mode"] == "native"]
    assert [r["flops"] for r in native] == sorted(r["flops"] for r in native)
    assert all(r["check"] == "agree" for r in rows) and all(0 < r["global_share"] < 1 for r in rows)
    rows = sweep_config("hsgdet-tiny", "num_queries", [10, 20, 40], "128x128")
    assert [r["flops"] for r in rows] == sorted(r["flops"] for r in rows)
    assert rows[0]["Sparse head flops"] < rows[-1]["Sparse head flops"]
    assert rows[0]["Global block flops"] == rows[-1]["Global block flops"]      # queries do not touch it


def test_backward_is_measured_by_both_counters_and_they_agree():
    from hsgdet.detector import flat_raw

    def network_loss(model, x):
        xp, _ = model.preprocess(x)
        return output_loss(flat_raw(model.forward_raw(xp)))

    model = load_target("hsgdet-tiny", device="meta").model.train()
    r = count_step(model, network_loss, torch.empty(2, 3, 96, 128, device="meta"))
    assert r["check"] == "agree" and not r["unknown_ops"]
    assert r["forward_flops"] == r["fcm_forward_flops"]
    assert r["backward_flops"] == r["fcm_backward_flops"] > r["forward_flops"]
    assert model.training                                   # count_step leaves the mode as it found it


def test_seed_audit_recomputes_the_seed_and_measures_the_model():
    modes = count_modes("hsgdet-l", backends="analytic")
    audit = seed_audit(modes["native"], modes["padded"], count("hsgdet-l", "640x640", backends="analytic"),
                       count("yolov8l-ref", "640x640", backends="analytic"),
                       count("yolov8l-ref", backends="analytic")).set_index("claim")
    d, n, k = SEED_DECODER["d_model"], SEED_DECODER["num_queries"], SEED_FLOPS["num_tokens"]
    assert audit.loc["Decoder params 6 × 4d²", "recomputed"] == 6 * 4 * d ** 2
    assert audit.loc["Decoder params 6 × 4d²", "measured"] == param_count(
        modes["native"].model.get_submodule("head.sparse.layers"))
    assert audit.loc["Token attention O(K²d)", "recomputed"] == k ** 2 * d
    assert audit.loc["Token attention O(K²d)", "measured"] == 2 * k ** 2 * d      # QKᵀ and PV, one layer
    assert audit.loc["Query decoder O(NKd)", "measured"] == n * k * d             # one cross-attention QKᵀ
    assert audit.loc["Scaling factor 640² → 1080×1920", "recomputed"] == pytest.approx(1920 / 640 * 1080 / 640)
    assert audit.loc["Total FLOPs @1080p (native)", "measured"] == modes["native"].flops
    assert audit.reason.str.len().min() > 10 and audit.seed_value.notna().all()


@pytest.mark.slow
def test_quick_analysis_writes_every_result_with_provenance(tmp_path):
    paths = _analysis().run(quick=True, out_dir=tmp_path, figures=True)
    for key, kind in (("components", "count.components"), ("sweeps", "count.sweeps"), ("audit", "count.seed_audit"),
                      ("calibration", "count.calibration"), ("validation", "count.validation"),
                      ("training", "count.training"), ("backends", "count.backends"), ("ops", "count.ops")):
        doc = read_results(paths[key], kind)
        assert doc["rows"] and doc["provenance"]["config"]["quick"] is True
    assert (tmp_path / "figures" / "count_flops_vs_resolution.pdf").exists()
    valid = read_results(paths["validation"])["rows"]
    assert all(abs(r["delta_pct"]) < 1 for r in valid)


@pytest.mark.slow
def test_full_resolution_sweep_up_to_4k_on_meta():
    rows = sweep_inputs("hsgdet-l", ["640x640", "720x1280", "1080x1920", "1440x2560", "2160x3840"],
                        modes=("native", "padded"), backends="analytic,fcm")
    assert all(r["check"] == "agree" and r["fcm_flops"] == r["flops"] for r in rows)
    for mode in ("native", "padded"):
        flops = [r["flops"] for r in rows if r["mode"] == mode]
        assert flops == sorted(flops)
