"""The compiled inference path on the CPU: torch.compile (Inductor) outputs equal eager's, compile facts recorded.

Two real compiles (hsgdet-tiny at 64×96, torchvision's ResNet-18 at 64×64; Inductor's C++ backend),
each done once per module and shared by the tests. No timing is asserted: the machine is shared.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from hsgprof.cli import main
from hsgprof.errors import HsgprofError
from hsgprof.timing import compiled as C
from hsgprof.timing.clock import base_labels
from hsgprof.timing.latency import attention_rows, time_runnables
from hsgprof.timing.runnable import prepare

TINY = (1, 3, 64, 96)
RESNET = "torchvision.models:resnet18"


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Real CPU compute here runs with one torch thread (conftest)."""


@pytest.fixture(scope="module")
def tiny():
    eager = prepare("hsgdet-tiny", TINY, "fp32", "cpu")
    comp = prepare("hsgdet-tiny", TINY, "fp32", "cpu", compile="default")
    yield eager, comp
    C.reset_compiled()


@pytest.fixture(scope="module")
def resnet():
    comp = prepare(RESNET, (1, 3, 64, 64), "fp32", "cpu", compile="default")
    yield comp
    C.reset_compiled()


@pytest.mark.parametrize("mode, device, message", [
    ("fast", "cpu", "--compile 'fast' is not accepted; choose one of none, default, reduce-overhead, max-autotune"),
    ("reduce-overhead", "cpu", "--compile reduce-overhead needs --device cuda"),
    ("max-autotune", "cpu", "--compile max-autotune needs --device cuda"),
])
def test_bad_modes_are_one_line_errors(mode, device, message):
    with pytest.raises(HsgprofError, match=message.replace("(", r"\(").replace(")", r"\)")):
        C.check_compile_mode(mode, device)
    C.check_compile_mode("default", "cpu")
    C.check_compile_mode("none", "cpu")


def test_compare_outputs_judges_each_tensor_against_its_scale():
    a = {"x": torch.tensor([1.0, -10.0]), "nested": [torch.tensor([2.0]), torch.tensor([3], dtype=torch.long)]}
    close = {"x": torch.tensor([1.0, -10.0 + 5e-4]), "nested": [torch.tensor([2.0]), torch.tensor([3])]}
    rows = {r["output"]: r for r in C.compare_outputs(a, close, "fp32")}
    assert set(rows) == {"x", "nested.0", "nested.1"}
    assert rows["x"]["max_abs_diff"] == pytest.approx(5e-4, rel=1e-3) and rows["x"]["max_abs_eager"] == 10.0
    assert rows["x"]["rel_diff"] == pytest.approx(5e-5, rel=1e-3) and rows["x"]["ok"]     # 5e-5 <= 1e-4
    assert rows["nested.1"]["ok"] and "exactly" in rows["nested.1"]["note"]
    far = {"x": torch.tensor([1.0, -10.01]), "nested": [torch.tensor([2.0]), torch.tensor([4])]}
    rows = {r["output"]: r for r in C.compare_outputs(a, far, "fp32")}
    assert not rows["x"]["ok"] and not rows["nested.1"]["ok"]
    assert {r["output"]: r for r in C.compare_outputs(a, far, "bf16")}["x"]["ok"]          # 1e-3 <= 5e-2
    bad = C.compare_outputs({"x": torch.zeros(2)}, {"x": torch.zeros(3), "y": torch.zeros(1)}, "fp32")
    assert [r["ok"] for r in bad] == [False, False]
    assert "shapes differ" in bad[0]["note"] and "missing" in bad[1]["note"]
    nan = C.compare_outputs({"x": torch.ones(2)}, {"x": torch.tensor([1.0, float("nan")])}, "fp32")
    assert not nan[0]["ok"]


def test_hsgdet_tiny_compiled_equals_eager(tiny):
    eager, comp = tiny
    info = comp.compile_info
    assert comp.path == "compiled:default" and eager.path == "eager"
    assert info["graphs"] >= 1 and info["compile_s"] > 0 and len(info["warm_s"]) == 2
    assert info["compiled_regions"] >= 2                  # before and after the input check's graph break
    # HSG-Det's forward checks its input for NaN/inf: a data-dependent branch, so at least one break
    assert info["graph_breaks"] >= 1
    assert {r["output"] for r in info["outputs"]} == {"dense_dist", "dense_logits", "sparse_logits", "sparse_boxes"}
    assert info["outputs_equal"], info["outputs"]
    assert all(r["rel_diff"] <= C.TOLERANCE["fp32"] for r in info["outputs"])
    # an independent check on fresh calls of both paths
    for name, t in C.output_leaves(eager()):
        got = dict(C.output_leaves(comp()))[name]
        torch.testing.assert_close(got, t, rtol=0, atol=C.TOLERANCE["fp32"] * float(t.abs().max()))


def test_resnet18_compiled_equals_eager(resnet):
    info = resnet.compile_info
    assert info["graphs"] == 1 and info["graph_breaks"] == 0 and info["compiled_regions"] == 1
    assert info["outputs_equal"], info["outputs"]
    assert [r["output"] for r in info["outputs"]] == ["output"]


def test_eager_and_compiled_timed_side_by_side(tiny):
    eager, comp = tiny
    rows = pd.DataFrame(time_runnables([eager, comp], warmup=1, repeat=3, time_budget_s=None, reference=None))
    e2e = rows[rows.kind == "end_to_end"].set_index("path")
    assert set(e2e.index) == {"eager", "compiled:default"} and (e2e.n == 3).all()
    assert pd.isna(e2e.loc["eager", "compile_s"]) and e2e.loc["compiled:default", "compile_s"] > 0
    assert {"load_avg_1m", "cpu_busy_fraction"} <= set(rows.columns)
    vs = rows[rows.kind == "vs_eager"].iloc[0]
    assert vs.path == "compiled:default" and vs.ratio_median_of_rounds > 0
    comp_row = rows[rows.kind == "compile"].iloc[0]
    assert comp_row.outputs_equal and comp_row.graphs_compiled_while_timing == 0     # no recompilation while timed


def test_attention_backend_is_read_from_the_profiler(tiny):
    eager, comp = tiny
    rows = {r["path"]: r for r in attention_rows([eager, comp], base_labels(TINY, "fp32", torch.device("cpu")))}
    # hsgdet-tiny: global block 1 + token fusion 1 + 2 decoder layers x 2 = 6 attention calls per forward;
    # eager's token fusion takes nn.MultiheadAttention's fast path, which computes attention unfused
    assert sum(rows["compiled:default"]["sdpa"].values()) == 6
    assert rows["compiled:default"]["sdpa"].get("flash (CPU kernel)") == 6
    assert sum(rows["eager"]["sdpa"].values()) == 6


def test_cli_compile_default_on_cpu(capsys):
    """A second compile of an identical model in the process reuses Dynamo's graph: still compiled."""
    code = main(["latency", "hsgdet-tiny", "--input", "1x3x64x96", "--warmup", "1", "--repeat", "2",
                 "--compile", "default", "--no-components"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "compiled:default" in out and "compile_s" in out and "outputs_equal" in out
    assert "ratio to eager" in out


def test_cli_refuses_cuda_graphs_on_cpu(capsys, tmp_path):
    out = tmp_path / "lat.json"
    code = main(["latency", "hsgdet-tiny", "--input", "1x3x64x96", "--compile", "reduce-overhead", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "--compile reduce-overhead needs --device cuda" in err and err.count("\n") == 1
    assert not out.exists()
