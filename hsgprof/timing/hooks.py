"""Forward hooks around each component: a clock (CUDA events or perf_counter) and profiler ranges.

One set of hooks serves both uses; what they do is switched by flags, so they can be installed
once, before a model is compiled, and never touched again (adding or removing hooks after
``torch.compile`` invalidates its guards and recompiles).

Under ``torch.compile`` the hooks are kept out of the graph with :func:`torch.compiler.disable`:
Dynamo breaks the graph at every component boundary and runs the hooks eagerly there. That is a
*split* compile: each component is compiled on its own, nothing is fused across a boundary, and
with ``reduce-overhead`` each piece gets its own CUDA graph. Its times say where time goes under
the compiler, not what a whole-graph compile achieves end to end; the latency tables show both.
(A ``record_function`` range inside a traced region is ignored by Dynamo, so a whole-graph
compile keeps no component ranges at all.)
"""

from __future__ import annotations

import time
from typing import Any, Callable

import torch
from torch import nn

from hsgprof.components import ComponentMap

RANGE_PREFIX = "hsgprof::"          # record_function names: "hsgprof::<component>", "hsgprof::step"
STEP_RANGE = RANGE_PREFIX + "step"


class ComponentHooks:
    """Hooks on every module of every component of ``cmap`` present in ``model``.

    ``clock``: record a start/end stamp per call (read with :meth:`collect`); ``ranges``: open a
    ``record_function`` range named ``hsgprof::<component>`` around each call. Both start off.
    """

    def __init__(self, model: nn.Module, cmap: ComponentMap, device: torch.device) -> None:
        self.cuda = torch.device(device).type == "cuda"
        self.cmap = cmap.present(model)
        self.clock = False
        self.ranges = False
        self._open: dict[int, Any] = {}
        self._ranges: dict[int, Any] = {}
        self.current: dict[str, list[tuple[Any, Any]]] = {}
        self._handles: list[Any] = []
        for comp in self.cmap.components:
            for path in comp.paths:
                mod = model.get_submodule(path)
                self._handles.append(mod.register_forward_pre_hook(self._pre(comp.name)))
                self._handles.append(mod.register_forward_hook(self._post(comp.name), always_call=True))

    def _stamp(self) -> Any:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def _pre(self, name: str) -> Callable[..., None]:
        @torch.compiler.disable
        def hook(mod: nn.Module, args: Any) -> None:
            if self.ranges:
                rf = torch.profiler.record_function(RANGE_PREFIX + name)
                rf.__enter__()
                self._ranges[id(mod)] = rf
            if self.clock:
                self._open[id(mod)] = self._stamp()
        return hook

    def _post(self, name: str) -> Callable[..., None]:
        @torch.compiler.disable
        def hook(mod: nn.Module, args: Any, out: Any) -> None:
            start = self._open.pop(id(mod), None)
            if start is not None:
                self.current.setdefault(name, []).append((start, self._stamp()))
            rf = self._ranges.pop(id(mod), None)
            if rf is not None:
                rf.__exit__(None, None, None)
        return hook

    def collect(self) -> dict[str, float]:
        """Seconds per component for the call just finished (several calls of one are summed)."""
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
