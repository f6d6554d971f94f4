"""The theory experiments' CUDA path (``gpu`` marker: skipped without CUDA; run by ``hsgprof experiments gpu``).

What must hold on a GPU: every variant and control trains and evaluates on cuda from the same
CPU-drawn batches (prefetched), a checkpoint written on cuda reads back on the CPU, the trained
model's receptive field is measured on the GPU, and a run is reproducible on the same GPU within
the tolerance cuDNN's kernels allow (the README says which parts are bitwise).
"""

from __future__ import annotations

import pytest
import torch

from hsgprof.experiments.config import Budget, get_preset

pytestmark = pytest.mark.gpu

TINY = Budget(steps=8, batch_size=4, warmup_steps=2, grad_every=4, eval_every=4, checkpoint_every=4)


def tiny_config():
    return get_preset("smoke").replace(budget=TINY, n_val=8, n_occlusion=4, n_dense_per_bin=1, n_convergence=4,
                                       bootstrap=10)


def test_every_variant_and_control_trains_and_evaluates_on_cuda(tmp_path):
    from hsgprof.experiments.runner import eval_sets, run_one, run_specs

    cfg = tiny_config()
    built: dict = {}
    for spec in run_specs(cfg):
        if spec.tag.startswith("cap-"):
            continue
        rec = run_one(cfg, spec, eval_sets(cfg, spec, built), tmp_path, progress=False, device="cuda")
        losses = [r["loss"] for r in rec["log"]["train"]]
        assert len(losses) == TINY.steps and all(l == l for l in losses), spec.key     # finite, every step
        assert len(rec["objects"]["val"].meta) > 0


def test_cuda_checkpoint_reads_back_on_cpu_and_matches(tmp_path):
    from hsgprof.experiments.train import RunSpec, build_run_model, load_checkpoint, train_run

    cfg = tiny_config()
    model, _ = train_run(cfg, RunSpec("hybrid", 0), tmp_path, progress=False, device="cuda")
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    cpu = build_run_model(cfg, RunSpec("hybrid", 0))
    cpu.load_state_dict(state["model"])
    for (k, a), b in zip(model.state_dict().items(), cpu.state_dict().values()):
        assert torch.equal(a.cpu(), b), k


def test_same_run_twice_on_the_gpu_agrees(tmp_path):
    """Same GPU, same seed: losses agree to 1e-4 relative (cuDNN may pick non-deterministic kernels)."""
    from hsgprof.experiments.train import RunSpec, train_run

    cfg = tiny_config()
    _, a = train_run(cfg, RunSpec("grid-only", 1), tmp_path / "a", progress=False, device="cuda")
    _, b = train_run(cfg, RunSpec("grid-only", 1), tmp_path / "b", progress=False, device="cuda")
    la, lb = [r["loss"] for r in a["train"]], [r["loss"] for r in b["train"]]
    assert la == pytest.approx(lb, rel=1e-4)


def test_effective_field_on_cuda_matches_cpu():
    from hsgprof.adapters.hsgdet import rf_levels
    from hsgprof.adapters.hsgdet_experiments import build_model
    from hsgprof.receptive import fields

    torch.manual_seed(0)
    model = build_model("hsgdet-tiny", variant="grid-only")
    cpu = fields(model, rf_levels, (1, 3, 64, 256), samples=2, max_pixels=0)
    gpu = fields(model.cuda(), rf_levels, (1, 3, 64, 256), samples=2, max_pixels=0)
    for a, b in zip(cpu, gpu):
        assert a.theoretical_rf == b.theoretical_rf
        assert abs(a.effective_radius - b.effective_radius) <= 1.0


def test_gpu_command_writes_results_with_provenance(tmp_path):
    from hsgprof.experiments.gpu import run_gpu_preset
    from hsgprof.results import read_results

    import hsgprof.experiments.config as C

    C.PRESETS["gpu-test"] = tiny_config
    try:
        rec = run_gpu_preset(tmp_path / "experiments", "gpu-test", workers=2, run_tests=False,
                             command="pytest", cache_dir=tmp_path / "cache", log=lambda m: None)
    finally:
        del C.PRESETS["gpu-test"]
    assert rec["device"] == torch.cuda.get_device_name(0) and rec["cuda"] == torch.version.cuda
    doc = read_results(tmp_path / "experiments" / "experiments_summary.json", "experiments.summary")
    assert doc["provenance"]["device"].get("gpu")
    assert read_results(tmp_path / "experiments" / "experiments_gpu_run.json", "experiments.gpu_run")["rows"][0][
        "wall_s_total"] > 0
