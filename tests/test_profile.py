"""Per-component profiler attribution: the arithmetic on synthetic events, and real CPU profiles.

CUDA attribution (kernel time launched inside each component's range) is checked on hand-made
events; the CPU path (each range's duration) runs the real profiler on hsgdet-tiny and ResNet-18.
The compiled *split* path runs with Dynamo's ``eager`` backend (the hooks and ranges are Dynamo's
business, not Inductor's); tests/test_compiled.py covers Inductor itself.
"""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from hsgprof.adapters.hsgdet import COMPONENTS, GLOBAL_REASONING
from hsgprof.components import ComponentMap
from hsgprof.counting import count
from hsgprof.counting.fast import component_flops
from hsgprof.timing import compiled as C
from hsgprof.timing.hooks import RANGE_PREFIX, STEP_RANGE
from hsgprof.timing.peak import matmul_peak
from hsgprof.timing.profile import (OUTSIDE, Span, attribute, attribution_rows, median_step, profile_rows,
                                   sdpa_backends)

SHAPE = (1, 3, 64, 96)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Real CPU compute here runs with one torch thread (conftest)."""


def _span(name: str, start: float, end: float, device: float = 0.0, kernels: int = 0, thread: int = 1) -> Span:
    return Span(RANGE_PREFIX + name if name != "step" else STEP_RANGE, start, end, thread, device, kernels)


def test_cuda_attribution_sums_kernels_per_component_and_step():
    records = [
        _span("step", 0, 100, device=60.0, kernels=9), _span("A", 5, 20, device=10.0, kernels=3),
        _span("B", 25, 40, device=25.0, kernels=4), _span("A", 45, 50, device=5.0, kernels=1),
        _span("step", 200, 300, device=80.0, kernels=8), _span("A", 210, 220, device=30.0, kernels=4),
        _span("B", 230, 240, device=40.0, kernels=3),
        _span("A", 400, 410, device=99.0),                       # outside every step: ignored
        _span("B", 210, 220, device=99.0, thread=2),             # another thread: not this step's
    ]
    steps = attribute(records, cuda=True)
    assert len(steps) == 2
    first, second = steps
    assert first["step"] == pytest.approx(0.060) and first["A"] == pytest.approx(0.015)     # ms
    assert first["B"] == pytest.approx(0.025) and first[OUTSIDE] == pytest.approx(0.020)
    assert first["A kernels"] == 4 and first["A host"] == pytest.approx(0.020)
    assert second[OUTSIDE] == pytest.approx(0.010)
    for st in steps:                                             # components + outside = step, none negative
        parts = [v for k, v in st.items() if k not in ("step",) and not k.endswith((" host", " kernels"))]
        assert sum(parts) == pytest.approx(st["step"]) and min(parts) >= 0


def test_cpu_attribution_uses_range_durations():
    steps = attribute([_span("step", 0, 1000), _span("A", 100, 400), _span("B", 500, 900)], cuda=False)
    assert steps[0]["A"] == pytest.approx(0.3) and steps[0]["B"] == pytest.approx(0.4)
    assert steps[0][OUTSIDE] == pytest.approx(0.3)


def test_attribution_rows_give_tflops_and_fraction_of_peak():
    res = {"steps": [{"step": 2.0, "step host": 3.0, "step kernels": 10, "A": 1.0, "A host": 1.5, "A kernels": 4,
                      OUTSIDE: 1.0}], "calls": 1}
    rows = {r["component"]: r for r in attribution_rows(res, {"Total": 4e9, "A": 3e9}, peak_tflops=10.0, base={})}
    assert rows["end-to-end"]["achieved_tflops"] == pytest.approx(4e9 / 2e-3 / 1e12)
    assert rows["A"]["achieved_tflops"] == pytest.approx(3.0) and rows["A"]["fraction_of_peak"] == pytest.approx(0.3)
    assert rows["A"]["time_share"] == pytest.approx(0.5) and rows[OUTSIDE]["flops"] is None


def test_attribution_rows_are_the_median_step_and_add_up():
    """Part-by-part medians (A 2 + B 2 + rest 1.25) exceed the total's median (4.25): the median step adds up."""
    def step(a: float, b: float, out: float) -> dict[str, float]:
        return {"step": a + b + out, "A": a, "B": b, OUTSIDE: out}

    res = {"steps": [step(3.0, 3.0, 3.0), step(2.0, 0.5, 1.0), step(2.0, 2.0, 0.5), step(0.5, 2.0, 1.5)],
           "calls": 4}
    assert median_step(res["steps"]) == res["steps"][3]                       # totals 9, 3.5, 4.5, 4: lower median
    rows = {r["component"]: r["device_ms"] for r in attribution_rows(res, {}, None, base={})}
    assert rows == {"end-to-end": 4.0, "A": 0.5, "B": 2.0, OUTSIDE: 1.5}
    assert median_step(res["steps"][:3]) == res["steps"][2] and median_step([res["steps"][1]]) == res["steps"][1]


def _event(name: str, children=()):
    return SimpleNamespace(name=name, cpu_children=list(children))


def test_sdpa_backends_by_op_name():
    inner, bmm = _event("aten::_scaled_dot_product_flash_attention"), _event("aten::bmm")
    events = [_event("aten::_scaled_dot_product_flash_attention"),              # the profiler lists every event,
              _event("aten::_scaled_dot_product_flash_attention"),              # children included
              _event("aten::_scaled_dot_product_efficient_attention"),
              _event("aten::_native_multi_head_attention", [inner]), inner,
              _event("aten::_native_multi_head_attention", [bmm]), bmm,
              _event("aten::_scaled_dot_product_attention_math")]
    got = sdpa_backends(events, calls=1)
    assert got == {"efficient": 1, "flash": 3, "math (unfused)": 1, "native MHA (unfused)": 1}
    assert sdpa_backends(events, calls=2)["flash"] == 1.5


@pytest.mark.parametrize("target, shape", [("hsgdet-tiny", (1, 3, 128, 160)),
                                           ("torchvision.models:resnet18", (1, 3, 64, 64))])
def test_fast_component_flops_equal_the_referee(target, shape):
    """The FLOPs set beside times are the referee's GEMM FLOPs, component by component."""
    res = count(target, shape, backends="analytic")
    table = res.table("component").set_index("component")
    cmap = COMPONENTS if target.startswith("hsgdet") else ComponentMap.top_level(res.model)
    fast, source = component_flops(target, shape, cmap)
    assert "2 FLOPs per MAC" in source
    assert fast["Total"] == pytest.approx(table.loc["Total", "referee_gemm_flops"])
    for name in (c.name for c in cmap.present(res.model).components):
        assert fast.get(name, 0.0) == pytest.approx(table.loc[name, "referee_gemm_flops"]), name


def test_matmul_peak_is_measured():
    p = matmul_peak("cpu", "fp32", n=128, warmup=1, repeat=3)
    assert p["flops"] == 2 * 128 ** 3 and p["tflops"] > 0 and p["dtype"] == "float32" and p["repeat"] == 3
    assert matmul_peak("cpu", "bf16", n=64, warmup=0, repeat=1)["dtype"] == "bfloat16"


@pytest.fixture(scope="module")
def eager_profile():
    return pd.DataFrame(profile_rows(["hsgdet-tiny", "torchvision.models:resnet18"], SHAPE, "fp32", "cpu", calls=3))


def test_cpu_profile_every_component_and_sums(eager_profile):
    df = eager_profile
    peak = df[df.kind == "peak"].iloc[0]
    assert peak.tflops > 0
    tiny = df[df.target == "hsgdet-tiny"]
    comps = tiny[tiny.kind == "profile_component"]
    assert set(comps.component) == {c.name for c in COMPONENTS.components} | {OUTSIDE}
    total = tiny[tiny.kind == "profile_total"].iloc[0]
    inside = comps[comps.component != OUTSIDE]
    assert comps.device_ms.sum() == pytest.approx(total.device_ms)                 # one step's parts: they add up
    assert (inside.device_ms > 0).all() and (comps.device_ms >= -1e-9).all()
    assert (inside.achieved_tflops > 0).all()
    assert inside.fraction_of_peak.notna().all() and total.calls_profiled == 3 and bool(total.ranges)
    assert total.sdpa == {"flash (CPU kernel)": 5.0, "native MHA (unfused)": 1.0}
    resnet = df[(df.target == "torchvision.models:resnet18") & (df.kind == "profile_component")]
    assert {"conv1", "layer1", "layer4", "fc"} <= set(resnet.component)             # top-level modules


@pytest.fixture
def eager_backend(monkeypatch):
    """Dynamo with its 'eager' backend: graphs and graph breaks as under Inductor, in seconds."""
    monkeypatch.setattr(C, "compile_module",
                        lambda model, mode: torch.compile(model, backend="eager", dynamic=False))
    yield
    C.reset_compiled()


def test_ranges_survive_a_split_compile(eager_backend):
    rows = pd.DataFrame(profile_rows(["hsgdet-tiny"], SHAPE, "fp32", "cpu", compile="default", calls=2,
                                     global_components=GLOBAL_REASONING, warmup=1, repeat=2))
    split = rows[rows.path == "compiled:default,split"]
    prof = split[split.kind == "profile_component"]
    assert set(prof.component) == {c.name for c in COMPONENTS.components} | {OUTSIDE}
    total = split[split.kind == "profile_total"].iloc[0]
    assert total.graphs > len(COMPONENTS.components) and total.outputs_equal
    assert prof[prof.component != OUTSIDE].device_ms.sum() <= total.device_ms * (1 + 1e-9)
    share = split[split.kind == "global_share"].iloc[0]                 # the compiled global-reasoning share
    assert 0 < share.time_share < 1 and 0 < share.flops_share < 1
    clock = split[split.kind == "component"]
    assert share.median_ms == pytest.approx(clock[clock.component.isin(GLOBAL_REASONING)].median_ms.sum())
