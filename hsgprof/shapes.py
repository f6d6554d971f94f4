"""Output shapes of named modules, recorded with forward hooks on the meta device (no compute)."""

from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
from torch import nn

from hsgprof.errors import HsgprofError


def _shapes_of(out: Any) -> list[tuple[int, ...]]:
    if isinstance(out, torch.Tensor):
        return [tuple(out.shape)]
    if isinstance(out, (list, tuple)):
        return [s for o in out for s in _shapes_of(o)]
    if isinstance(out, dict):
        return [s for o in out.values() for s in _shapes_of(o)]
    return []


def module_output_shapes(model: nn.Module, forward: Callable[[nn.Module, torch.Tensor], Any],
                         x: torch.Tensor, paths: Iterable[str]) -> dict[str, list[tuple[int, ...]]]:
    """Shapes of every tensor each module in ``paths`` returns during ``forward(model, x)``.

    Hooks are removed even if the forward raises, so the model is left as it was.
    """
    modules = dict(model.named_modules())
    shapes: dict[str, list[tuple[int, ...]]] = {}
    handles = []
    try:
        for path in paths:
            if path not in modules:
                raise HsgprofError(f"module {path!r} not found in {type(model).__name__}")
            handles.append(modules[path].register_forward_hook(
                lambda m, i, o, path=path: shapes.__setitem__(path, _shapes_of(o))))
        with torch.no_grad():
            forward(model, x)
    finally:
        for h in handles:
            h.remove()
    return shapes
