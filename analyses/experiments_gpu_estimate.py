"""An ESTIMATE of the GPU preset's wall time on one H100/H200 with 16 CPU cores, made on the CPU.

Nothing here runs on a GPU; every input that can be measured on the CPU is measured, and the
rest is an explicit, declared model of the GPU step (the constants below, not fitted to any GPU
run). It is the number the preset's size was chosen by; issue 13's GPU run measures the truth
(``hsgprof experiments gpu`` records its wall time per phase).

Measured here, per variant of the preset (one training step, batch and canvas of the preset):
* ``ops``: aten operators dispatched (each is at least one CUDA kernel launch in eager mode);
* ``syncs``: device→host synchronisations (``.item()``/``float()`` on tensors: scalars read back),
  and Hungarian matchings (scipy on the CPU: one assignment per image with objects and decoder
  layer, the auxiliary losses included; the batch's cost is copied to the host once per layer);
* ``gemm_flops``: matmul/conv FLOPs of the step (FlopCounterMode, 2 FLOPs per multiply-add);
* ``data_s``: CPU seconds (process time, i.e. one dedicated core) to draw one batch of scenes, with
  the preset's training curriculum as training draws it (median; with the prefetch thread it
  overlaps the step, so it bounds the step only when it is the longer of the two).
Step counts come from ``train_run`` itself (logging included), with the optimiser's multi-tensor
kernels as on a GPU.
Also measured: the CPU seconds to evaluate one run (AP on every set, per-object outputs), and to
write the results tables (from the quick set's own record, scaled by the number of runs).

Model (per worker process, P workers sharing one GPU, P = default_gpu_workers(GPU_HOST_CORES)):
    t_host  = ops · LAUNCH_S + syncs · SYNC_S + matchings · MATCH_S       (CPU side of a step)
    t_gpu   = ops · KERNEL_S + gemm_flops / GPU_FLOPS                     (GPU busy time of a step)
    t_step  = t_host + data_s          (the prefetch thread shares the process's GIL: counted serial)
    steps/s = min(P / t_step, 1 / t_gpu)                                  (GPU time-slices the workers)
    wall    = STARTUP_S + Σ_runs steps / (steps/s) + eval (P-parallel) + results
Usage: python analyses/experiments_gpu_estimate.py [PRESET] [out=FILE]
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# Declared constants of the GPU model (assumptions, stated once; typical published orders of magnitude
# for PyTorch eager on recent NVIDIA GPUs, not measurements of this project).
LAUNCH_S = 10e-6        # CPU cost per eager op (dispatch + launch)
KERNEL_S = 4e-6         # minimum GPU time per kernel of a tiny op
SYNC_S = 50e-6          # one device→host round trip
MATCH_S = 150e-6        # one scipy Hungarian matching of a small cost matrix, host side
GPU_FLOPS = 20e12       # sustained FLOP/s on small fp32 convs and matmuls (far below the H200's peak)
STARTUP_S = 45.0        # process start, imports, CUDA context per worker (parallel), eval-set generation
GPU_HOST_CORES = 16     # the GPU machine's CPU cores (workers: hsgprof.experiments.gpu.default_gpu_workers)


LOGGING_SYNCS = 8       # host reads train_run makes per step for its logs (losses, 4 gradient norms, clip)


def step_profile(cfg, variant: str) -> dict[str, Any]:
    """ops, device→host reads, matchings and GEMM FLOPs of one training step of ``variant``: the
    forward pass with matching and losses and the backward pass counted on the CPU with real
    tensors; the optimiser step counted with its multi-tensor kernels (what AdamW uses on a GPU;
    its step counters stay on the host, so their reads are not device syncs), once its state exists
    (the first step also creates the moments: counting it overstated every step); plus train_run's
    per-step log reads (``LOGGING_SYNCS``)."""
    import scipy.optimize
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    from hsgprof.experiments.train import RunSpec, build_run_model, training_batches

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = 0
            self.syncs = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops += 1
            if func is torch.ops.aten._local_scalar_dense.default:
                self.syncs += 1
            return func(*args, **(kwargs or {}))

    model = build_run_model(cfg, RunSpec(variant, 0)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.budget.lr, foreach=True)
    images, targets = training_batches(cfg, 0, 0, 1).get(0)              # as training draws it (curriculum too)
    real = scipy.optimize.linear_sum_assignment
    calls = {"n": 0}

    def counted(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    # The matcher imports the function from scipy.optimize when it runs (hsgdet.matching.match_flat),
    # so it is counted where it lives; patching a name in hsgdet.matching counted nothing (0 matchings).
    scipy.optimize.linear_sum_assignment = counted
    try:
        net, flops = Count(), FlopCounterMode(display=False)
        with net, flops:
            loss = model(images, targets)["loss"]
            loss.backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()), cfg.budget.grad_clip)
        opt.step()                                   # the first step also creates the state: not counted
        step = Count()
        with step:                                   # a step like every later one (same ops, any values)
            opt.step()
            opt.zero_grad(set_to_none=True)
    finally:
        scipy.optimize.linear_sum_assignment = real
    return {"variant": variant, "ops": net.ops + step.ops, "ops_forward_backward": net.ops, "ops_optimizer": step.ops,
            "syncs": net.syncs + LOGGING_SYNCS, "matchings": calls["n"], "gemm_flops": float(flops.get_total_flops())}


def data_time(cfg, repeats: int = 7) -> float:
    """CPU seconds (process time: what one dedicated core spends) to draw one batch (with the
    preset's training curriculum, as training draws it)."""
    from hsgprof.experiments.train import training_batches

    batches = training_batches(cfg, 0, 0, repeats)
    times = []
    for i in range(repeats):
        t = time.process_time()
        batches.get(i)
        times.append(time.process_time() - t)
    return float(np.median(times))


def eval_time(cfg, variant: str = "hybrid") -> float:
    """CPU seconds (process time) to evaluate one (untrained) run of ``variant`` on every evaluation set;
    on the GPU the network's share of it is faster, so this bounds it from above."""
    from hsgprof.experiments.evaluate import make_eval_sets
    from hsgprof.experiments.runner import evaluate_run
    from hsgprof.experiments.train import RunSpec, build_run_model

    sets = make_eval_sets(cfg)
    model = build_run_model(cfg, RunSpec(variant, 0))
    t = time.process_time()
    evaluate_run(model, RunSpec(variant, 0), sets, cfg)
    return time.process_time() - t


def estimate(profiles: dict[str, dict[str, Any]], data_s: float, runs: dict[str, int], steps: int,
             eval_s: float, results_s: float, workers: int | None = None) -> dict[str, Any]:
    """The model in the module docstring; every term reported."""
    from hsgprof.experiments.gpu import default_gpu_workers

    workers = workers or default_gpu_workers(GPU_HOST_CORES)
    per = {}
    total_train = 0.0
    for variant, n_runs in runs.items():
        p = profiles[variant]
        t_host = p["ops"] * LAUNCH_S + p["syncs"] * SYNC_S + p["matchings"] * MATCH_S
        t_gpu = p["ops"] * KERNEL_S + p["gemm_flops"] / GPU_FLOPS
        t_step = t_host + data_s
        rate = min(workers / t_step, 1.0 / t_gpu)                   # aggregate steps/s if all workers ran this variant
        seconds = n_runs * steps / rate
        total_train += seconds
        per[variant] = {"runs": n_runs, "t_host_s": t_host, "t_gpu_s": t_gpu, "t_step_s": t_step,
                        "bound": "gpu" if 1.0 / t_gpu < workers / t_step else ("host+data, data larger" if data_s > t_host
                                                                                     else "host+data, host larger"),
                        "aggregate_steps_per_s": rate, "train_s": seconds}
    n_runs = sum(runs.values())
    eval_total = eval_s * n_runs / workers
    wall = STARTUP_S + total_train + eval_total + results_s
    return {"per_variant": per, "train_s": total_train, "eval_s": eval_total, "results_s": results_s,
            "startup_s": STARTUP_S, "wall_s": wall, "workers": workers, "runs": n_runs, "steps": steps}


def main(argv: list[str]) -> int:
    import torch

    from hsgprof.experiments.config import get_preset
    from hsgprof.experiments.runner import run_specs
    from hsgprof.results import read_results, write_results

    torch.set_num_threads(1)
    preset = argv[0] if argv and "=" not in argv[0] else "full"
    opts = dict(a.split("=", 1) for a in argv if "=" in a)
    out = Path(opts.get("out", f"reports/results/pilots/experiments_gpu_estimate_{preset}.json"))
    cfg = get_preset(preset)
    specs = run_specs(cfg)
    runs: dict[str, int] = {}
    for s in specs:
        runs[s.variant] = runs.get(s.variant, 0) + 1
    profiles = {v: step_profile(cfg, v) for v in runs}
    d_s = data_time(cfg)
    e_s = eval_time(cfg)
    quick = read_results("reports/results/experiments-quick/experiments_summary.json")["meta"]
    q_results_s = quick["wall_s_this_invocation"] - (quick.get("training_invocation") or {}).get("wall_s_to_records", 0.0)
    results_s = max(q_results_s, 0.0) * len(specs) / max(quick["n_runs"], 1)
    est = estimate(profiles, d_s, runs, cfg.budget.steps, e_s, results_s)
    from hsgprof.experiments.fields import grid_fields

    fields = grid_fields(cfg, grow=False)            # the design check of this preset's (wider) grid-only model
    rows = [{**profiles[v], **est["per_variant"][v]} for v in runs]
    meta = {"ESTIMATE": "model of the GPU step from CPU-side measurements; not a GPU measurement",
            "constants": {"LOGGING_SYNCS": LOGGING_SYNCS, "LAUNCH_S": LAUNCH_S, "KERNEL_S": KERNEL_S, "SYNC_S": SYNC_S, "MATCH_S": MATCH_S,
                          "GPU_FLOPS": GPU_FLOPS, "STARTUP_S": STARTUP_S, "GPU_HOST_CORES": GPU_HOST_CORES},
            "data_s_per_batch": d_s, "eval_s_per_run_cpu": e_s, "results_s_quick_scaled": results_s,
            "results_s_quick": q_results_s, "estimate": {k: v for k, v in est.items() if k != "per_variant"},
            "fields": fields, "loadavg": list(os.getloadavg())}
    write_results(out, "experiments.gpu_estimate", rows, config=cfg.to_dict(), meta=meta,
                  command="python analyses/experiments_gpu_estimate.py " + " ".join(argv))
    for r in rows:
        print({k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()})
    print({k: (round(v, 1) if isinstance(v, float) else v) for k, v in meta["estimate"].items()})
    print(f"data {d_s * 1000:.1f} ms/batch, eval {e_s:.1f} s/run (CPU), results {results_s:.0f} s; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
