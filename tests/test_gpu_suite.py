"""``hsgprof gpu-suite`` without a GPU: a clear one-line exit, and the orchestration dry-run on the CPU.

The dry run replaces the three CUDA measurement functions by stand-ins (everything else is the
real code: planning, budgets, estimator jobs, result files, summary), and times the latency
section on the CPU (hidden ``--device cpu``).
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from hsgprof.cli import main
from hsgprof.commands import gpu_suite
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
    monkeypatch.setattr(gpu_suite, "job_estimate", _fake_estimate)
    monkeypatch.setattr(gpu_suite, "job_predict_max_batch", _fake_predict)
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
    monkeypatch.setattr(gpu_suite, "job_estimate", _fake_estimate)

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
    monkeypatch.setattr(gpu_suite, "job_estimate", _fake_estimate)
    monkeypatch.setattr(gpu_suite, "job_predict_max_batch", _fake_predict)
    t = iter(range(0, 10_000, 7))               # every clock read: +7 s
    monkeypatch.setattr(gpu_suite.time, "monotonic", lambda: float(next(t)))
    out = tmp_path / "run"
    code = main(["gpu-suite", "--device", "cpu", "--out", str(out), "--quick", "--input", "64x96", "--jobs", "0",
                 "--max-minutes", "1", "--sections", "memory,maxbatch"])
    assert code == 0
    log = (out / "suite.log").read_text()
    assert "time budget" in log
    text = (out / "summary.md").read_text()
    assert "sections:" in text


@pytest.mark.slow
def test_dry_run_with_real_estimates_and_latency(fake_cuda, tmp_path, capsys):
    """The whole suite, real estimator jobs in one worker process, latency timed on the CPU."""
    out = tmp_path / "run"
    code = main(["gpu-suite", "--device", "cpu", "--out", str(out), "--quick", "--input", "64x96", "--jobs", "1",
                 "--max-minutes", "10"])
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
    monkeypatch.setattr(gpu_suite, "job_estimate", _fake_estimate)
    out = tmp_path / "run"
    code = main(["gpu-suite", "--device", "cpu", "--out", str(out), "--quick", "--input", "64x96", "--jobs", "0",
                 "--sections", "memory"])
    assert code == 0
    text = (out / "summary.md").read_text()
    assert "| target | mode |" in text and "|---|" in text
