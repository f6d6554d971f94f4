"""Latency on the CPU: statistics, side-by-side ratios, per-component rows, FLOP shares, the CLI.

No timing is asserted (timings belong in benchmark scripts); the tests check structure and logic.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from hsgprof.adapters.hsgdet import COMPONENTS, GLOBAL_REASONING
from hsgprof.cli import main
from hsgprof.timing.latency import flop_shares, latency_rows, summarize

SHAPE = (1, 3, 64, 96)


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Real CPU compute here runs with one torch thread (conftest)."""


def test_summarize_median_and_iqr():
    s = summarize([0.001, 0.002, 0.003, 0.004, 0.100])
    assert s["median_ms"] == pytest.approx(3.0)
    assert s["q1_ms"] == pytest.approx(2.0) and s["q3_ms"] == pytest.approx(4.0)
    assert s["iqr_ms"] == pytest.approx(2.0) and s["n"] == 5
    assert np.isnan(summarize([])["median_ms"])


@pytest.fixture(scope="module")
def rows():
    return pd.DataFrame(latency_rows(["hsgdet-tiny", "torchvision.models:resnet18"],
                                     SHAPE, "fp32", "cpu", warmup=1, repeat=3, components=True,
                                     reference="torchvision.models:resnet18", global_components=GLOBAL_REASONING))


def test_end_to_end_and_ratio_rows(rows):
    e2e = rows[rows.kind == "end_to_end"]
    assert set(e2e.target) == {"hsgdet-tiny", "torchvision.models:resnet18"}
    assert (e2e.n == 3).all() and (e2e.median_ms > 0).all()
    ratio = rows[rows.kind == "ratio"].iloc[0]
    assert ratio.target == "hsgdet-tiny"
    assert ratio.ratio_median_of_rounds > 0 and ratio.ratio_of_medians > 0


def test_component_rows_and_global_share(rows):
    comp = rows[(rows.kind == "component") & (rows.target == "hsgdet-tiny")]
    assert set(comp.component) == {c.name for c in COMPONENTS.components}
    assert rows[(rows.kind == "component") & (rows.target != "hsgdet-tiny")].empty   # no component map
    gr = rows[rows.kind == "global_share"].iloc[0]
    members = comp[comp.component.isin(GLOBAL_REASONING)]
    assert gr.median_ms == pytest.approx(members.median_ms.sum())
    assert 0 < gr.time_share < 1 and 0 < gr.flops_share < 1
    assert gr.flops_share == pytest.approx(members.flops_share.sum())


def test_flop_shares_sum_to_at_most_total():
    flops, source = flop_shares("hsgdet-tiny", (1, 3, 128, 160), COMPONENTS)
    parts = sum(v for k, v in flops.items() if k != "Total")
    assert 0 < parts <= flops["Total"] * (1 + 1e-9)
    assert "2 FLOPs per MAC" in source
    # FLOPs scale with pixels for a conv net
    flops2, _ = flop_shares("hsgdet-tiny", (2, 3, 128, 160), COMPONENTS)
    assert flops2["P3 stage"] == pytest.approx(2 * flops["P3 stage"])


def test_cli_json(capsys):
    code = main(["latency", "hsgdet-tiny", "--input", "1x3x64x96", "--warmup", "1", "--repeat", "2", "--format", "json"])
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out)
    assert any(r["kind"] == "end_to_end" for r in doc)
    assert any(r["kind"] == "global_share" for r in doc)


def test_cli_markdown_with_reference(capsys):
    code = main(["latency", "hsgdet-tiny", "torchvision.models:resnet18", "--input", "1x3x64x96", "--warmup", "0",
                 "--repeat", "2", "--no-components"])
    out = capsys.readouterr().out
    assert code == 0
    assert "ratio to torchvision.models:resnet18" in out and "median_ms" in out


@pytest.mark.parametrize("argv, message", [
    (["--precision", "fp8"], "--precision 'fp8' is not accepted"),
    (["--device", "tpu"], "--device 'tpu' is not accepted"),
    (["--batch", "0"], "--batch 0 is not accepted"),
    (["--repeat", "0"], "--repeat 0"),
    (["--input", "16x16"], "rejects input 1x3x16x16"),
    (["--reference", "yolov8l-ref"], "--reference 'yolov8l-ref' is not one of the targets"),
    (["--compile", "fast"], "--compile 'fast' is not accepted"),
    (["--compile", "max-autotune"], "--compile max-autotune needs --device cuda"),
])
def test_cli_bad_input(capsys, argv, message):
    code = main(["latency", "hsgdet-tiny", *argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1


def test_cli_cuda_without_gpu(capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["latency", "hsgdet-tiny", "--input", "1x3x64x96", "--device", "cuda"])
    err = capsys.readouterr().err
    assert code == 2 and "CUDA is not available" in err


def test_yolov8l_ref_is_timed_per_component():
    """The YOLOv8-l rebuild has the grid path's components (what the GPU suite times beside HSG-Det)."""
    r = pd.DataFrame(latency_rows(["yolov8l-ref"], (1, 3, 64, 64), "fp32", "cpu", warmup=1, repeat=2,
                                  components=True, global_components=GLOBAL_REASONING))
    comp = r[r.kind == "component"]
    assert set(comp.component) == {"Stem", "P3 stage", "P4 stage", "P5 stage", "PAN path", "Dense head"}
    assert (comp.median_ms > 0).all()
    assert r[r.kind == "global_share"].empty                      # no global reasoning in a grid-only model


def test_channels_last_path_and_quiet_columns():
    r = pd.DataFrame(latency_rows(["hsgdet-tiny"], SHAPE, "fp32", "cpu", warmup=1, repeat=2, components=False,
                                  channels_last=True))
    e2e = r[r.kind == "end_to_end"]
    assert set(e2e.memory_format) == {"contiguous", "channels_last"} and set(e2e.path) == {"eager"}
    vs = r[r.kind == "vs_eager"]
    assert len(vs) == 1 and vs.iloc[0].memory_format == "channels_last" and vs.iloc[0].ratio_median_of_rounds > 0
    assert e2e.load_avg_1m.notna().all()
    assert ((e2e.cpu_busy_fraction > 0) & (e2e.cpu_busy_fraction <= 1)).all()     # the timing thread itself is busy
