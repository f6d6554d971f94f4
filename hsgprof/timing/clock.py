"""The clock: timers, interleaved side-by-side rounds, per-component times and their rows.

The measuring primitives :mod:`hsgprof.timing.latency` (the tables), :mod:`hsgprof.timing.profile`
(the profiler's attribution) and :mod:`hsgprof.timing.peak` (the matmul yardstick) share, kept
apart from all three so none of them imports another in a circle. Conventions (CUDA events on a
GPU, ``perf_counter`` on the CPU; interleaved rounds; hooks for components) are described in
:mod:`hsgprof.timing.latency`.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

from hsgprof.components import ComponentMap
from hsgprof.errors import HsgprofError
from hsgprof.timing.hooks import ComponentHooks
from hsgprof.timing.quiet import CpuMeter
from hsgprof.timing.runnable import Runnable


def summarize(samples_s: Sequence[float]) -> dict[str, float]:
    """Median, quartiles, IQR, min and mean of timings given in seconds, returned in ms."""
    if len(samples_s) == 0:
        return {"median_ms": float("nan"), "q1_ms": float("nan"), "q3_ms": float("nan"),
                "iqr_ms": float("nan"), "min_ms": float("nan"), "mean_ms": float("nan"), "n": 0}
    a = np.asarray(samples_s, dtype=float) * 1e3
    q1, med, q3 = np.percentile(a, [25, 50, 75])
    return {"median_ms": float(med), "q1_ms": float(q1), "q3_ms": float(q3), "iqr_ms": float(q3 - q1),
            "min_ms": float(a.min()), "mean_ms": float(a.mean()), "n": int(a.size)}


class Timer:
    """Times one call: CUDA events on a GPU, perf_counter on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = torch.device(device).type == "cuda"

    def __call__(self, fn: Callable[[], Any]) -> float:
        if self.cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0


def compare_latency(runnables: Sequence[Runnable], warmup: int = 10, repeat: int = 30,
                    time_budget_s: float | None = None) -> tuple[dict[str, list[float]], int]:
    """Interleaved rounds of one call per runnable; returns seconds per ``r.key`` and the rounds done."""
    if not runnables:
        raise HsgprofError("nothing to time")
    if warmup < 0 or repeat < 1:
        raise HsgprofError(f"warmup ({warmup}) must be >= 0 and repeat ({repeat}) >= 1")
    if len({r.key for r in runnables}) != len(runnables):
        raise HsgprofError("each target and path may be timed once per run")
    timer = Timer(runnables[0].x.device)
    for r in runnables:
        for _ in range(warmup):
            r()
    if timer.cuda:
        torch.cuda.synchronize()
    times: dict[str, list[float]] = {r.key: [] for r in runnables}
    t0 = time.monotonic()
    rounds = 0
    for _ in range(repeat):
        for r in runnables:
            times[r.key].append(timer(r))
        rounds += 1
        if time_budget_s is not None and time.monotonic() - t0 > time_budget_s and rounds >= 3:
            break
    return times, rounds


def component_latency(r: Runnable, cmap: ComponentMap, warmup: int = 5, repeat: int = 20,
                      time_budget_s: float | None = None) -> tuple[dict[str, list[float]], list[float]]:
    """Per-component seconds per run, and the end-to-end seconds of the same (hooked) runs.

    An eager runnable gets temporary hooks; a compiled one must carry its own (``prepare(split=...)``).
    """
    if r.hooks is None and r.compile != "none":
        raise HsgprofError(f"{r.key}: per-component times of a compiled model need hooks installed before "
                           "compiling (prepare(..., split=cmap))")
    hooks, temporary = (r.hooks, False) if r.hooks is not None else (ComponentHooks(r.step.model, cmap, r.x.device), True)
    timer = Timer(r.x.device)
    hooks.clock = True
    try:
        for _ in range(warmup):
            r()
            hooks.collect()
        per: dict[str, list[float]] = {}
        total: list[float] = []
        t0 = time.monotonic()
        for i in range(repeat):
            total.append(timer(r))
            for name, s in hooks.collect().items():
                per.setdefault(name, []).append(s)
            if time_budget_s is not None and time.monotonic() - t0 > time_budget_s and i >= 2:
                break
        return per, total
    finally:
        hooks.clock = False
        hooks.current = {}
        if temporary:
            hooks.remove()


def base_labels(input_shape: tuple[int, ...], precision: str, device: torch.device) -> dict[str, Any]:
    return {"input": "x".join(map(str, input_shape)), "batch": input_shape[0], "precision": precision,
            "device": str(device)}


def component_rows(r: Runnable, cmap: ComponentMap, base: dict[str, Any], global_components: Sequence[str],
                   warmup: int, repeat: int, time_budget_s: float | None, flops: dict[str, float],
                   source: str) -> list[dict[str, Any]]:
    """Hooked end-to-end, each component, and the global-reasoning share (time beside FLOPs)."""
    with CpuMeter() as meter:
        per, total = component_latency(r, cmap, warmup, repeat, time_budget_s)
    tot = summarize(total)
    labels = r.labels()
    rows = [{**base, **labels, "component": "end-to-end (hooked)", "kind": "hooked_total", **tot,
             "flops": flops.get("Total"), "flops_source": source, **meter.record()}]
    gr_time, gr_flops = 0.0, 0.0
    for name, samples in per.items():
        s = summarize(samples)
        share = s["median_ms"] / tot["median_ms"] if tot["median_ms"] else float("nan")
        f = flops.get(name)
        fshare = f / flops["Total"] if f is not None and flops.get("Total") else None
        is_gr = name in global_components
        if is_gr:
            gr_time += s["median_ms"]
            gr_flops += f or 0.0
        rows.append({**base, **labels, "component": name, "kind": "component", **s, "time_share": share,
                     "flops": f, "flops_share": fshare, "flops_source": source, "global_reasoning": is_gr})
    if global_components and any(n in per for n in global_components):
        rows.append({**base, **labels, "component": "global reasoning", "kind": "global_share",
                     "median_ms": gr_time, "time_share": gr_time / tot["median_ms"] if tot["median_ms"] else float("nan"),
                     "flops": gr_flops, "flops_share": gr_flops / flops["Total"] if flops.get("Total") else None,
                     "flops_source": source, "global_reasoning": True,
                     "members": ", ".join(n for n in global_components if n in per)})
    return rows
