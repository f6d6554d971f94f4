"""A model ready for timed inference calls: eager or compiled, contiguous or channels-last.

:func:`prepare` builds the target on the device (:class:`~hsgprof.memory.runner.RealStep`: the
precision's dtype and autocast), makes a seeded input and, for a compiled path, compiles and
warms it up right away, so that compile time is measured there, apart from any timed call, and
checks the compiled outputs against the eager model's on the same input.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from hsgprof.components import ComponentMap
from hsgprof.errors import HsgprofError
from hsgprof.memory.runner import RealStep
from hsgprof.timing import compiled as C
from hsgprof.timing.hooks import ComponentHooks

WARM_CALLS = 2      # after the compiling call: CUDA-graph trees warm up, then record, then replay


@dataclass
class Runnable:
    """One target on one path (eager or a compile mode), with its input."""

    name: str                                   # the target spec
    step: RealStep
    x: torch.Tensor
    compile: str = "none"
    channels_last: bool = False
    module: nn.Module | None = None             # what is called: the model, or its compiled wrapper
    hooks: ComponentHooks | None = None         # component hooks, installed before compiling (split)
    compile_info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.module is None:
            self.module = self.step.model

    @property
    def path(self) -> str:
        """"eager" or "compiled:<mode>", with ",split" when the graph is broken at components."""
        label = "eager" if self.compile == "none" else f"compiled:{self.compile}"
        if self.hooks is not None and self.compile != "none":
            label += ",split"
        return label

    @property
    def memory_format(self) -> str:
        return "channels_last" if self.channels_last else "contiguous"

    @property
    def key(self) -> str:
        """Unique among the runnables of one run: the target, its path and memory format."""
        extra = [p for p in (None if self.path == "eager" else self.path,
                             "channels_last" if self.channels_last else None) if p]
        return f"{self.name} [{', '.join(extra)}]" if extra else self.name

    def labels(self) -> dict[str, Any]:
        return {"target": self.name, "path": self.path, "compile": self.compile, "memory_format": self.memory_format}

    def __call__(self) -> Any:
        with torch.no_grad(), self.step.autocast():
            return self.step.target.forward(self.module, self.x)

    def eager(self) -> Any:
        """The same call on the uncompiled model (the reference the compiled outputs must equal)."""
        with torch.no_grad(), self.step.autocast():
            return self.step.target.forward(self.step.model, self.x)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def prepare(target: str, input_shape: tuple[int, int, int, int], precision: str, device: str,
            seed: int = 0, compile: str = "none", channels_last: bool = False,
            split: ComponentMap | None = None, **overrides: Any) -> Runnable:
    """Build ``target`` for timed calls; compile it now when ``compile`` is not ``none``.

    ``split``: install component hooks from this map before compiling (see
    :mod:`hsgprof.timing.hooks`); the runnable's ``hooks`` then time or range its components.
    For a compiled path ``compile_info`` holds the compile seconds (first call), the warm-up
    calls' seconds, the graphs and graph breaks Dynamo produced (none when an identical model
    compiled earlier in the process is reused), the compiled regions one call enters, and the
    output comparison.
    """
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise HsgprofError("--device cuda was asked for but CUDA is not available on this machine")
    C.check_compile_mode(compile, dev)
    step = RealStep(target, "inference", precision, None, dev, seed, **overrides)
    x = step.make_input(tuple(input_shape), seed)
    if channels_last:
        step.model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    hooks = ComponentHooks(step.model, split, dev) if split is not None else None
    r = Runnable(target, step, x, compile, channels_last, hooks=hooks)
    if compile != "none":
        r.module = C.compile_module(step.model, compile)
        _compile_now(r)
    return r


def _compile_now(r: Runnable) -> None:
    """First call (compiles), warm-up calls, then one steady call compared with eager's output."""
    dev = r.x.device
    before = C.dynamo_counts()
    with C.compiling():
        t0 = time.perf_counter()
        r()
        _sync(dev)
        compile_s = time.perf_counter() - t0
        warm = []
        for _ in range(WARM_CALLS):
            t0 = time.perf_counter()
            r()
            _sync(dev)
            warm.append(time.perf_counter() - t0)
    after = C.dynamo_counts()
    graphs = after["graphs"] - before["graphs"]
    regions = C.compiled_regions(r)
    if graphs <= 0 and regions == 0:
        raise HsgprofError(f"torch.compile ({r.compile}) compiled no graph for {r.name} and no compiled region "
                           "ran: it ran eagerly")
    reference = r.eager()
    out = r()                       # compared at once: a CUDA-graph replay reuses its output buffers
    checks = C.compare_outputs(reference, out, r.step.prec.name)
    del reference, out
    r.compile_info = {"compile_s": compile_s, "warm_s": warm, "graphs": graphs, "compiled_regions": regions,
                      "graph_breaks": after["graph_breaks"] - before["graph_breaks"],
                      "outputs": checks, "outputs_equal": all(c["ok"] for c in checks),
                      "tolerance": checks[0]["tolerance"] if checks else None}

