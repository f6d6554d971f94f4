"""An ESTIMATE of the GPU preset's wall time on one H100/H200 with 16 CPU cores, made on the CPU.

Nothing here runs on a GPU; every input that can be measured on the CPU is measured, and the
rest is an explicit, declared model of the GPU step (the constants below, not fitted to any GPU
run). It is the number the preset's size was chosen by; issue 13's GPU run measures the truth
(``hsgprof experiments gpu`` records its wall time per phase).

Measured here, per variant of the preset (training steps at the batch and canvas of the preset):
* ``ops``: aten operators dispatched (each is at least one CUDA kernel launch in eager mode);
* ``syncs``: device→host synchronisations (``.item()``/``float()`` on tensors: scalars read back,
  the step's logged losses and gradient norms included; the optimiser's host-side step counters
  not), and Hungarian matchings (scipy on the CPU: one assignment per image with objects and
  decoder layer, the auxiliary losses included; the batch's cost is copied to the host once per layer);
* ``gemm_flops``: matmul/conv FLOPs of the step (FlopCounterMode, 2 FLOPs per multiply-add);
* ``data_s``: CPU seconds (process time, i.e. one dedicated core) to draw one batch of scenes, with
  the preset's training curriculum as training draws it (median; with the prefetch thread it
  overlaps the step, so it bounds the step only when it is the longer of the two).
The step is training's own (:func:`hsgprof.experiments.train.train_step`), with the optimiser's
multi-tensor kernels as on a GPU; a plain step and a ``grad_every`` step (branch gradients taken
separately) are counted, and their mean over the budget enters the model.
Also measured, per run: its evaluations (every set after training; the convergence set at step 0
and every ``eval_every`` steps), each split into CPU time outside the network and the network's
forward passes, whose operators and FLOPs are counted and modelled on the GPU like a step's
(``eval_seconds``); the grid-only runs' receptive fields (CPU); and the time to write the results
tables (from the quick set's own record, measured on the machine that ran it, scaled by runs).

The host's speed, made explicit: the CPU-side terms (data_s, eval, results) are measured at the
speed of the machine that runs this script, and this project's machines differ by about 3x per core.
So the script also times a frozen reference workload (:mod:`hsgprof.experiments.hostspeed`, ``ref_s``
here) and writes the estimate as a function of the GPU host's reference time ``r``: every measured
CPU term is scaled by ``s = r / ref_s`` (the assumption: these terms scale like the reference). The
machine's speed moves within seconds (a busy sibling core slows the other by about 40%), so each
CPU term is timed with reference passes beside it and normalised by them to ``ref_s``, the median
of the readings (each batch drawn after a reference pass; evaluation and the fields between passes). It
reports the wall time at this machine's speed (s = 1) and ``host_reference_s_to_fit``, the largest
``r`` at which the preset fits six minutes (none if it cannot fit at any host speed). The declared
constants (LAUNCH_S, ...) are not scaled: they are stated for the GPU host. ``hsgprof experiments
gpu`` times the same reference on the GPU host before its runs and says which side of the line it is.

Model (per worker process, P workers sharing one GPU, P = default_gpu_workers(GPU_HOST_CORES)):
    t_host  = ops · LAUNCH_S + syncs · SYNC_S + matchings · MATCH_S       (CPU side of a step)
    t_gpu   = ops · KERNEL_S + gemm_flops / GPU_FLOPS                     (GPU busy time of a step)
    t_step  = t_host + s · data_s      (the prefetch thread shares the process's GIL: counted serial)
    steps/s = min(P / t_step, 1 / t_gpu)                                  (GPU time-slices the workers)
    t_eval  = s · eval_cpu + eval_ops · (LAUNCH_S + KERNEL_S) + eval_flops / GPU_FLOPS   (per run)
    wall    = STARTUP_S + Σ_runs steps / (steps/s) + (Σ_runs t_eval + s · fields) / P + s · results
Usage: python analyses/experiments_gpu_estimate.py [PRESET] [n_val=N] [seeds=N] [scene.F=V] [model.F=V] [curriculum.F=V] [out=FILE]
(a candidate design: any of those options, and out=FILE, required with them)
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))         # analyses/ is not a package

# Declared constants of the GPU model (assumptions, stated once; typical published orders of magnitude
# for PyTorch eager on recent NVIDIA GPUs, not measurements of this project).
LAUNCH_S = 10e-6        # CPU cost per eager op (dispatch + launch)
KERNEL_S = 4e-6         # minimum GPU time per kernel of a tiny op
SYNC_S = 50e-6          # one device→host round trip
MATCH_S = 150e-6        # one scipy Hungarian matching of a small cost matrix, host side
GPU_FLOPS = 20e12       # sustained FLOP/s on small fp32 convs and matmuls (far below the H200's peak)
STARTUP_S = 45.0        # process start, imports, CUDA context per worker (parallel), eval-set generation
GPU_HOST_CORES = 16     # the GPU machine's CPU cores (workers: hsgprof.experiments.gpu.default_gpu_workers)
WALL_LIMIT_S = 360.0    # the budget for the whole preset: six minutes


def step_profile(cfg, variant: str) -> dict[str, Any]:
    """ops, device→host reads, matchings and GEMM FLOPs of a training step of ``variant``, counted on
    the CPU with real tensors through training's own step (:func:`hsgprof.experiments.train.train_step`:
    forward with matching and losses, backward, the logged gradient norms and their host reads,
    clipping, the optimiser), with AdamW's multi-tensor kernels as on a GPU, once its state exists (the
    first step also creates the moments: counting it overstated every step). Its step counters stay on
    the host, so reading them is not a device sync. Two steps are counted: a plain one and a
    ``grad_every`` step (each branch's gradient taken separately, norms and cosine); ``ops``,
    ``syncs``, ``matchings`` and ``gemm_flops`` are their mean over the budget's steps."""
    import math

    import scipy.optimize
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import FlopCounterMode

    from hsgprof.experiments.train import RunSpec, branch_parameters, build_run_model, train_step, training_batches

    host_counters: set[int] = set()

    class Count(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = 0
            self.syncs = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.ops += 1
            if func is torch.ops.aten._local_scalar_dense.default and id(args[0]) not in host_counters:
                self.syncs += 1
            return func(*args, **(kwargs or {}))

    spec = RunSpec(variant, 0)
    model = build_run_model(cfg, spec).train()
    params = [p for p in model.parameters() if p.requires_grad]
    groups = branch_parameters(model)
    opt = torch.optim.AdamW(params, lr=cfg.budget.lr, weight_decay=cfg.budget.weight_decay, foreach=True)
    images, targets = training_batches(cfg, 0, 0, 1).get(0)              # as training draws it (curriculum too)
    plain_step = 1 if cfg.budget.grad_every > 1 else 0
    real = scipy.optimize.linear_sum_assignment
    calls = {"n": 0}

    def counted(*a, **k):
        calls["n"] += 1
        return real(*a, **k)

    def profile(step: int) -> dict[str, float]:
        net, flops = Count(), FlopCounterMode(display=False)
        before = calls["n"]
        with net, flops:
            train_step(model, opt, spec, cfg, step, images, targets, params, groups)
        return {"ops": net.ops, "syncs": net.syncs, "matchings": calls["n"] - before,
                "gemm_flops": float(flops.get_total_flops())}

    # The matcher imports the function from scipy.optimize when it runs (hsgdet.matching.match_flat),
    # so it is counted where it lives; patching a name in hsgdet.matching counted nothing (0 matchings).
    scipy.optimize.linear_sum_assignment = counted
    try:
        train_step(model, opt, spec, cfg, plain_step, images, targets, params, groups)   # creates the state
        host_counters.update(id(st["step"]) for st in opt.state.values() if "step" in st)
        plain, grad = profile(plain_step), profile(0)
    finally:
        scipy.optimize.linear_sum_assignment = real
    share = math.ceil(cfg.budget.steps / cfg.budget.grad_every) / cfg.budget.steps   # grad_every steps' share
    mean = {k: (1 - share) * plain[k] + share * grad[k] for k in plain}
    return {"variant": variant, **mean, "grad_step_share": share,
            **{f"{k}_plain_step": v for k, v in plain.items()}, **{f"{k}_grad_step": v for k, v in grad.items()}}


def data_time(cfg, repeats: int = 7) -> dict[str, float]:
    """CPU seconds (process time: what one dedicated core spends) to draw one batch (with the
    preset's training curriculum, as training draws it), each draw paired with a reference pass
    (:func:`hsgprof.experiments.hostspeed.reference_pass`) just before it: ``data_s`` and ``ref_s``
    (medians), ``ratio`` (median of data over its reference: the batch in reference units)."""
    from hsgprof.experiments.hostspeed import reference_pass
    from hsgprof.experiments.train import training_batches

    batches = training_batches(cfg, 0, 0, repeats)
    data, refs = [], []
    for i in range(repeats):
        refs.append(reference_pass())
        t = time.process_time()
        batches.get(i)
        data.append(time.process_time() - t)
    return {"data_s": float(np.median(data)), "ref_s": float(np.median(refs)),
            "ratio": float(np.median(np.array(data) / np.array(refs)))}


def beside_reference(work: Callable[[], Any], passes: int = 3) -> tuple[Any, float]:
    """``work()``'s result and the median of ``passes`` reference passes before and as many after it:
    the machine's speed while a long measurement ran."""
    from hsgprof.experiments.hostspeed import reference_pass

    refs = [reference_pass() for _ in range(passes)]
    out = work()
    refs += [reference_pass() for _ in range(passes)]
    return out, float(np.median(refs))


class _Forwards:
    """Times (process time) or counts (aten ops, matmul/conv FLOPs) every ``forward_raw`` of a model:
    the network's share of an evaluation, which a GPU runs instead of this CPU."""

    def __init__(self, model, count: bool) -> None:
        self.model, self.count, self.inner = model, count, model.forward_raw
        self.n, self.cpu_s, self.ops, self.flops = 0, 0.0, 0, 0.0

    def __enter__(self) -> "_Forwards":
        self.model.forward_raw = self._call
        return self

    def __exit__(self, *exc) -> None:
        del self.model.forward_raw                              # the class's method again

    def _call(self, *args, **kwargs):
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils.flop_counter import flop_registry

        self.n += 1
        if not self.count:
            t = time.process_time()
            out = self.inner(*args, **kwargs)
            self.cpu_s += time.process_time() - t
            return out
        outer = self

        class Ops(TorchDispatchMode):
            # FLOPs by FlopCounterMode's own formulas (its registry), without its module tracker, which
            # fails under no_grad (evaluation): the same convention as the step's count.
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                outer.ops += 1
                out = func(*args, **kwargs)
                formula = flop_registry.get(func.overloadpacket)
                if formula is not None:
                    outer.flops += float(formula(*args, **kwargs, out_val=out))
                return out

        with Ops():
            return self.inner(*args, **kwargs)


def eval_profile(model, work: Callable[[], Any]) -> dict[str, Any]:
    """One evaluation (``work()``) of ``model``, split: ``cpu_s`` in all (process time), ``forward_cpu_s``
    of it inside the network's forward passes, and those passes' count, aten ops and FLOPs (a second,
    counted pass of the same deterministic evaluation)."""
    with _Forwards(model, count=False) as timed:
        t = time.process_time()
        work()
        cpu_s = time.process_time() - t
    with _Forwards(model, count=True) as counted:
        work()
    return {"cpu_s": cpu_s, "forward_cpu_s": timed.cpu_s, "forwards": timed.n, "forward_ops": counted.ops,
            "forward_flops": counted.flops}


def eval_time(cfg, variant: str = "hybrid") -> dict[str, dict[str, Any]]:
    """The evaluations of one run of ``variant`` (untrained: the same work as trained), profiled by
    :func:`eval_profile`: ``final``, every evaluation set after training (a main run's: controls
    evaluate less, so this bounds them from above); ``convergence``, one AP pass on the convergence set,
    which training runs at step 0 and every ``eval_every`` steps."""
    from hsgprof.experiments.evaluate import ap_rows, make_eval_sets
    from hsgprof.experiments.runner import evaluate_run
    from hsgprof.experiments.train import MODES_BY_VARIANT, RunSpec, build_run_model

    sets = make_eval_sets(cfg)
    spec = RunSpec(variant, 0)
    model = build_run_model(cfg, spec)
    return {"final": eval_profile(model, lambda: evaluate_run(model, spec, sets, cfg)),
            "convergence": eval_profile(model, lambda: ap_rows(model, sets["convergence"], MODES_BY_VARIANT[variant], cfg))}


def eval_seconds(profile: dict[str, Any]) -> tuple[float, float]:
    """(CPU seconds outside the network, at this machine's speed; modelled GPU-host seconds of the
    network's passes: their launches and kernels, serial as an upper bound) of one profiled evaluation."""
    host = max(profile["cpu_s"] - profile["forward_cpu_s"], 0.0)
    net = profile["forward_ops"] * (LAUNCH_S + KERNEL_S) + profile["forward_flops"] / GPU_FLOPS
    return host, net


def estimate(profiles: dict[str, dict[str, Any]], data_s: float, runs: dict[str, int], steps: int,
             eval_s: float, results_s: float, workers: int | None = None, host_scale: float = 1.0,
             eval_net_s: float = 0.0, fields_s: float = 0.0) -> dict[str, Any]:
    """The model in the module docstring; every term reported. Per batch ``data_s``, per run
    ``eval_s`` (CPU outside the network) and ``eval_net_s`` (the network's passes on the GPU host,
    modelled), in all ``results_s`` and ``fields_s`` (the grid-only runs' receptive fields, CPU).
    ``host_scale`` (s) multiplies the measured CPU terms: the GPU host's reference time over this
    machine's (1: as fast as this one)."""
    from hsgprof.experiments.gpu import default_gpu_workers

    if not host_scale >= 0:
        raise ValueError(f"host_scale={host_scale} is not accepted; it must be a number >= 0")
    workers = workers or default_gpu_workers(GPU_HOST_CORES)
    data_s, eval_s, results_s = data_s * host_scale, eval_s * host_scale, results_s * host_scale
    fields_s *= host_scale
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
    eval_total = ((eval_s + eval_net_s) * n_runs + fields_s) / workers      # each worker evaluates its runs
    wall = STARTUP_S + total_train + eval_total + results_s
    return {"per_variant": per, "train_s": total_train, "eval_s": eval_total, "results_s": results_s,
            "startup_s": STARTUP_S, "wall_s": wall, "workers": workers, "runs": n_runs, "steps": steps,
            "host_scale": host_scale}


def largest_host_scale_to_fit(wall_at: Callable[[float], float], limit: float = WALL_LIMIT_S) -> float | None:
    """The largest s >= 0 with ``wall_at(s) <= limit`` (wall grows with s: a slower host is never
    faster), by bisection to 1e-6 relative; None when even an infinitely fast host (s = 0) does not
    fit. Capped at 1e6 (a host a million times slower than this one: the limit is not the host)."""
    if wall_at(0.0) > limit:
        return None
    hi = 1.0
    while wall_at(hi) <= limit:
        hi *= 2.0
        if hi > 1e6:
            return hi
    lo = 0.0
    while hi - lo > 1e-6 * hi:
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if wall_at(mid) <= limit else (lo, mid)
    return lo


def candidate(argv: list[str]) -> tuple[str, Any, Path]:
    """(preset, config, results path) of a command line: the preset as declared, or a candidate
    design of it (``n_val=N`` and the pilots' ``scene.``/``model.``/``curriculum.`` options, budget
    untouched), which must name its own ``out=FILE`` (the default is the preset's own estimate, which a
    test reads against the declaration). A bad option raises ValueError naming it."""
    from experiments_pilots import design_options, option, with_design

    from hsgprof.experiments.config import get_preset

    preset = argv[0] if argv and "=" not in argv[0] else "full"
    words = argv[1:] if argv and "=" not in argv[0] else argv
    bad = [a for a in words if "=" not in a]
    if bad:
        raise ValueError(f"argument {bad[0]!r} is not KEY=VALUE")
    opts = dict(a.split("=", 1) for a in words)
    unknown = [k for k in opts if k not in ("out", "n_val", "seeds")
               and not k.startswith(("scene.", "model.", "curriculum."))]
    if unknown:
        raise ValueError(f"option {unknown[0]!r} is not accepted")
    scene, model, curriculum = design_options(opts)
    n_val, seeds = option(opts, "n_val", int), option(opts, "seeds", int)
    if n_val is not None and n_val < 2:
        raise ValueError(f"n_val={n_val} is not accepted; need at least 2 images")
    if seeds is not None and seeds < 1:
        raise ValueError(f"seeds={seeds} is not accepted; need at least 1 (seeds 0..N-1)")
    cfg = with_design(get_preset(preset), scene, model, curriculum)
    if n_val is not None:
        cfg = cfg.replace(n_val=n_val)
    if seeds is not None:
        cfg = cfg.replace(seeds=tuple(range(seeds)))
    design = sorted(k for k in opts if k != "out")
    if design and "out" not in opts:
        raise ValueError(f"{', '.join(design)} estimate(s) a candidate, not the preset as declared: give out=FILE "
                         f"(the default, experiments_gpu_estimate_{preset}.json, is the preset's own)")
    return preset, cfg, Path(opts.get("out", f"reports/results/pilots/experiments_gpu_estimate_{preset}.json"))


def main(argv: list[str]) -> int:
    import torch

    from hsgprof.errors import HsgprofError
    from hsgprof.experiments.runner import run_specs
    from hsgprof.results import read_results, write_results

    try:
        preset, cfg, out = candidate(argv)
    except (ValueError, HsgprofError) as exc:
        print(f"experiments_gpu_estimate: {exc}; accepted: [PRESET] [n_val=N] [seeds=N] [scene.F=V] [model.F=V] "
              "[curriculum.share=X curriculum.F=V] [out=FILE] (out= required with any design option)", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    specs = run_specs(cfg)
    runs: dict[str, int] = {}
    for s in specs:
        runs[s.variant] = runs.get(s.variant, 0) + 1
    from hsgprof.experiments.fields import grid_fields
    from hsgprof.experiments.hostspeed import reference_seconds

    start = reference_seconds()                      # warms the reference up; one of this machine's readings
    profiles = {v: step_profile(cfg, v) for v in runs}
    dt = data_time(cfg)                              # each batch paired with a reference pass
    evals, ref_eval = beside_reference(lambda: eval_time(cfg))
    b = cfg.budget
    points = 1 + b.steps // b.eval_every + (1 if b.steps % b.eval_every else 0)   # step 0, every eval_every, the end
    final_host, final_net = eval_seconds(evals["final"])
    conv_host, conv_net = eval_seconds(evals["convergence"])
    e_raw, e_net = final_host + points * conv_host, final_net + points * conv_net

    def timed_fields():
        t = time.process_time()
        out = grid_fields(cfg, grow=False)           # the design check of this preset's (wider) grid-only model,
        return out, time.process_time() - t          # which every main grid-only run also makes after training

    (fields, fields_raw), ref_fields = beside_reference(timed_fields)
    # This machine's reference: the median of the readings taken beside its terms; each term is
    # normalised to it by the reference read beside that term (the machine's speed moves within seconds).
    ref_m = float(np.median([start["median_s"], dt["ref_s"], ref_eval, ref_fields]))
    ref = {**start, "median_s": ref_m, "start_median_s": start["median_s"],
           "beside": {"data": dt["ref_s"], "eval": ref_eval, "fields": ref_fields}}
    d_s = dt["ratio"] * ref_m
    e_s = e_raw * ref_m / ref_eval
    fields_one = fields_raw * ref_m / ref_fields
    fields_s = fields_one * sum(1 for s in specs if s.variant == "grid-only" and s.tag == "main")
    quick = read_results("reports/results/experiments-quick/experiments_summary.json")["meta"]
    q_results_s = quick["wall_s_this_invocation"] - (quick.get("training_invocation") or {}).get("wall_s_to_records", 0.0)
    results_s = max(q_results_s, 0.0) * len(specs) / max(quick["n_runs"], 1)

    def wall_at(scale: float) -> float:
        return estimate(profiles, d_s, runs, b.steps, e_s, results_s, host_scale=scale, eval_net_s=e_net,
                        fields_s=fields_s)["wall_s"]

    est = estimate(profiles, d_s, runs, b.steps, e_s, results_s, eval_net_s=e_net, fields_s=fields_s)
    scale_fit = largest_host_scale_to_fit(wall_at)
    fit = {"limit_s": WALL_LIMIT_S, "host_scale_to_fit": scale_fit,
           "host_reference_s_to_fit": None if scale_fit is None else scale_fit * ref["median_s"],
           "fits_at_this_host_speed": est["wall_s"] <= WALL_LIMIT_S,
           "wall_s_infinitely_fast_host": wall_at(0.0)}
    rows = [{**profiles[v], **est["per_variant"][v]} for v in runs]
    meta = {"ESTIMATE": "model of the GPU step from CPU-side measurements; not a GPU measurement",
            "constants": {"LAUNCH_S": LAUNCH_S, "KERNEL_S": KERNEL_S, "SYNC_S": SYNC_S, "MATCH_S": MATCH_S,
                          "GPU_FLOPS": GPU_FLOPS, "STARTUP_S": STARTUP_S, "GPU_HOST_CORES": GPU_HOST_CORES},
            "host_reference": ref, "fit": fit, "data_s_per_batch": d_s, "data_measured": dt,
            "eval_s_per_run_cpu_measured": e_raw, "fields_s_per_run_cpu_measured": fields_raw,
            "eval_profiles": evals, "eval_points_per_run": points,
            "eval_s_per_run_cpu": e_s, "eval_net_s_per_run": e_net, "fields_s_per_run_cpu": fields_one,
            "fields_s_cpu": fields_s, "results_s_quick_scaled": results_s,
            "results_s_quick": q_results_s, "estimate": {k: v for k, v in est.items() if k != "per_variant"},
            "fields": fields, "loadavg": list(os.getloadavg())}
    write_results(out, "experiments.gpu_estimate", rows, config=cfg.to_dict(), meta=meta,
                  command="python analyses/experiments_gpu_estimate.py " + " ".join(argv))
    for r in rows:
        print({k: (round(v, 6) if isinstance(v, float) else v) for k, v in r.items()})
    print({k: (round(v, 1) if isinstance(v, float) else v) for k, v in meta["estimate"].items()})
    print(f"data {d_s * 1000:.1f} ms/batch, eval {e_s:.1f} s/run (CPU outside the network) + {e_net:.1f} s "
          f"(network, modelled), fields {fields_s:.0f} s, results {results_s:.0f} s, "
          f"host reference {ref_m:.3f} s (readings {start['median_s']:.3f}, {dt['ref_s']:.3f}, {ref_eval:.3f}, "
          f"{ref_fields:.3f} s; every CPU term normalised to it)")
    print(f"fits {WALL_LIMIT_S:.0f} s when the GPU host's reference takes <= "
          + ("(no host speed: the GPU side alone is over)" if scale_fit is None
             else f"{fit['host_reference_s_to_fit']:.3f} s ({scale_fit:.2f}x this machine's time)") + f"; wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
