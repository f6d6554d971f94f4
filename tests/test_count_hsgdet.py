"""HSG-Det's per-component tables: seed rows, both input modes, sums, shares, the referee check."""

from __future__ import annotations

import pytest

from hsgprof.adapters.hsgdet import COMPONENTS, GLOBAL_REASONING
from hsgprof.claims.seed import SEED_COMPONENT_PARAMS, SEED_FLOPS
from hsgprof.components import params_by_component
from hsgprof.counting import count, count_modes
from hsgprof.counting.tables import OUTSIDE


@pytest.fixture(scope="module")
def both_modes():
    return count_modes("hsgdet-l", backends="analytic,fcm,thop")


def test_rows_are_the_seed_components_then_groups_then_total(both_modes):
    for mode, res in both_modes.items():
        t = res.table("component")
        comps = [c.name for c in COMPONENTS.components]
        assert list(t.component[: len(comps)]) == comps
        assert list(t.component[t.kind == "group"]) == ["Backbone", "Neck", "Head"]
        assert t.component.iloc[-1] == "Total"
        assert (t["mode"] == mode).all()


def test_params_and_seed_columns_come_from_the_model_and_the_claims(both_modes):
    res = both_modes["native"]
    t = res.table("component").set_index("component")
    expected = params_by_component(res.model, COMPONENTS).set_index("component").params
    for name in SEED_COMPONENT_PARAMS:
        assert t.loc[name, "params"] == expected[name]
        assert t.loc[name, "seed_params"] == SEED_COMPONENT_PARAMS[name]
        assert t.loc[name, "params_delta_pct"] == pytest.approx(
            (expected[name] - SEED_COMPONENT_PARAMS[name]) / SEED_COMPONENT_PARAMS[name] * 100)
    assert t.loc["Total", "seed_flops"] == SEED_FLOPS["total_gflops"] * 1e9


def test_component_flops_add_up_to_the_total_for_every_backend(both_modes):
    for res in both_modes.values():
        t = res.table("component")
        comps = t[t.kind == "component"]
        total = t[t.kind == "total"].iloc[0]
        for col in ("referee_gemm_flops", "referee_other_flops", "fcm_flops", "thop_flops"):
            assert comps[col].sum() == pytest.approx(total[col], rel=1e-9), col
        groups = t[t.kind == "group"].set_index("component")
        for g in ("Backbone", "Neck", "Head"):
            assert groups.loc[g, "referee_gemm_flops"] == pytest.approx(
                comps[comps.group == g].referee_gemm_flops.sum())
        assert total.referee_gemm_flops == res.flops == 2 * res.macs
        assert total.share == pytest.approx(1.0)


def test_referee_agrees_with_flopcountermode_op_by_op_in_both_modes(both_modes):
    for res in both_modes.values():
        assert res.referee.device == "meta"
        assert res.check["status"] == "agree", res.check
        assert res.check["fcm_run"]["status"] == "agree", res.check["fcm_run"]["differences"][:3]
        assert res.backends["fcm"].flops == res.flops


def test_padded_mode_feeds_1088_rows_and_costs_more(both_modes):
    native, padded = both_modes["native"], both_modes["padded"]
    assert native.network_input[-2:] == (1080, 1920) and padded.network_input[-2:] == (1088, 1920)
    assert padded.flops > native.flops and padded.params == native.params


def test_global_reasoning_share_is_the_sum_of_its_components(both_modes):
    res = both_modes["native"]
    t = res.table("component").set_index("component")
    share = t.loc[list(GLOBAL_REASONING), "referee_gemm_flops"].sum() / t.loc["Total", "referee_gemm_flops"]
    assert res.global_share["share"] == pytest.approx(share)
    assert 0 < share < 1


def test_op_table_explains_each_component_by_family(both_modes):
    res = both_modes["native"]
    ops = res.table("op")
    assert set(ops.component) <= {c.name for c in COMPONENTS.components} | {OUTSIDE}
    conv = ops[(ops.component == "P3 stage") & (ops.family == "conv")].iloc[0]
    assert conv.referee_gemm_flops == conv.fcm_flops == conv.thop_flops
    assert "convolution" in conv.referee_ops
    assert ops.referee_gemm_flops.sum() == pytest.approx(res.flops)


def test_module_table_depth_and_variants():
    res = count("hsgdet-l-grid", "640x640", backends="analytic")
    t = res.table("module", depth=1)
    assert set(t.depth) == {0, 1}
    assert t[t.path == "(model)"].referee_gemm_flops.iloc[0] == res.flops
    comps = res.table("component")
    assert "Sparse head" not in set(comps.component) and "Dense head" in set(comps.component)
    assert res.global_share["share"] == 0.0                 # grid-only: no global block, tokens or queries
