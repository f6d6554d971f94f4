"""Per-component device time from ``torch.profiler``, beside FLOPs: achieved TFLOP/s and share of peak.

Each profiled call runs inside a ``record_function`` range ``hsgprof::step`` and each component
inside ``hsgprof::<component>`` (:mod:`hsgprof.timing.hooks`). Attribution:

- **CUDA**: a component's device time is the summed duration of the kernels launched from inside
  its range (the profiler links every kernel to the op that launched it; ``device_time_total``
  of the range event), its host time the range's CPU duration (Python and launches). Kernel time
  is what the GPU was busy with; the difference from the component's wall time (CUDA events,
  :func:`hsgprof.timing.clock.component_latency`) is idle GPU: launch overhead and syncs.
- **CPU** (tests, and CPU runs): the device is the host; a component's time is its range's duration.

Per step, the components' times add up to at most the step's; the rest is reported as
``(outside components)`` (input checks, glue between components). Values are those of the
*median step*: the profiled call whose total is the median (the lower one of an even count), so
the rows add up to the total exactly (medians taken part by part need not: on a noisy host the
components' medians summed can exceed the total's median). Under a whole-graph compile the
component ranges do not survive (Dynamo ignores ``record_function`` inside a traced region), so
such a run yields its step total only; the split compile (hooks kept out of the graph) keeps them.

The attention kernels that ran are read from the same events: the ``aten::_scaled_dot_product_*``
op names say which SDPA backend served each call (flash, memory-efficient, cuDNN, the CPU flash
kernel, or the unfused math path).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import torch

from hsgprof.components import ComponentMap, components_of
from hsgprof.timing.clock import base_labels, component_rows
from hsgprof.timing.hooks import RANGE_PREFIX, STEP_RANGE, ComponentHooks

OUTSIDE = "(outside components)"

# aten op -> SDPA backend label; an _native_multi_head_attention call with none of these inside
# it computed attention with its own unfused kernels.
SDPA_OPS = {
    "aten::_scaled_dot_product_flash_attention": "flash",
    "aten::_scaled_dot_product_efficient_attention": "efficient",
    "aten::_scaled_dot_product_cudnn_attention": "cudnn",
    "aten::_scaled_dot_product_flash_attention_for_cpu": "flash (CPU kernel)",
    "aten::_scaled_dot_product_attention_math": "math (unfused)",
    "aten::_scaled_dot_product_fused_attention_overrideable": "fused (backend-specific)",
}
NATIVE_MHA = "aten::_native_multi_head_attention"


@dataclass(frozen=True)
class Span:
    """One host-side profiler event, reduced to what attribution needs (times in microseconds)."""

    name: str
    start_us: float
    end_us: float
    thread: int
    device_us: float = 0.0            # kernel time launched from inside it (CUDA); 0 on the CPU
    kernels: int = 0                  # kernels launched from inside it

    @property
    def host_us(self) -> float:
        return self.end_us - self.start_us

    def contains(self, other: "Span") -> bool:
        return self.thread == other.thread and self.start_us <= other.start_us and other.end_us <= self.end_us


def _kernel_count(event: Any) -> int:
    return len(getattr(event, "kernels", []) or []) + sum(_kernel_count(c) for c in event.cpu_children)


def spans(events: Iterable[Any], cuda: bool) -> list[Span]:
    """The ``hsgprof::`` ranges among ``torch.profiler`` events, as :class:`Span` records."""
    out = []
    for e in events:
        if not e.name.startswith(RANGE_PREFIX) or getattr(e, "device_type", None) != torch.autograd.DeviceType.CPU:
            continue
        out.append(Span(e.name, float(e.time_range.start), float(e.time_range.end), int(e.thread),
                        float(e.device_time_total) if cuda else 0.0, _kernel_count(e) if cuda else 0))
    return out


def attribute(records: Sequence[Span], cuda: bool) -> list[dict[str, float]]:
    """Per profiled step: {"step": total, component: time, ..., OUTSIDE: rest} in ms, plus host times.

    On CUDA the time is kernel time (``device_us``); on the CPU the range's duration. Host times
    go under ``"<name> host"`` keys, kernel counts under ``"<name> kernels"``.
    """
    steps = sorted((s for s in records if s.name == STEP_RANGE), key=lambda s: s.start_us)
    comps = [s for s in records if s.name != STEP_RANGE]
    out = []
    for st in steps:
        value = (lambda s: s.device_us) if cuda else (lambda s: s.host_us)
        row: dict[str, float] = {"step": value(st) / 1e3, "step host": st.host_us / 1e3, "step kernels": st.kernels}
        inside = 0.0
        for c in comps:
            if not st.contains(c):
                continue
            name = c.name[len(RANGE_PREFIX):]
            row[name] = row.get(name, 0.0) + value(c) / 1e3
            row[f"{name} host"] = row.get(f"{name} host", 0.0) + c.host_us / 1e3
            row[f"{name} kernels"] = row.get(f"{name} kernels", 0) + c.kernels
            inside += value(c) / 1e3
        row[OUTSIDE] = row["step"] - inside
        out.append(row)
    return out


def sdpa_backends(events: Iterable[Any], calls: int) -> dict[str, float]:
    """Attention calls per forward by SDPA backend, e.g. {"flash": 13.0}."""
    events = list(events)
    counts: dict[str, int] = {}
    for e in events:
        label = SDPA_OPS.get(e.name)
        if label is not None:
            counts[label] = counts.get(label, 0) + 1
    for e in events:
        if e.name == NATIVE_MHA and not _has_descendant(e, SDPA_OPS):
            counts["native MHA (unfused)"] = counts.get("native MHA (unfused)", 0) + 1
    return {k: v / max(calls, 1) for k, v in sorted(counts.items())}


def _has_descendant(event: Any, names: dict[str, str]) -> bool:
    return any(c.name in names or _has_descendant(c, names) for c in event.cpu_children)


def profile_runnable(r: Any, cmap: ComponentMap | None, calls: int = 5) -> dict[str, Any]:
    """Profile ``calls`` calls of runnable ``r``: per-step attribution and SDPA backends.

    ``cmap``: components to range. An eager runnable gets temporary hooks; a compiled one is
    ranged only through hooks installed before it was compiled (``r.hooks``, a split compile),
    since hooks added after compiling would recompile it; without them only the step total is
    attributed. Returns {"steps": [...], "sdpa": {...}, "ranges": bool, "calls": n}.
    """
    from torch.profiler import ProfilerActivity, profile, record_function

    cuda = r.x.device.type == "cuda"
    hooks, temporary = r.hooks, False
    if hooks is None and cmap is not None and r.compile == "none":
        hooks, temporary = ComponentHooks(r.step.model, cmap, r.x.device), True
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    try:
        if hooks is not None:
            hooks.ranges = True
        with profile(activities=activities) as prof:
            for _ in range(calls):
                with record_function(STEP_RANGE):
                    r()
                    if cuda:
                        torch.cuda.synchronize()
    finally:
        if hooks is not None:
            hooks.ranges = False
        if temporary:
            hooks.remove()
    events = prof.events()
    steps = attribute(spans(events, cuda), cuda)
    return {"steps": steps, "sdpa": sdpa_backends(events, calls), "ranges": hooks is not None, "calls": calls}


def median_step(steps: Sequence[dict[str, float]]) -> dict[str, float]:
    """The step whose total is the median (lower median of an even count): one real call's breakdown."""
    order = sorted(range(len(steps)), key=lambda i: steps[i]["step"])
    return steps[order[(len(order) - 1) // 2]]


def attribution_rows(result: dict[str, Any], flops: dict[str, float], peak_tflops: float | None,
                   base: dict[str, Any]) -> list[dict[str, Any]]:
    """Tidy rows of the median step: time per component, its FLOPs, TFLOP/s and fraction of peak.

    The median step (:func:`median_step`) is one profiled call, so its components and
    ``(outside components)`` add up to its total; a component absent from it is absent here.
    """
    if not result["steps"]:
        return []
    st = median_step(result["steps"])
    names = [k for k in st if not k.endswith((" host", " kernels")) and k != "step"]
    rows = []
    for name in ["step", *names]:
        ms = st[name]
        f = flops.get("Total") if name == "step" else flops.get(name)
        tflops = f / (ms / 1e3) / 1e12 if f and ms and ms > 0 else None
        rows.append({**base, "component": "end-to-end" if name == "step" else name,
                     "kind": "profile_total" if name == "step" else "profile_component",
                     "device_ms": ms, "host_ms": st.get(f"{name} host"), "kernels": st.get(f"{name} kernels"),
                     "flops": f, "achieved_tflops": tflops, "peak_tflops": peak_tflops,
                     "fraction_of_peak": tflops / peak_tflops if tflops and peak_tflops else None,
                     "calls_profiled": result["calls"]})
    total = rows[0]["device_ms"]
    for row in rows:
        row["time_share"] = row["device_ms"] / total if total and row["device_ms"] is not None else None
    return rows


def target_components(target: str, **overrides: Any) -> ComponentMap:
    """The target's component map (its adapter's), else its model's top-level modules (built on meta)."""
    from hsgprof.targets import load_target

    tg = load_target(target, device="meta", **overrides)
    return components_of(tg.model, tg.components)


def peak_row(peak: dict[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    """The measured matmul rate as a results row (kind ``peak``)."""
    return {**base, "target": "matmul", "component": f"matmul {peak['n']}³ {peak['dtype']}", "kind": "peak",
            "path": "eager", **peak}


def profile_target(target: str, input_shape: tuple[int, int, int, int], precision: str, device: str,
                   compile: str = "none", calls: int = 5, peak_tflops: float | None = None,
                   global_components: Sequence[str] = (), warmup: int = 3, repeat: int = 10,
                   time_budget_s: float | None = None, **overrides: Any) -> tuple[list[dict], list[dict]]:
    """(profiler rows, component-clock rows) of one target on one path.

    Eager (``compile="none"``): the profiler rows only (the eager clock rows are
    :func:`~hsgprof.timing.latency.latency_rows`'). Compiled: the model is compiled *split* at
    component boundaries (the only compiled form whose components can be ranged), profiled, and
    timed per component with the clock (wall time per component and the global-reasoning share).
    """
    from hsgprof.counting.fast import component_flops
    from hsgprof.timing.runnable import prepare

    cmap = target_components(target, **overrides)
    r = prepare(target, input_shape, precision, device, compile=compile, split=cmap if compile != "none" else None,
                **overrides)
    flops, source = component_flops(target, input_shape, cmap, **overrides)
    res = profile_runnable(r, cmap, calls)
    base = base_labels(input_shape, precision, r.x.device)
    labels = {**r.labels(), "ranges": res["ranges"], "sdpa": res["sdpa"], "flops_source": source}
    if r.compile_info:
        labels.update(compile_s=r.compile_info["compile_s"], graphs=r.compile_info["graphs"],
                      graph_breaks=r.compile_info["graph_breaks"], outputs_equal=r.compile_info["outputs_equal"])
    prof = attribution_rows(res, flops, peak_tflops, {**base, **labels})
    clock = (component_rows(r, cmap, base, global_components, warmup, repeat, time_budget_s, flops, source)
             if compile != "none" else [])
    return prof, clock


def profile_rows(target_names: Sequence[str], input_shape: tuple[int, int, int, int], precision: str,
                 device: str, compile: str = "none", calls: int = 5, global_components: Sequence[str] = (),
                 warmup: int = 3, repeat: int = 10, time_budget_s: float | None = None,
                 **overrides: Any) -> list[dict[str, Any]]:
    """The per-component table of several targets: the measured matmul peak first, then each target
    eager and (with ``compile``) compiled split; see :func:`profile_target`."""
    from hsgprof.timing.peak import matmul_peak

    peak = matmul_peak(device, precision)
    rows: list[dict[str, Any]] = [peak_row(peak, base_labels(input_shape, precision, torch.device(device)))]
    for t in target_names:
        for mode in ("none",) + ((compile,) if compile != "none" else ()):
            prof, clock = profile_target(t, input_shape, precision, device, mode, calls, peak["tflops"],
                                         global_components, warmup, repeat, time_budget_s, **overrides)
            rows += prof + clock
    return rows
