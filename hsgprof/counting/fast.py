"""GEMM FLOPs per component in one meta-device pass: the figure set beside measured times.

:func:`component_flops` runs the target's network once on the meta device under a dispatch mode
that applies ``torch.utils.flop_counter``'s per-op formulas (convolutions, matmuls, attention;
2 FLOPs per multiply-add) and adds each op's FLOPs to the component whose module is running
(:class:`~hsgprof.counting.tracker.ModuleStack`). Elementwise ops, norms and pooling are not
counted, which is the referee's GEMM figure (``referee_gemm_flops``) and agrees with it per
component (``tests/test_latency.py`` checks that); it takes a fraction of the referee's time,
which matters inside the GPU suite's time budget. Tables of FLOPs use :func:`hsgprof.counting.count`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from hsgprof.components import ComponentMap
from hsgprof.counting.tracker import ModuleStack

SOURCE = "torch.utils.flop_counter formulas (conv/matmul/attention only; 2 FLOPs per MAC)"
_CACHE: dict[tuple, dict[str, float]] = {}


class _Tally(TorchDispatchMode):
    def __init__(self, stack: ModuleStack, cmap: ComponentMap | None) -> None:
        super().__init__()
        self.stack, self.cmap = stack, cmap
        self.totals: dict[str, float] = {}
        self._owner: dict[str, str | None] = {}

    def _component(self, path: str) -> str | None:
        if path not in self._owner:
            self._owner[path] = self.cmap.component_of(path) if self.cmap is not None else None
        return self._owner[path]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        if packet in flop_registry:
            f = float(flop_registry[packet](*args, **kwargs, out_val=out))
            self.totals["Total"] = self.totals.get("Total", 0.0) + f
            comp = self._component(self.stack.current)
            if comp is not None:
                self.totals[comp] = self.totals.get(comp, 0.0) + f
        return out


def component_flops(target: str, input_shape: tuple[int, ...], cmap: ComponentMap | None,
                    **overrides: Any) -> tuple[dict[str, float], str]:
    """{"Total": FLOPs, component: FLOPs, ...} of one inference call, and the source string.

    ``cmap`` None counts the total only. Results are cached per (target, shape, map, overrides).
    """
    from hsgprof.memory.steps import step_functions
    from hsgprof.targets import load_target

    key = (target, tuple(input_shape), cmap, tuple(sorted(overrides.items())))
    if key not in _CACHE:
        tg = load_target(target, device="meta", **overrides)
        model = tg.model.eval()
        fns = step_functions(tg)
        x = torch.empty(tuple(input_shape), device="meta")
        present = cmap.present(model) if cmap is not None else None
        with ModuleStack(model) as stack, _Tally(stack, present) as tally, torch.no_grad():
            fns.network(model, x)
        _CACHE[key] = dict(tally.totals)
    return dict(_CACHE[key]), SOURCE
