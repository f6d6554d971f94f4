"""``hsgprof gpu-suite`` without a GPU: a clear one-line exit, and the orchestration dry-run on the CPU.

The dry run replaces the three CUDA memory measurement functions by stand-ins (everything else is
the real code: planning, budgets, estimator jobs, result files, summary), and runs the timed steps
(eager latency, compiled latency, profile) on the CPU (hidden ``--device cpu``) with hsgdet-tiny
beside ResNet-18 and Dynamo's ``eager`` backend standing in for Inductor (tests/test_compiled.py
compiles with Inductor itself).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from hsgprof.cli import main
from hsgprof.gpu import estimates, suite as gpu_suite
from hsgprof.memory import cuda as cuda_mem
from hsgprof.memory.search import search_max_batch
from hsgprof.results import read_results

MiB = 1 << 20


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Real CPU compute here runs with one torch thread (conftest)."""


def test_exits_with_a_clear_message_without_cuda(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["gpu-suite", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("hsgprof gpu-suite: error:") and "needs a CUDA GPU" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_exits_cleanly_as_a_subprocess_without_cuda(tmp_path):
    env = {"CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin", "PYTHONPATH": "."}
    out = subprocess.run([sys.executable, "-m", "hsgprof.cli", "gpu-suite", "--out", str(tmp_path / "y")],
                         capture_output=True, text=True, timeout=300, env=env,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 2, out.stderr
    assert "needs a CUDA GPU" in out.stderr


@pytest.mark.parametrize("argv, message", [
    (["--sections", "memory,foo"], "--sections 'memory,foo' is not accepted"),
    (["--input", "8x8"], "--input '8x8' is not accepted"),
    (["--max-minutes", "0"], "--max-minutes 0"),
    (["--card", "A100"], "unknown card 'A100'"),
    (["--jobs", "-1"], "--jobs -1"),
])
def test_bad_arguments(capsys, tmp_path, argv, message):
    code = main(["gpu-suite", "--device", "cpu", "--out", str(tmp_path / "z"), *argv])
    assert code == 2
    assert message in capsys.readouterr().err


def _fake_measure(target, shape, mode, prec, opt, warmup=2, **kw):
    ph = {"forward": {"peak_allocated_bytes": 100 * MiB, "peak_reserved_bytes": 120 * MiB}}
    if mode == "train":
        ph["backward"] = {"peak_allocated_bytes": 110 * MiB, "peak_reserved_bytes": 130 * MiB}
        ph["optimizer"] = {"peak_allocated_bytes": 90 * MiB, "peak_reserved_bytes": 130 * MiB}
    return {"baseline_allocated_bytes": 50 * MiB, "baseline_reserved_bytes": 60 * MiB, "phases": ph,
            "peak_allocated_bytes": max(v["peak_allocated_bytes"] for v in ph.values()),
            "peak_reserved_bytes": max(v["peak_reserved_bytes"] for v in ph.values()),
            "end_allocated_bytes": 50 * MiB}


def _fake_snapshot(target, shape, path, **kw):
    with open(path, "wb") as fh:
        pickle.dump({"segments": [], "device_traces": [[{"action": "alloc"}]]}, fh)
    return {"path": str(path), "bytes": Path(path).stat().st_size, "events": 1}


def _fake_search(target, hw, mode, prec, limit, opt, cap, time_budget_s=None, **kw):
    return search_max_batch(lambda b: (b <= 3, {"peak_allocated_bytes": b * MiB, "error": "" if b <= 3 else "OOM"}),
                            cap, time_budget_s)


@pytest.fixture
def fake_cuda(monkeypatch):
    monkeypatch.setattr(cuda_mem, "measure_step_memory", _fake_measure)
    monkeypatch.setattr(cuda_mem, "record_snapshot", _fake_snapshot)
    monkeypatch.setattr(cuda_mem, "search_cuda_max_batch", _fake_search)


def _fake_estimate(target, shape, mode, precision, optimizer):
    phases = [{"phase": p, "peak_allocated_bytes": 105 * MiB, "peak_reserved_bytes": 125 * MiB}
              for p in (["forward", "backward", "optimizer"] if mode == "train" else ["forward"])]
    return {"peak_bytes": 105 * MiB, "peak_reserved_bytes": 125 * MiB, "static_bytes": 48 * MiB,
            "per_phase": phases, "params_bytes": 1, "grads_bytes": 1, "optimizer_bytes": 2, "saved_bytes": 3,
            "activations_bytes": 3, "estimator_seconds": 0.1}


def _fake_predict(target, hw, mode, precision, limit, optimizer, max_batch):
    return {"max_batch": 3, "first_failing_batch": 4, "exact": True, "capped": False, "stopped": "done",
            "trials": 2, "trial_batches": "3 4✗", "seconds": 0.1, "trial_list": [{"batch": 3, "ok": True}]}


def test_dry_run_writes_every_file(fake_cuda, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(estimates, "job_estimate", _fake_estimate)
    monkeypatch.setattr(estimates, "job_predict_max_batch", _fake_predict)
    out = tmp_path / "run"
    code = main(["gpu-suite", "--device", "cpu", "--out", str(out), "--quick", "--input", "64x96", "--jobs", "0",
                 "--max-minutes", "5", "--sections", "memory,snapshot,maxbatch"])
    printed = capsys.readouterr().out
    assert code == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["max_batch.json", "memory.json", "snapshot_hsgdet-l_inference_b1.pickle", "suite.log",
                     "summary.md"]
    assert len(files) <= 7 and all(p.is_file() for p in out.iterdir())
    mem = read_results(out / "memory.json", "memory-cuda")
    step = [r for r in mem["rows"] if r["phase"] == "step"]
    assert len(step) == 4
    ratios = {r["mode"]: r["allocated_ratio"] for r in step}
    assert ratios == {"inference": pytest.approx(105 / 100, abs=1e-4), "train": pytest.approx(105 / 110, abs=1e-4)}
    assert all(r["within_10pct_allocated"] for r in step)
    base = [r for r in mem["rows"] if r["phase"].startswith("baseline")]
    assert base[0]["unmodelled_persistent_bytes"] == 2 * MiB
    prov = mem["provenance"]
    for key in ("command", "commit", "date", "libraries", "device"):
        assert key in prov
    assert "gpu-suite" in prov["command"]
    assert mem["meta"]["device"]["usable_bytes"] == mem["meta"]["device"]["card_total_bytes"] - 512 * MiB
    mb = read_results(out / "max_batch.json", "max-batch-16gb")
    assert [r["measured_max_batch"] for r in mb["rows"]] == [3, 3, 3, 3]
    assert all(r["agree"] for r in mb["rows"])
    assert "Largest batch on an emulated 16 GB card" in printed
    assert "## Memory: predicted vs measured" in (out / "summary.md").read_text()


def test_a_failing_measurement_is_recorded_and_the_suite_goes_on(fake_cuda, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(estimates, "job_estimate", _fake_estimate)

    def boom(*a, **k):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(cuda_mem, "measure_step_memory", boom)
    out = tmp_path / "run"
    code = main(["gpu-suite", "--device", "cpu", "--out", str(out), "--quick", "--input", "64x96", "--jobs", "0",
                 "--sections", "memory,snapshot"])
    assert code == 0
    rows = read_results(out / "memory.json")["rows"]
    assert all("illegal memory access" in r["status"] for r in rows)
    assert (out / "snapshot_hsgdet-l_inference_b1.pickle").exists()
    assert "ERROR in memory" in (out / "suite.log").read_text()


def test_time_budget_skips_and_says_so(fake_cuda, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(estimates, "job_estimate", _fake_estimate)
    monkeypatch.setattr(estimates, "job_predict_max_batch", _fake_predict)
    t = iter(range(0, 10_000, 7))               # every clock read: +7 s
    monkeypatch.setattr(gpu_suite.time, "monotonic", lambda: float(next(t)))
    out = tmp_path / "run"
    code = main(["gpu-suite", "--device", "cpu", "--out", str(out), "--quick", "--input", "64x96", "--jobs", "0",
                 "--max-minutes", "1", "--sections", "memory,maxbatch"])
    assert code == 0
    log = (out / "suite.log").read_text()
    assert "time budget" in log
    text = (out / "summary.md").read_text()
    assert "steps:" in text


@pytest.mark.slow
def test_dry_run_with_real_estimates_and_latency(fake_cuda, tmp_path, capsys):
    """The suite's real targets eager and its real estimator jobs (one worker process), on the CPU.

    (The compiled steps' CPU dry run is test_timed_steps_dry_run: Inductor compiles of hsgdet-l-sized
    models take many minutes on a CPU.)"""
    out = tmp_path / "run"
    code = main(["gpu-suite", "--device", "cpu", "--out", str(out), "--quick", "--input", "64x96", "--jobs", "1",
                 "--max-minutes", "10", "--sections", "latency,memory,snapshot,maxbatch"])
    assert code == 0
    lat = read_results(out / "latency.json", "latency-cuda")
    kinds = {r["kind"] for r in lat["rows"]}
    assert {"end_to_end", "ratio", "component", "global_share"} <= kinds
    mem = read_results(out / "memory.json")
    assert all(r["predicted_peak_allocated_bytes"] for r in mem["rows"] if r["phase"] == "step")
    mb = read_results(out / "max_batch.json")
    assert all(r.get("predicted_max_batch") is not None for r in mb["rows"])
    json.loads(json.dumps(lat))


def test_summary_without_tabulate(fake_cuda, monkeypatch, tmp_path, capsys):
    """GPU hosts may lack ``tabulate`` (pandas' to_markdown): the summary falls back to plain tables."""
    import pandas as pd

    def no_tabulate(self, *a, **k):
        raise ImportError("Missing optional dependency 'tabulate'.")

    monkeypatch.setattr(pd.DataFrame, "to_markdown", no_tabulate)
    monkeypatch.setattr(estimates, "job_estimate", _fake_estimate)
    out = tmp_path / "run"
    code = main(["gpu-suite", "--device", "cpu", "--out", str(out), "--quick", "--input", "64x96", "--jobs", "0",
                 "--sections", "memory"])
    assert code == 0
    text = (out / "summary.md").read_text()
    assert "| target | mode |" in text and "|---|" in text


@pytest.fixture
def small_suite(monkeypatch):
    """The timed steps on the CPU: hsgdet-tiny beside ResNet-18 (the reference), Dynamo's 'eager' backend."""
    from hsgprof.gpu import latency_steps
    from hsgprof.timing import compiled

    monkeypatch.setattr(latency_steps, "suite_targets", lambda: ["hsgdet-tiny", "torchvision.models:resnet18"])
    monkeypatch.setattr(latency_steps, "REFERENCE", "torchvision.models:resnet18")
    # fp32 and batch 2 stand in for fp16 AMP and batch 8 (half precision crawls on a CPU)
    monkeypatch.setattr(latency_steps, "EAGER_CONFIGS", (("fp16-amp", 1), ("fp32", 1), ("fp32", 2)))
    monkeypatch.setattr(latency_steps, "COMPILED_CONFIGS", (("fp32", 1), ("fp32", 2)))
    monkeypatch.setattr(latency_steps, "PROFILE_CONFIG", ("fp32", 1))
    monkeypatch.setattr(compiled, "compile_module",
                        lambda model, mode: torch.compile(model, backend="eager", dynamic=False))
    yield
    compiled.reset_compiled()


def test_timed_steps_dry_run(small_suite, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["gpu-suite", "--device", "cpu", "--out", str(out), "--quick", "--input", "64x96", "--jobs", "0",
                 "--max-minutes", "20", "--compile-estimate", "1", "--sections", "latency,compiled,profile"])
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["latency.json", "profile.json", "suite.log", "summary.md"]
    lat = pd.DataFrame(read_results(out / "latency.json", "latency-cuda")["rows"])
    e2e = lat[lat.kind == "end_to_end"]
    assert set(e2e.path) == {"eager", "compiled:default"}
    assert {(p, b) for p, b in zip(e2e.precision, e2e.batch)} == {("fp16-amp", 1), ("fp32", 1), ("fp32", 2)}
    compiled = e2e[e2e.path == "compiled:default"]
    assert set(zip(compiled.precision, compiled.batch)) == {("fp32", 1), ("fp32", 2)}
    assert (compiled.compile_s > 0).all() and e2e.cpu_busy_fraction.notna().all()
    ratio = lat[(lat.kind == "ratio") & (lat.path == "compiled:default")]
    assert set(ratio.target) == {"hsgdet-tiny"}
    assert len(lat[lat.kind == "vs_eager"]) == 4 and lat[lat.kind == "compile"].outputs_equal.all()
    assert lat[lat.kind == "attention"].sdpa_text.notna().all()
    shares = lat[lat.kind == "global_share"].set_index("path")
    assert {"eager", "compiled:default,split"} <= set(shares.index)
    prof = pd.DataFrame(read_results(out / "profile.json", "profile-cuda")["rows"])
    assert (prof.kind == "peak").sum() == 1 and prof[prof.kind == "peak"].tflops.iloc[0] > 0
    paths = set(prof[prof.kind == "profile_component"].path)
    assert paths == {"eager", "compiled:default,split"}
    whole = prof[(prof.kind == "profile_total") & (prof.path == "compiled:default")]
    assert len(whole) == 2 and not whole.ranges.any()             # whole-graph compile: totals only
    text = (out / "summary.md").read_text()
    assert "Latency: eager and compiled" in text and "Per component" in text and "Compilation" in text


def test_compiled_steps_skip_what_does_not_fit(small_suite, tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["gpu-suite", "--device", "cpu", "--out", str(out), "--quick", "--input", "64x96", "--jobs", "0",
                 "--max-minutes", "5", "--compile-estimate", "100000", "--sections", "compiled"])
    assert code == 0
    rows = read_results(out / "latency.json", "latency-cuda")["rows"]
    assert rows and all(r["kind"] == "skipped" and r["status"] == "skipped: time budget" for r in rows)
    assert "a compile takes ~100000 s" in (out / "suite.log").read_text()


def test_compile_failure_is_recorded_and_skips_compiled_steps(small_suite, monkeypatch, tmp_path, capsys):
    from hsgprof.timing import compiled

    def broken(model, mode):
        raise RuntimeError("InductorError: no working C compiler")

    monkeypatch.setattr(compiled, "compile_module", broken)
    out = tmp_path / "run"
    assert main(["gpu-suite", "--device", "cpu", "--out", str(out), "--quick", "--input", "64x96", "--jobs", "0",
                 "--sections", "compiled"]) == 0
    rows = read_results(out / "latency.json", "latency-cuda")["rows"]
    assert all("torch.compile unavailable: RuntimeError: InductorError" in r["status"] for r in rows)
    assert "torch.compile unavailable" in (out / "summary.md").read_text()


def test_plan_orders_steps_by_importance():
    from hsgprof.gpu.suite import plan

    from hsgprof.gpu.latency_steps import EAGER_CONFIGS

    assert EAGER_CONFIGS[0] == ("fp16-amp", 1) and len(EAGER_CONFIGS) == 6
    labels = [s.label for s in plan(list(gpu_suite.SECTIONS), quick=False)]
    assert labels == ["latency", "compiled fp16-amp b1", "profile", "compiled fp16-amp b8", "compiled bf16 b1",
                      "compiled bf16 b8", "memory", "snapshot", "maxbatch"]
    assert [s.label for s in plan(["maxbatch", "compiled"], quick=True)] == ["compiled fp16-amp b1",
                                                                            "compiled fp16-amp b8", "maxbatch"]


def test_reference_presets_are_discovered():
    from hsgprof.adapters.hsgdet import presets
    from hsgprof.gpu.latency_steps import REFERENCE, suite_targets

    targets = suite_targets()
    assert targets[:2] == ["hsgdet-l", REFERENCE] and "hsgdet-l-grid" in targets
    assert {p for p in presets() if p.endswith("-ref")} <= set(targets)


def test_resume_runs_only_what_is_missing(small_suite, tmp_path, capsys):
    out = tmp_path / "run"
    base = ["gpu-suite", "--device", "cpu", "--out", str(out), "--quick", "--input", "64x96", "--jobs", "0",
            "--sections", "compiled"]
    assert main([*base, "--compile-estimate", "100000"]) == 0             # everything skipped: budget
    assert main([*base, "--compile-estimate", "1", "--resume"]) == 0
    rows = read_results(out / "latency.json", "latency-cuda")
    assert not [r for r in rows["rows"] if r["kind"] == "skipped"]          # the skip records were replaced
    e2e = [r for r in rows["rows"] if r["kind"] == "end_to_end" and r["path"] == "compiled:default"]
    assert {(r["precision"], r["batch"]) for r in e2e} == {("fp32", 1), ("fp32", 2)}
    assert len(rows["meta"]["earlier_runs"]) == 1
    assert main([*base, "--resume"]) == 0                                   # nothing left to do
    log = (out / "suite.log").read_text()
    assert log.count("already measured") == 2
    assert len(read_results(out / "latency.json")["rows"]) == len(rows["rows"])
