"""CUDA checks: the estimate against measured peaks (within 10%), OOM-safe search, snapshot, CUDA timing.

Skipped without CUDA (``gpu`` marker, conftest). Run on a GPU host with
``PYTHONPATH=.:model python3 -m pytest -m gpu tests/test_gpu_memory.py -q``.
"""

from __future__ import annotations

import pickle

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: no CUDA device on this machine")]

MiB = 1 << 20
HW = (1080, 1920)


@pytest.mark.parametrize("mode, precision", [("inference", "fp32"), ("inference", "fp16-amp"),
                                             ("train", "fp32"), ("train", "fp16-amp")])
def test_estimate_within_10pct_of_cuda_peak_allocated(mode, precision):
    from hsgprof.memory import estimate_memory
    from hsgprof.memory.cuda import measure_step_memory

    shape = (1, 3, *HW)
    est = estimate_memory("hsgdet-l", shape, mode=mode, optimizer="adamw", precision=precision, device="cuda")
    meas = measure_step_memory("hsgdet-l", shape, mode, precision, "adamw", warmup=2)
    ratio = est.peak_allocated_bytes / meas["peak_allocated_bytes"]
    detail = (f"hsgdet-l {mode} {precision}: predicted {est.peak_allocated_bytes / MiB:.0f} MiB allocated "
              f"({est.peak_reserved_bytes / MiB:.0f} reserved), measured {meas['peak_allocated_bytes'] / MiB:.0f} "
              f"({meas['peak_reserved_bytes'] / MiB:.0f} reserved), baseline measured "
              f"{meas['baseline_allocated_bytes'] / MiB:.0f} vs predicted static {est.static_bytes / MiB:.0f}")
    print(detail)
    assert abs(ratio - 1) <= 0.10, detail
    for phase, m in meas["phases"].items():
        p = est.per_phase.set_index("phase").loc[phase, "peak_allocated_bytes"]
        print(f"  {phase}: predicted {p / MiB:.0f} MiB, measured {m['peak_allocated_bytes'] / MiB:.0f} MiB")


def test_measurement_structure_and_warmup():
    from hsgprof.memory.cuda import measure_step_memory

    m = measure_step_memory("hsgdet-tiny", (2, 3, 128, 160), "train", "fp16-amp", "adamw", warmup=2)
    assert set(m["phases"]) == {"forward", "backward", "optimizer"}
    assert m["peak_allocated_bytes"] >= m["baseline_allocated_bytes"] > 0
    assert m["peak_reserved_bytes"] >= m["peak_allocated_bytes"]
    assert m["optimizer_step_skipped"] is False


def test_max_batch_search_survives_oom_and_restores_the_process():
    from hsgprof.memory.cuda import search_cuda_max_batch

    limit = 384 * MiB                      # hsgdet-tiny inference at 1080x1920: ~90 MiB per image
    a = torch.randn(64, 64, device="cuda")
    (a @ a).sum().item()                   # cuBLAS workspace in place before the baseline
    del a
    torch.cuda.empty_cache()
    before = torch.cuda.memory_allocated()
    res = search_cuda_max_batch("hsgdet-tiny", HW, "inference", "fp32", limit, max_batch=64, time_budget_s=120)
    assert res.stopped == "done", res
    assert res.first_fail is not None, "the limit should have been hit"
    assert any(not t.ok for t in res.trials)
    for t in res.trials:
        if t.batch <= res.max_ok:
            assert t.ok                          # every batch reported as fitting ran to the end
        if not t.ok:
            assert "OutOfMemoryError" in t.error or "out of memory" in t.error
    assert all(t.info["peak_reserved_bytes"] <= limit + 2 * MiB for t in res.trials)
    # The process is usable, the limit is gone, nothing is left allocated.
    assert torch.cuda.memory_allocated() <= before + 4 * MiB
    big = torch.empty(2 * limit, dtype=torch.uint8, device="cuda")
    del big
    torch.cuda.empty_cache()


def test_predicted_max_batch_is_close_to_the_search():
    from hsgprof.memory.budget import predict_max_batch
    from hsgprof.memory.cuda import search_cuda_max_batch

    limit = 3 << 30                        # hsgdet-tiny training at 1080x1920: ~0.6 GiB per image
    meas = search_cuda_max_batch("hsgdet-tiny", HW, "train", "fp32", limit, max_batch=32, time_budget_s=120)
    pred, _ = predict_max_batch("hsgdet-tiny", HW, "train", "fp32", limit, "adamw", 32)
    print(f"hsgdet-tiny train fp32 at 1080x1920 under {limit / MiB:.0f} MiB: measured {meas.max_ok}, "
          f"predicted {pred.max_ok}")
    assert abs(pred.max_ok - meas.max_ok) <= max(1, 0.15 * meas.max_ok)


def test_snapshot_opens(tmp_path):
    from hsgprof.memory.cuda import record_snapshot

    path = tmp_path / "snap.pickle"
    info = record_snapshot("hsgdet-tiny", (1, 3, 256, 448), path)
    assert info["bytes"] == path.stat().st_size > 0
    snap = pickle.loads(path.read_bytes())
    assert "segments" in snap and "device_traces" in snap
    assert info["events"] > 0


def test_cuda_event_latency_rows():
    from hsgprof.adapters.hsgdet import GLOBAL_REASONING
    from hsgprof.timing.latency import latency_rows

    rows = latency_rows(["hsgdet-tiny", "hsgdet-l-grid"], (1, 3, 256, 448), "fp16-amp", "cuda", warmup=3, repeat=5,
                        reference="hsgdet-l-grid", global_components=GLOBAL_REASONING)
    kinds = {r["kind"] for r in rows}
    assert {"end_to_end", "ratio", "component", "global_share"} <= kinds
    assert all(r["median_ms"] > 0 for r in rows if r["kind"] == "end_to_end")


def test_context_bytes_is_measured():
    from hsgprof.memory.cuda import context_bytes

    torch.zeros(1, device="cuda")
    assert context_bytes() > 0


@pytest.mark.slow
def test_gpu_suite_quick_end_to_end(tmp_path):
    from hsgprof.cli import main
    from hsgprof.results import read_results

    out = tmp_path / "suite"
    assert main(["gpu-suite", "--quick", "--max-minutes", "3", "--input", "256x448", "--out", str(out),
                 "--jobs", "2"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"memory.json", "latency.json", "max_batch.json", "suite.log", "summary.md"} <= names
    assert read_results(out / "memory.json")["provenance"]["device"]["gpu"]
