"""Component-wise referee counts with a cache keyed by a component's structure and its input shapes.

A model whose forward takes ``call(module, *args)`` (HSG-Det's ``forward_raw`` does) runs each named
component through :meth:`ComponentCache.call`. A component seen before with the same structure (module
types, parameter and buffer shapes, simple attributes such as strides or K) and the same input shapes
costs the same: its parameters, GEMM MACs and non-GEMM FLOPs are taken from the cache and its cached
(meta-device) output is handed on, so only new components are counted. This is what makes a search over
configurations that share most of their parts cheap. Correctness: the sum over components equals the
referee's count of the whole model (tests/test_fit.py checks it on several configurations).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

_SIMPLE = (int, float, str, bool, type(None))


def _simple(v: Any) -> bool:
    return isinstance(v, _SIMPLE) or (isinstance(v, tuple) and all(_simple(x) for x in v))


def structure_key(module: nn.Module) -> str:
    """A hash of everything about ``module`` that its cost can depend on, values of tensors apart."""
    h = hashlib.sha1()
    for path, m in module.named_modules():
        attrs = sorted((k, v) for k, v in vars(m).items() if not k.startswith("_") and k != "training" and _simple(v))
        h.update(repr((path, type(m).__qualname__, attrs)).encode())
        for name, p in m.named_parameters(recurse=False):
            h.update(repr((name, tuple(p.shape), str(p.dtype))).encode())
        for name, b in m.named_buffers(recurse=False):
            h.update(repr((name, tuple(b.shape), str(b.dtype))).encode())
    return h.hexdigest()


def _shapes(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return ("T", tuple(obj.shape), str(obj.dtype))
    if isinstance(obj, dict):
        return tuple((k, _shapes(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return tuple(_shapes(v) for v in obj)
    return repr(obj)


@dataclass
class Piece:
    """One component's cost, and the output it produced (meta tensors)."""

    params: int
    macs: int
    other_flops: int
    output: Any


class ComponentCache:
    """Counts components on first sight and reuses them after; ``hits`` / ``misses`` say what it bought."""

    def __init__(self) -> None:
        self.entries: dict[tuple, Piece] = {}
        self.hits = 0
        self.misses = 0
        self.last: dict[str, Piece] = {}             # path -> piece of the last count
        self._paths: dict[int, str] = {}

    def call(self, module: nn.Module, *args: Any) -> Any:
        """The ``call`` a model's forward uses: count (or recall) ``module(*args)`` and return its output."""
        from hsgprof.components import param_count
        from hsgprof.counting.backends.analytic import run_counted

        key = (structure_key(module), _shapes(args))
        piece = self.entries.get(key)
        if piece is None:
            self.misses += 1
            tally, out = run_counted(module, lambda: module(*args))
            macs = sum(s.macs for s in tally.stats.values())
            other = sum(s.flops for s in tally.stats.values())
            piece = self.entries[key] = Piece(param_count(module), int(macs), int(other), out)
        else:
            self.hits += 1
        self.last[self._paths.get(id(module), type(module).__name__)] = piece
        return piece.output

    def count(self, model: nn.Module, x: torch.Tensor) -> dict[str, Piece]:
        """Count an HSG-Det model (eval mode, meta device) component by component; returns path -> piece."""
        self._paths = {id(m): n for n, m in model.named_modules()}
        self.last = {}
        with torch.no_grad():
            xp, _ = model.preprocess(x)
            model.forward_raw(xp, call=self.call)
        return dict(self.last)
