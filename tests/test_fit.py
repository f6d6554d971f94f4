"""Budget fit: the cached component-wise count equals the referee's whole-model count; the answer's logic."""

import pandas as pd
import pytest

from hsgprof import fit
from hsgprof.cli import main
from hsgprof.counting import count
from hsgprof.counting.cache import ComponentCache
from hsgprof.errors import HsgprofError

SMALL = (1, 3, 256, 320)
CONFIGS = [{"family": "v8", "csp_block": "c2f", "depth_mult": 0.33, "neck_depth": 1, "dense_head": "decoupled",
            "decoder_ffn": 256, "global_dim": 128, "width_mult": 0.5},
           {"family": "v5", "csp_block": "c3", "depth_mult": 0.33, "neck_depth": 1, "dense_head": "anchor",
            "decoder_ffn": 1024, "global_dim": 256, "width_mult": 0.5}]


@pytest.mark.parametrize("config", CONFIGS)
def test_cached_component_count_equals_the_whole_model_referee(config):
    row = fit.evaluate(config, input_shape=SMALL)
    ref = count(fit.BASE, SMALL, "native", "analytic", **fit.overrides(config))
    assert row["params"] == ref.params
    assert row["flops"] == ref.flops
    assert row["backbone_params"] + row["neck_params"] + row["head_params"] == ref.params


def test_the_cache_recounts_only_what_changed():
    cache = ComponentCache()
    fit.evaluate(CONFIGS[0], cache, input_shape=SMALL)
    first = cache.misses
    fit.evaluate(CONFIGS[0], cache, input_shape=SMALL)
    assert cache.misses == first                                     # everything recalled
    fit.evaluate({**CONFIGS[0], "decoder_ffn": 2048}, cache, input_shape=SMALL)
    assert cache.misses == first + 1                                 # only the sparse head is new


def _row(params_m, gflops, width=1.0, head="decoupled"):
    p, f = params_m * 1e6, gflops * 1e9
    pd_, fd = p / fit.PARAMS_BUDGET - 1, f / fit.FLOPS_BUDGET - 1
    return {**CONFIGS[0], "width_mult": width, "dense_head": head, "params": p, "flops": f, "params_dev": pd_,
            "flops_dev": fd, "params_ok": abs(pd_) <= 0.05, "flops_ok": abs(fd) <= 0.05,
            "both_ok": abs(pd_) <= 0.05 and abs(fd) <= 0.05, "distance": max(abs(pd_), abs(fd)),
            "anchor_free": head == "decoupled", "seed_channels": width == 1.0}


def test_summary_answers_with_the_declared_tolerance():
    df = pd.DataFrame([_row(38.5, 600), _row(40.0, 560, width=0.75), _row(39.0, 575, head="anchor")])
    s = fit.summary(df)
    assert s["seed_plan_anchor_free"]["meet_both"] == 0              # 600 G is +5.3%
    assert s["seed_plan_any_head"]["meet_both"] == 1
    assert s["free_plan_anchor_free"]["meet_both"] == 1
    assert s["answer"].startswith("no: 0 configuration(s)")


def test_pareto_keeps_the_points_no_other_beats_with_fewer_params_and_more_flops():
    df = pd.DataFrame({"params": [1, 2, 3, 2.5, 1.5], "flops": [1, 3, 5, 2, 3]})
    # (2.5, 2) is beaten by (2, 3); (2, 3) by (1.5, 3); the rest are on the front
    assert fit.pareto(df)[["params", "flops"]].values.tolist() == [[1, 1], [1.5, 3], [3, 5]]


def test_bad_fit_input_is_refused(capsys):
    with pytest.raises(HsgprofError, match="unknown fit field"):
        fit.overrides({"depth": 3})
    with pytest.raises(HsgprofError, match="family='v9'"):
        fit.overrides({"family": "v9"})
    assert main(["fit", "--space", "huge"]) == 2
    assert "--space 'huge' is not accepted" in capsys.readouterr().err
    assert main(["fit", "--top", "0"]) == 2


def test_pareto_figure_marks_the_seed_and_the_readings():
    df = pd.DataFrame([_row(38.5, 600), _row(40.0, 560, width=0.75)])
    readings = pd.DataFrame([{"reading": "hsgdet-l-v5", "params": 62e6, "flops": 700e9}])
    fig = fit.pareto_figure(df, readings)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "hsgdet-l-v5" in texts
    assert any("seed" in t.get_text() for t in fig.axes[0].get_legend().get_texts())


def test_chunks_keep_a_backbone_in_one_worker_and_lose_nothing():
    configs = list(fit.configurations(fit.SPACES["tiny"]))
    chunks = fit._chunks(configs, 3)
    assert sorted(map(id, (c for ch in chunks for c in ch))) == sorted(map(id, configs))
    where = {}
    for i, ch in enumerate(chunks):
        for c in ch:
            key = (c["family"], c["csp_block"], c["depth_mult"], c["width_mult"])
            assert where.setdefault(key, i) == i
