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

from typing import Any, Sequence

import numpy as np

from hsgprof.components import ComponentMap
from hsgprof.counting.fast import component_flops
from hsgprof.timing.clock import base_labels, compare_latency, component_rows, summarize
from hsgprof.timing.compiled import dynamo_counts
from hsgprof.timing.profile import profile_runnable
from hsgprof.timing.quiet import CpuMeter
from hsgprof.timing.runnable import Runnable, prepare

flop_shares = component_flops          # the name this module has always exported


# ------------------------------------------------------------------------------------------ rows
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
    rows = []
    for r in runnables:
        res = profile_runnable(r, None, calls=1)
        rows.append({**base, **r.labels(), "component": "attention", "kind": "attention",
                     "sdpa": res["sdpa"], "sdpa_text": sdpa_text(res["sdpa"])})
    return rows


def sdpa_text(counts: dict[str, float]) -> str:
    """"flash ×13, math (unfused) ×1" (calls per forward), or "no attention op"."""
    return ", ".join(f"{k} ×{v:g}" for k, v in counts.items()) or "no attention op"


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
