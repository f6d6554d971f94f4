"""Latency: end-to-end and per-component, median and IQR over repeated runs after warm-up.

- Timers: CUDA events on a GPU (recorded on the current stream, read after one synchronise per
  run), ``time.perf_counter`` on the CPU.
- Side by side: :func:`compare_latency` times several models in interleaved rounds (A, B, C,
  A, B, C, ...) on the same input in one process, so drift (clocks, temperature, other load)
  hits all of them alike; ratios are the median of per-round ratios, with the ratio of medians
  beside it.
- Per component: forward pre/post hooks on each component's modules record events around it
  (one extra pass, so the end-to-end figures are never taken with hooks installed). The
  global-reasoning share of time is the sum of those components' medians over the hooked
  end-to-end median; its FLOP share comes from :func:`flop_shares`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

from hsgprof.components import ComponentMap
from hsgprof.errors import HsgprofError
from hsgprof.memory.runner import RealStep


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
        self.cuda = device.type == "cuda"

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


class ComponentClock:
    """Forward hooks that time each component's modules (events on CUDA, perf_counter on CPU)."""

    def __init__(self, model: nn.Module, cmap: ComponentMap, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.cmap = cmap.present(model)
        self._handles: list[Any] = []
        self._open: dict[int, Any] = {}
        self.current: dict[str, list[tuple[Any, Any]]] = {}
        for comp in self.cmap.components:
            for path in comp.paths:
                mod = model.get_submodule(path)
                self._handles.append(mod.register_forward_pre_hook(self._pre))
                self._handles.append(mod.register_forward_hook(self._post(comp.name), always_call=True))

    def _stamp(self) -> Any:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def _pre(self, mod: nn.Module, args: Any) -> None:
        self._open[id(mod)] = self._stamp()

    def _post(self, name: str) -> Callable[..., None]:
        def hook(mod: nn.Module, args: Any, out: Any) -> None:
            start = self._open.pop(id(mod), None)
            if start is not None:
                self.current.setdefault(name, []).append((start, self._stamp()))
        return hook

    def collect(self) -> dict[str, float]:
        """Seconds per component for the run just finished (several calls of one are summed)."""
        if self.cuda:
            torch.cuda.synchronize()
        out = {}
        for name, pairs in self.current.items():
            if self.cuda:
                out[name] = sum(s.elapsed_time(e) for s, e in pairs) / 1e3
            else:
                out[name] = sum(e - s for s, e in pairs)
        self.current = {}
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []


@dataclass
class Runnable:
    """A model ready for timed inference calls."""

    name: str
    step: RealStep
    x: torch.Tensor

    def __call__(self) -> Any:
        return self.step.infer(self.x)


def prepare(target: str, input_shape: tuple[int, int, int, int], precision: str, device: str,
            seed: int = 0, **overrides: Any) -> Runnable:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HsgprofError("--device cuda was asked for but CUDA is not available on this machine")
    step = RealStep(target, "inference", precision, None, dev, seed, **overrides)
    return Runnable(target, step, step.make_input(tuple(input_shape), seed))


def compare_latency(runnables: Sequence[Runnable], warmup: int = 10, repeat: int = 30,
                    time_budget_s: float | None = None) -> tuple[dict[str, list[float]], int]:
    """Interleaved rounds of one call per model; returns seconds per model and the rounds done."""
    if not runnables:
        raise HsgprofError("nothing to time")
    if warmup < 0 or repeat < 1:
        raise HsgprofError(f"warmup ({warmup}) must be >= 0 and repeat ({repeat}) >= 1")
    timer = Timer(runnables[0].x.device)
    for r in runnables:
        for _ in range(warmup):
            r()
    if timer.cuda:
        torch.cuda.synchronize()
    times: dict[str, list[float]] = {r.name: [] for r in runnables}
    t0 = time.monotonic()
    rounds = 0
    for _ in range(repeat):
        for r in runnables:
            times[r.name].append(timer(r))
        rounds += 1
        if time_budget_s is not None and time.monotonic() - t0 > time_budget_s and rounds >= 3:
            break
    return times, rounds


def component_latency(r: Runnable, cmap: ComponentMap, warmup: int = 5, repeat: int = 20,
                      time_budget_s: float | None = None) -> tuple[dict[str, list[float]], list[float]]:
    """Per-component seconds per run, and the end-to-end seconds of the same (hooked) runs."""
    clock = ComponentClock(r.step.model, cmap, r.x.device)
    timer = Timer(r.x.device)
    try:
        for _ in range(warmup):
            r()
            clock.collect()
        per: dict[str, list[float]] = {}
        total: list[float] = []
        t0 = time.monotonic()
        for i in range(repeat):
            total.append(timer(r))
            for name, s in clock.collect().items():
                per.setdefault(name, []).append(s)
            if time_budget_s is not None and time.monotonic() - t0 > time_budget_s and i >= 2:
                break
        return per, total
    finally:
        clock.remove()


class _ComponentFlops:
    """FLOPs of every op ``torch.utils.flop_counter`` knows, attributed to the running component."""

    def __init__(self, model: nn.Module, cmap: ComponentMap | None) -> None:
        from torch.utils._python_dispatch import TorchDispatchMode
        from torch.utils.flop_counter import flop_registry

        names = {id(m): n for n, m in model.named_modules()}
        stack: list[str] = []
        totals: dict[str, float] = {}
        comp_of = cmap.component_of if cmap is not None else (lambda p: None)

        def current() -> str | None:
            for path in reversed(stack):
                c = comp_of(path)
                if c:
                    return c
            return None

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                kwargs = kwargs or {}
                out = func(*args, **kwargs)
                packet = func._overloadpacket
                if packet in flop_registry:
                    f = float(flop_registry[packet](*args, **kwargs, out_val=out))
                    totals["Total"] = totals.get("Total", 0.0) + f
                    c = current()
                    if c is not None:
                        totals[c] = totals.get(c, 0.0) + f
                return out

        def pre(mod: nn.Module, args: Any) -> None:
            n = names.get(id(mod))
            if n is not None:
                stack.append(n)

        def post(mod: nn.Module, args: Any, out: Any) -> None:
            n = names.get(id(mod))
            if n is not None and stack and stack[-1] == n:
                stack.pop()

        self.mode, self.totals, self._pre, self._post = Mode(), totals, pre, post

    def __enter__(self) -> "_ComponentFlops":
        from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

        self._handles = [register_module_forward_pre_hook(self._pre),
                         register_module_forward_hook(self._post, always_call=True)]
        self.mode.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self.mode.__exit__(*exc)
        finally:
            for h in self._handles:
                h.remove()


def flop_shares(target: str, input_shape: tuple[int, int, int, int], cmap: ComponentMap | None,
                **overrides: Any) -> tuple[dict[str, float], str]:
    """FLOPs in total and per component (2 FLOPs per multiply-add), counted on the meta device.

    Uses ``torch.utils.flop_counter``'s per-op formulas (convolutions, matmuls, attention;
    elementwise ops, norms and pooling are not counted) and says so in the returned source
    string. The project's own counter (``hsgprof.counting``) is the reference for FLOP tables;
    this column is here so time and FLOP shares sit side by side in one table.
    """
    from hsgprof.memory.steps import step_functions
    from hsgprof.targets import load_target

    key = (target, tuple(input_shape), cmap, tuple(sorted(overrides.items())))
    if key not in _FLOP_CACHE:
        tg = load_target(target, device="meta", **overrides)
        model = tg.model.eval()
        fns = step_functions(tg)
        x = torch.empty(tuple(input_shape), device="meta")
        with _ComponentFlops(model, cmap.present(model) if cmap is not None else None) as counter, torch.no_grad():
            fns.network(model, x)
        _FLOP_CACHE[key] = dict(counter.totals)
    return dict(_FLOP_CACHE[key]), "torch.utils.flop_counter formulas (conv/matmul/attention only; 2 FLOPs per MAC)"


_FLOP_CACHE: dict[tuple, dict[str, float]] = {}


def latency_rows(target_names: Sequence[str], input_shape: tuple[int, int, int, int], precision: str,
                 device: str, warmup: int = 10, repeat: int = 30, components: bool = True,
                 reference: str | None = None, global_components: Sequence[str] = (),
                 time_budget_s: float | None = None, cmaps: dict[str, ComponentMap | None] | None = None,
                 **overrides: Any) -> list[dict[str, Any]]:
    """Tidy rows: end-to-end per target, ratios to ``reference``, per-component with shares."""
    runnables = [prepare(t, input_shape, precision, device, **overrides) for t in target_names]
    base = {"input": "x".join(map(str, input_shape)), "batch": input_shape[0], "precision": precision,
            "device": str(runnables[0].x.device)}
    times, rounds = compare_latency(runnables, warmup, repeat, time_budget_s)
    rows: list[dict[str, Any]] = []
    for t in target_names:
        s = summarize(times[t])
        rows.append({**base, "target": t, "component": "end-to-end", "kind": "end_to_end", **s,
                     "throughput_img_s": input_shape[0] / (s["median_ms"] / 1e3) if s["n"] else float("nan")})
    if reference is not None and reference in times:
        ref = np.asarray(times[reference])
        for t in target_names:
            if t == reference:
                continue
            per_round = np.asarray(times[t]) / ref
            rows.append({**base, "target": t, "component": f"ratio to {reference}", "kind": "ratio",
                         "ratio_median_of_rounds": float(np.median(per_round)),
                         "ratio_q1": float(np.percentile(per_round, 25)),
                         "ratio_q3": float(np.percentile(per_round, 75)),
                         "ratio_of_medians": float(np.median(times[t]) / np.median(ref)), "n": rounds})
    if components:
        for r in runnables:
            cmap = (cmaps or {}).get(r.name, r.step.target.components)
            if cmap is None:
                continue
            per, total = component_latency(r, cmap, max(warmup // 2, 1), repeat, time_budget_s)
            tot = summarize(total)
            try:
                flops, source = flop_shares(r.name, input_shape, cmap, **overrides)
            except Exception as exc:    # noqa: BLE001 - a FLOP count is optional beside a timing
                flops, source = {}, f"unavailable: {type(exc).__name__}"
            rows.append({**base, "target": r.name, "component": "end-to-end (hooked)", "kind": "hooked_total",
                         **tot, "flops": flops.get("Total"), "flops_source": source})
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
                rows.append({**base, "target": r.name, "component": name, "kind": "component", **s,
                             "time_share": share, "flops": f, "flops_share": fshare, "flops_source": source,
                             "global_reasoning": is_gr})
            if global_components and any(n in per for n in global_components):
                rows.append({**base, "target": r.name, "component": "global reasoning", "kind": "global_share",
                             "median_ms": gr_time,
                             "time_share": gr_time / tot["median_ms"] if tot["median_ms"] else float("nan"),
                             "flops": gr_flops,
                             "flops_share": gr_flops / flops["Total"] if flops.get("Total") else None,
                             "flops_source": source, "global_reasoning": True,
                             "members": ", ".join(n for n in global_components if n in per)})
    for r in runnables:
        del r.step
    return rows

