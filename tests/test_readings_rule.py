"""The declared primary-reading rule, on facts given by hand (no measurement enters these tests)."""

import pytest

from hsgdet.config import PRESETS
from hsgprof.claims.readings import FAMILIES, PREMISES, READINGS, choose_primary, premise_scores, reading
from hsgprof.errors import HsgprofError

SEED_PLAN = (64, 256, 512, 1024)


def _facts(channels=SEED_PLAN, gflops=110.0, depths="l"):
    return {"reference_channels": channels, "grid_flops_640": gflops * 1e9, "depths_match": depths}


def test_premise_scores():
    s = premise_scores(_facts())
    assert s == {"channel_plan": 1.0, "base_flops_640": 1.0, "yolo_l_scale": 1.0, "yolo_m_csp": 0.0}
    assert premise_scores(_facts(channels=(64, 256, 512, 512)))["channel_plan"] == 0.75
    assert premise_scores(_facts(gflops=220.0))["base_flops_640"] == pytest.approx(0.0)
    assert premise_scores(_facts(gflops=55.0))["base_flops_640"] == pytest.approx(0.0)
    assert premise_scores(_facts(gflops=440.0))["base_flops_640"] == 0.0
    assert premise_scores(_facts(gflops=110 * 2 ** 0.5))["base_flops_640"] == pytest.approx(0.5)
    m = premise_scores(_facts(depths="m"))
    assert (m["yolo_l_scale"], m["yolo_m_csp"]) == (0.0, 1.0)
    assert set(s) == {p.key for p in PREMISES}


def test_choose_primary_adds_equal_weights_and_breaks_ties_as_declared():
    a = premise_scores(_facts(channels=(64, 256, 512, 512), gflops=200))     # 0.75 + 0.14 + 1
    b = premise_scores(_facts(gflops=150))                                  # 1 + 0.55 + 1
    assert choose_primary({"a": a, "b": b}) == "b"
    # equal totals: the higher base-FLOPs score wins, whatever the names
    c = {"channel_plan": 1.0, "base_flops_640": 0.5, "yolo_l_scale": 1.0, "yolo_m_csp": 0.0}
    d = {"channel_plan": 0.5, "base_flops_640": 1.0, "yolo_l_scale": 1.0, "yolo_m_csp": 0.0}
    assert choose_primary({"c": c, "d": d}) == "d"
    # equal totals and base FLOPs: the channel plan, then the name
    e = {"channel_plan": 1.0, "base_flops_640": 0.5, "yolo_l_scale": 0.0, "yolo_m_csp": 1.0}
    f = {"channel_plan": 1.0, "base_flops_640": 0.5, "yolo_l_scale": 1.0, "yolo_m_csp": 0.0}
    assert choose_primary({"f": f, "e": e}) == "e"
    with pytest.raises(ValueError):
        choose_primary({})


def test_bad_facts_are_refused():
    with pytest.raises(ValueError, match="four widths"):
        premise_scores(_facts(channels=(64, 256)))
    with pytest.raises(ValueError, match="grid_flops_640"):
        premise_scores(_facts(gflops=0))


def test_readings_name_existing_presets():
    for r in READINGS.values():
        assert r.preset in PRESETS and r.reference in PRESETS and r.family in FAMILIES
    for refs in FAMILIES.values():
        assert all(ref in PRESETS for ref in refs.values())
    with pytest.raises(HsgprofError, match="unknown reading 'hsgdet-xl'"):
        reading("hsgdet-xl")
