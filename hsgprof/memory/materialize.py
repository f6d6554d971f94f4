"""Running a data-dependent loss on real values inside a fake-tensor step.

A detector's loss matches predictions to targets (top-k, Hungarian assignment, ``if any()``):
its control flow needs values, which fake tensors do not have. :func:`materialized_loss` runs
such a loss on real CPU stand-ins for the network's outputs (random values of the same shapes
and dtypes, seeded) and connects it to the fake graph with a custom autograd function: forward
returns a fake scalar, backward runs the real loss's backward and hands fake gradients of the
outputs' shapes back to the fake graph.

What the loss allocates and saves is counted as device memory (it would run on the device);
the stand-ins themselves are not (the outputs they stand for are already counted), and a
stand-in saved for backward counts as the output it stands for. The loss's data-dependent
branches follow the stand-in values (e.g. how many anchors are positives), which can differ
from a trained model's; the loss is reported as its own component so its share is visible.
"""

from __future__ import annotations

import dataclasses
import weakref
from typing import Any, Callable

import torch
from torch._subclasses.fake_tensor import unset_fake_temporarily

from hsgprof.memory.tracker import StepTracer, storage_key


def flatten(obj: Any) -> tuple[list[torch.Tensor], Callable[[list[torch.Tensor]], Any]]:
    """Tensors in a nest of dicts, lists, tuples and dataclasses, and a function rebuilding it."""
    leaves: list[torch.Tensor] = []

    def walk(o: Any) -> Callable[[list], Any]:
        if isinstance(o, torch.Tensor):
            i = len(leaves)
            leaves.append(o)
            return lambda xs: xs[i]
        if isinstance(o, dict):
            parts = {k: walk(v) for k, v in o.items()}
            return lambda xs: {k: f(xs) for k, f in parts.items()}
        if isinstance(o, (list, tuple)):
            parts_l = [walk(v) for v in o]
            kind = type(o)
            if kind in (list, tuple):
                return lambda xs: kind(f(xs) for f in parts_l)
            return lambda xs: kind(*(f(xs) for f in parts_l))          # namedtuple
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            fields = {f.name: walk(getattr(o, f.name)) for f in dataclasses.fields(o)}
            return lambda xs: dataclasses.replace(o, **{k: f(xs) for k, f in fields.items()})
        return lambda xs: o

    rebuild = walk(obj)
    return leaves, rebuild


def _stand_in(fake: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    shape = tuple(fake.shape)
    if fake.is_floating_point():
        # Values in (0.05, 0.95): valid probabilities, normalised box coordinates and logits alike.
        real = (torch.rand(shape, generator=gen) * 0.9 + 0.05).to(fake.dtype)
    elif fake.dtype == torch.bool:
        real = torch.zeros(shape, dtype=torch.bool)
    else:
        real = torch.zeros(shape, dtype=fake.dtype)
    if fake.requires_grad:
        real.requires_grad_(True)
    return real


class _Runner:
    def __init__(self, fn: Callable[[Any], torch.Tensor], structure: Any, tracer: StepTracer,
                 seed: int, autocast_dtype: torch.dtype | None) -> None:
        self.fn, self.tracer, self.seed, self.autocast_dtype = fn, tracer, seed, autocast_dtype
        self.leaves, self.rebuild = flatten(structure)
        self.grad_idx = [i for i, t in enumerate(self.leaves) if t.requires_grad]
        self.loss_real: torch.Tensor | None = None
        self.wanted: list[torch.Tensor] = []
        self.grad_meta: list[tuple] = []

    def forward(self) -> torch.Tensor:
        """Run the loss on stand-ins. Afterwards the runner keeps no fake output alive: an output
        lives on only while the loss's graph saves its stand-in (the box keeps it), or while the
        network's graph or the caller holds it, as in a real step."""
        tracer = self.tracer
        leaves = self.leaves
        fake_loss_device = leaves[0].device if leaves else torch.device("cpu")
        keys = []
        with unset_fake_temporarily():
            gen = torch.Generator().manual_seed(self.seed)
            with tracer.paused():
                real = [_stand_in(t, gen) for t in leaves]
            for fake, r in zip(leaves, real):
                if tracer._counts(fake):
                    keys.append(storage_key(r))
                    tracer.alias[keys[-1]] = (storage_key(fake), fake.untyped_storage().nbytes(), weakref.ref(fake))
            tracer.accept_cpu = True
            try:
                with torch.enable_grad(), tracer.region("detection.loss"):
                    if self.autocast_dtype is not None:
                        with torch.autocast("cpu", dtype=self.autocast_dtype):
                            loss = self.fn(self.rebuild(real))
                    else:
                        loss = self.fn(self.rebuild(real))
            finally:
                tracer.accept_cpu = False
                for k in keys:                      # stand-in addresses may be reused from here on
                    tracer.alias.pop(k, None)
            if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
                raise RuntimeError("the loss function must return a scalar tensor")
        self.loss_real = loss
        self.wanted = [real[i] for i in self.grad_idx]
        self.grad_meta = [(tuple(leaves[i].shape), leaves[i].device) for i in self.grad_idx]
        self.leaves, self.rebuild = [], None
        del real, leaves
        with tracer.paused():
            out = torch.empty((), dtype=loss.dtype, device=fake_loss_device)
        tracer.adopt(loss, out)
        return out

    def backward(self, grad: torch.Tensor) -> tuple:
        tracer = self.tracer
        wanted = self.wanted
        with unset_fake_temporarily():
            tracer.accept_cpu = True
            try:
                grads = torch.autograd.grad(self.loss_real, wanted, allow_unused=True)
            finally:
                tracer.accept_cpu = False
        out = []
        for (shape, device), g in zip(self.grad_meta, grads):
            if g is None:
                out.append(None)
                continue
            with tracer.paused():
                fg = torch.empty(shape, dtype=g.dtype, device=device)
            tracer.adopt(g, fg)
            out.append(fg)
        del grads, wanted
        self.loss_real = None
        self.wanted = []
        return tuple(out)


def materialized_loss(fn: Callable[[Any], torch.Tensor], structure: Any, tracer: StepTracer,
                      seed: int = 0, autocast_dtype: torch.dtype | None = None) -> torch.Tensor:
    """``fn(structure)`` evaluated on real stand-ins; returns a fake scalar wired into autograd."""
    runner = _Runner(fn, structure, tracer, seed, autocast_dtype)
    inputs = [runner.leaves[i] for i in runner.grad_idx]
    del structure

    class _MaterializedLoss(torch.autograd.Function):
        @staticmethod
        def forward(ctx: Any, *leaves: torch.Tensor) -> torch.Tensor:
            return runner.forward()

        @staticmethod
        def backward(ctx: Any, grad: torch.Tensor) -> tuple:
            return runner.backward(grad)

    return _MaterializedLoss.apply(*inputs)
