"""The no-GPU ground truth: what a real CPU training step saves for backward.

:func:`saved_tensor_truth` builds the model on the CPU with real weights, runs the target's own
training loss (``Target.loss``: for HSG-Det the full ``model(x, targets)`` with its matching)
under ``torch.autograd.graph.saved_tensors_hooks`` and counts every tensor autograd saves, once
per storage, leaving out parameters and buffers. Nothing of the estimator is used here, so the
two can be compared (``tests/test_memory_validation.py``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

from hsgprof.components import components_of
from hsgprof.targets import load_target


@dataclass
class SavedTruth:
    """Bytes a real step saved for backward, in total and per component."""

    target: str
    input_shape: tuple[int, ...]
    saved_bytes: int
    per_component: dict[str, int] = field(default_factory=dict)
    tensors: int = 0
    loss: float = float("nan")


def saved_tensor_truth(target: str, input_shape: tuple[int, int, int, int], seed: int = 0,
                       **overrides: Any) -> SavedTruth:
    """Run one real CPU training forward (+ loss) of ``target`` and count what it saves."""
    torch.manual_seed(seed)
    tg = load_target(target, device="cpu", **overrides)
    model = tg.model.train()
    cmap = components_of(model, tg.components)
    names = {id(m): n for n, m in model.named_modules()}
    excluded = {p.untyped_storage()._cdata for p in model.parameters()}
    excluded |= {b.untyped_storage()._cdata for b in model.buffers()}
    stack: list[str] = []
    saved: dict[int, tuple[int, str]] = {}
    keep: list[Any] = []          # keep storages alive so no address is reused while counting

    def component() -> str:
        for path in reversed(stack):
            comp = cmap.component_of(path)
            if comp:
                return comp
            if path.startswith("detection.loss"):
                return "(loss)"
        return "(other)"

    def pre(mod, args):
        n = names.get(id(mod))
        if n is not None:
            stack.append(n)

    def post(mod, args, out):
        n = names.get(id(mod))
        if n is not None and stack and stack[-1] == n:
            stack.pop()

    def pack(t: torch.Tensor) -> torch.Tensor:
        st = t.untyped_storage()
        key = st._cdata
        if key not in excluded and key not in saved and st.nbytes() > 0:
            saved[key] = (st.nbytes(), component())
            keep.append(st)
        return t

    g = torch.Generator().manual_seed(seed)
    x = torch.rand(tuple(input_shape), generator=g)
    hooks = [register_module_forward_pre_hook(pre), register_module_forward_hook(post, always_call=True)]
    try:
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = tg.loss(model, x)
    finally:
        for h in hooks:
            h.remove()
    per: dict[str, int] = defaultdict(int)
    for nbytes, comp in saved.values():
        per[comp] += nbytes
    return SavedTruth(target, tuple(input_shape), sum(b for b, _ in saved.values()), dict(per),
                      len(saved), float(loss.detach()))
