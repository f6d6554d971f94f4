"""Latency: end-to-end and per-component, median and IQR over repeated runs after warm-up.

- Timers: CUDA events on a GPU (recorded on the current stream, read after one synchronise per
  run), ``time.perf_counter`` on the CPU.
- Side by side: :func:`compare_latency` times several runnables (targets, and paths: eager,
  compiled, channels-last) in interleaved rounds (A, B, C, A, B, C, ...) on the same input in one
  process, so drift (clocks, temperature, other load) hits all of them alike; ratios are the
  median of per-round ratios, with the ratio of medians beside it.
- Paths: a compiled runnable (:mod:`hsgprof.timing.compiled`) is compiled and warmed up before
  the timed rounds; its compile time, graphs, graph breaks and output check are rows of their own.
- Per component: forward hooks record events around each component's modules (one extra pass, so
  end-to-end figures are never taken with hooks installed). Under a compile the hooks must be in
  place before compiling (a split compile, :mod:`hsgprof.timing.hooks`). The global-reasoning
  share of time is the sum of those components' medians over the hooked end-to-end median; its
  FLOP share comes from :func:`hsgprof.counting.fast.component_flops`.
- Quiet: every timed block records the load average before it and the fraction of all CPUs busy
  during it (:mod:`hsgprof.timing.quiet`).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Sequence

import numpy as np
import torch

from hsgprof.components import ComponentMap
from hsgprof.counting.fast import component_flops
from hsgprof.errors import HsgprofError
from hsgprof.timing.compiled import dynamo_counts
from hsgprof.timing.hooks import ComponentHooks
from hsgprof.timing.quiet import CpuMeter
from hsgprof.timing.runnable import Runnable, prepare

flop_shares = component_flops          # the name this module has always exported


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


# ------------------------------------------------------------------------------------------ rows
def base_labels(input_shape: tuple[int, ...], precision: str, device: torch.device) -> dict[str, Any]:
    return {"input": "x".join(map(str, input_shape)), "batch": input_shape[0], "precision": precision,
            "device": str(device)}


def end_to_end_rows(runnables: Sequence[Runnable], times: dict[str, list[float]], base: dict[str, Any],
                    quiet: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for r in runnables:
        s = summarize(times[r.key])
        rows.append({**base, **r.labels(), "component": "end-to-end", "kind": "end_to_end", **s,
                     "throughput_img_s": base["batch"] / (s["median_ms"] / 1e3) if s["n"] else float("nan"),
                     "compile_s": r.compile_info.get("compile_s"), **quiet})
    return rows


def _per_round_ratio(a: list[float], b: list[float]) -> dict[str, float]:
    per_round = np.asarray(a) / np.asarray(b)
    return {"ratio_median_of_rounds": float(np.median(per_round)), "ratio_q1": float(np.percentile(per_round, 25)),
            "ratio_q3": float(np.percentile(per_round, 75)),
            "ratio_of_medians": float(np.median(a) / np.median(b)), "n": int(per_round.size)}


def ratio_rows(runnables: Sequence[Runnable], times: dict[str, list[float]], reference: str | None,
               base: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target over ``reference`` on the same path and memory format (eager / eager, compiled / compiled)."""
    if reference is None:
        return []
    rows = []
    for r in runnables:
        ref = next((q for q in runnables if q.name == reference and q.path == r.path
                    and q.channels_last == r.channels_last), None)
        if ref is None or ref is r:
            continue
        rows.append({**base, **r.labels(), "component": f"ratio to {reference}", "kind": "ratio",
                     **_per_round_ratio(times[r.key], times[ref.key])})
    return rows


def speedup_rows(runnables: Sequence[Runnable], times: dict[str, list[float]],
                 base: dict[str, Any]) -> list[dict[str, Any]]:
    """Each non-default path of a target over its eager contiguous run (below 1: faster than eager)."""
    rows = []
    for r in runnables:
        eager = next((q for q in runnables if q.name == r.name and q.path == "eager" and not q.channels_last), None)
        if eager is None or eager is r:
            continue
        rows.append({**base, **r.labels(), "component": "ratio to eager", "kind": "vs_eager",
                     **_per_round_ratio(times[r.key], times[eager.key])})
    return rows


def compile_rows(runnables: Sequence[Runnable], base: dict[str, Any],
                 graphs_while_timing: int | None = None) -> list[dict[str, Any]]:
    """One row per compiled runnable: compile and warm-up seconds, graphs, breaks, output check."""
    rows = []
    for r in runnables:
        info = r.compile_info
        if not info:
            continue
        worst = max(info["outputs"], key=lambda c: c.get("rel_diff") or 0.0, default={})
        rows.append({**base, **r.labels(), "component": "compile", "kind": "compile",
                     "compile_s": info["compile_s"], "warm_s": info["warm_s"], "graphs": info["graphs"],
                     "compiled_regions": info["compiled_regions"],
                     "graph_breaks": info["graph_breaks"], "outputs_equal": info["outputs_equal"],
                     "tolerance": info["tolerance"], "max_rel_diff": worst.get("rel_diff"),
                     "max_abs_diff": max((c.get("max_abs_diff") or 0.0 for c in info["outputs"]), default=None),
                     "outputs": info["outputs"], "graphs_compiled_while_timing": graphs_while_timing})
    return rows


def attention_rows(runnables: Sequence[Runnable], base: dict[str, Any]) -> list[dict[str, Any]]:
    """Which SDPA backend served each runnable's attention calls (one profiled call each)."""
    from hsgprof.timing.profile import profile_runnable

    rows = []
    for r in runnables:
        res = profile_runnable(r, None, calls=1)
        rows.append({**base, **r.labels(), "component": "attention", "kind": "attention",
                     "sdpa": res["sdpa"], "sdpa_text": sdpa_text(res["sdpa"])})
    return rows


def sdpa_text(counts: dict[str, float]) -> str:
    """"flash ×13, math (unfused) ×1" (calls per forward), or "no attention op"."""
    return ", ".join(f"{k} ×{v:g}" for k, v in counts.items()) or "no attention op"


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


def _flops(name: str, input_shape: tuple[int, ...], cmap: ComponentMap | None,
           overrides: dict[str, Any]) -> tuple[dict[str, float], str]:
    try:
        return component_flops(name, input_shape, cmap, **overrides)
    except Exception as exc:    # noqa: BLE001 - a FLOP count is optional beside a timing
        return {}, f"unavailable: {type(exc).__name__}"


def time_runnables(runnables: Sequence[Runnable], warmup: int, repeat: int, time_budget_s: float | None,
                   reference: str | None) -> list[dict[str, Any]]:
    """Time ``runnables`` side by side: end-to-end, ratio, vs-eager and compile rows (with quiet columns)."""
    r0 = runnables[0]
    base = base_labels(tuple(r0.x.shape), r0.step.prec.name, r0.x.device)
    any_compiled = any(r.compile != "none" for r in runnables)
    before = dynamo_counts()["graphs"] if any_compiled else 0
    with CpuMeter() as meter:
        times, _ = compare_latency(runnables, warmup, repeat, time_budget_s)
    during = dynamo_counts()["graphs"] - before if any_compiled else None
    return (end_to_end_rows(runnables, times, base, meter.record()) + ratio_rows(runnables, times, reference, base)
            + speedup_rows(runnables, times, base) + compile_rows(runnables, base, during))


def latency_rows(target_names: Sequence[str], input_shape: tuple[int, int, int, int], precision: str,
                 device: str, warmup: int = 10, repeat: int = 30, components: bool = True,
                 reference: str | None = None, global_components: Sequence[str] = (),
                 time_budget_s: float | None = None, cmaps: dict[str, ComponentMap | None] | None = None,
                 compile: str = "none", channels_last: bool = False, attention: bool = False,
                 **overrides: Any) -> list[dict[str, Any]]:
    """Tidy rows: end-to-end per target and path, ratios to ``reference``, per component with shares.

    Every target runs eager (contiguous); ``compile`` adds a compiled path per target and
    ``channels_last`` a channels-last path (compiled too when compiling); all are timed in the
    same interleaved rounds. Components are timed on the eager path. ``attention``: add which SDPA
    backend each runnable used (one profiled call each).
    """
    runnables = []
    for t in target_names:
        runnables.append(prepare(t, input_shape, precision, device, **overrides))
        if channels_last:
            runnables.append(prepare(t, input_shape, precision, device, channels_last=True, **overrides))
        if compile != "none":
            runnables.append(prepare(t, input_shape, precision, device, compile=compile,
                                     channels_last=channels_last, **overrides))
    rows = time_runnables(runnables, warmup, repeat, time_budget_s, reference)
    base = base_labels(input_shape, precision, runnables[0].x.device)
    if attention:
        rows += attention_rows(runnables, base)
    if components:
        for r in runnables:
            if r.path != "eager" or r.channels_last:
                continue
            cmap = (cmaps or {}).get(r.name, r.step.target.components)
            if cmap is None:
                continue
            flops, source = _flops(r.name, input_shape, cmap, overrides)
            rows += component_rows(r, cmap, base, global_components, max(warmup // 2, 1), repeat, time_budget_s,
                                   flops, source)
    return rows
