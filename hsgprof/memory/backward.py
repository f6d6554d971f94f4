"""Backward pass by walking the autograd graph in Python, as the engine would.

PyTorch's autograd engine runs nodes of a CUDA graph on a per-device worker thread that needs
a CUDA context, so a graph built from fake CUDA tensors cannot be run with ``.backward()`` on a
machine without a GPU. :func:`run_backward` executes the same nodes in the engine's order: a
node runs once every gradient flowing into it has arrived; among ready nodes the one created
last (highest sequence number) runs first, and gradient accumulators (``AccumulateGrad``) run as
soon as they are ready. Incoming gradients are summed in place, shapes and dtypes are fixed up
as the engine's ``validate_outputs`` does, and a parameter's first gradient is stored without a
copy. With the :class:`~hsgprof.memory.tracker.StepTracer` releasing each node's saved tensors
after it ran, the live-bytes timeline is the engine's.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any

import torch

from hsgprof.errors import HsgprofError
from hsgprof.memory.tracker import StepTracer


def _graph_dependencies(root: Any) -> dict[Any, int]:
    deps: dict[Any, int] = {}
    stack, seen = [root], {root}
    while stack:
        node = stack.pop()
        for nxt, _ in node.next_functions:
            if nxt is None:
                continue
            deps[nxt] = deps.get(nxt, 0) + 1
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return deps


def _fix(grad: torch.Tensor, node: Any, idx: int) -> torch.Tensor:
    """The engine's validate_outputs: reduce broadcast gradients, cast to the input's dtype."""
    try:
        md = node._input_metadata[idx]
    except (AttributeError, IndexError):
        return grad
    shape = tuple(md.shape)
    if tuple(grad.shape) != shape:
        grad = grad.sum_to_size(shape)
    if grad.dtype != md.dtype:
        grad = grad.to(md.dtype)
    return grad


def _call(node: Any, grads: list[Any]) -> tuple:
    if node.name() == "torch::autograd::AccumulateGrad":
        var = node.variable
        g = grads[0]
        if g is not None:
            g = g.detach()
            if var.grad is None:
                var.grad = g if g.stride() == var.stride() else g.contiguous()
            else:
                var.grad += g
        return ()
    out = node(*grads) if callable(node) else node.apply(*grads)
    return out if isinstance(out, tuple) else (out,)


def run_backward(loss: torch.Tensor, tracer: StepTracer | None = None,
                 grad: torch.Tensor | None = None) -> int:
    """Backpropagate from scalar ``loss`` into the leaves' ``.grad``; returns the nodes run."""
    root = loss.grad_fn
    if root is None:
        raise RuntimeError("the loss does not require grad; nothing to backpropagate")
    if not hasattr(root, "_input_metadata"):
        raise HsgprofError(f"torch {torch.__version__} does not expose autograd nodes' input metadata "
                           "(Node._input_metadata), which the estimator's backward needs; use torch >= 2.4")
    deps = _graph_dependencies(root)
    n_in = lambda node: len(getattr(node, "_input_metadata", ())) or 1  # noqa: E731
    buffers: dict[Any, list[Any]] = {root: [torch.ones_like(loss) if grad is None else grad]}
    counter = itertools.count()
    ready = [(-root._sequence_nr(), next(counter), root)]
    ran = 0
    with torch.no_grad():
        ran = _walk(ready, buffers, deps, counter, n_in, tracer)
    return ran


def _walk(ready: list, buffers: dict, deps: dict, counter: Any, n_in: Any, tracer: StepTracer | None) -> int:
    ran = 0
    while ready:
        _, _, node = heapq.heappop(ready)
        grads = buffers.pop(node, None) or [None] * n_in(node)
        if tracer is not None:
            tracer.begin_node()
        outs = _call(node, grads)
        del grads
        if tracer is not None:
            tracer.end_node()
        ran += 1
        for (nxt, idx), g in zip(node.next_functions, outs):
            if nxt is None:
                continue
            if g is not None:
                g = _fix(g, nxt, idx)
                buf = buffers.get(nxt)
                if buf is None:
                    buf = buffers[nxt] = [None] * n_in(nxt)
                if buf[idx] is None:
                    buf[idx] = g
                elif (buf[idx].shape == g.shape and buf[idx].dtype == g.dtype
                      and buf[idx].is_contiguous() and buf[idx] is not g):
                    buf[idx].add_(g)                    # the engine accumulates in place
                else:
                    buf[idx] = buf[idx] + g
            del g
            deps[nxt] -= 1
            if deps[nxt] == 0:
                heapq.heappush(ready, (-nxt._sequence_nr(), next(counter), nxt))
        del outs
    return ran
