"""The optimised inference path: ``torch.compile`` modes, and the check that outputs equal eager's.

Modes (``--compile``): ``none`` (eager PyTorch), ``default``, ``reduce-overhead`` (``default`` plus
CUDA graphs, which replay a whole captured region with one launch) and ``max-autotune``
(``reduce-overhead`` plus autotuned matmul/convolution templates; minutes of compile time).

- Shapes are static (``dynamic=False``): each batch size and precision gets its own graph.
  Without it, Dynamo would turn a size that changed between two compiles of the same code into
  a symbol, and the second model compiled from a class (hsgdet-l-grid after hsgdet-l share
  ``HSGDet.forward``) could get slower dynamic-shape kernels.
- ``reduce-overhead`` and ``max-autotune`` are refused on the CPU: their CUDA graphs do not
  exist there, and a CPU figure labelled with them would describe something that did not run.
- Compile time is the wall time of the first call (Dynamo, AOTAutograd, Inductor, kernel
  compilation, first run); the next calls (CUDA-graph warm-up and capture) are reported beside
  it; steady-state latency is timed afterwards and never includes either.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from hsgprof.errors import HsgprofError

COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
CUDA_ONLY_MODES = ("reduce-overhead", "max-autotune")
RECOMPILE_LIMIT = 64        # several presets share HSGDet.forward; the default 8 would fall back to eager

# Outputs equal eager's when max|compiled - eager| <= tol * max|eager|, per output tensor.
# Declared before any comparison ran: the unit roundoff is 6e-8 (fp32), 4.9e-4 (fp16) and
# 3.9e-3 (bf16); fused kernels reassociate sums and keep fp32 intermediates that eager rounds
# per op, over ~100 layers. fp32: 1e-4 (three orders above its roundoff); fp16: 1e-2 (~20 ulps
# of the output's scale); bf16: 5e-2 (~13 ulps).
TOLERANCE = {"fp32": 1e-4, "fp16": 1e-2, "fp16-amp": 1e-2, "bf16": 5e-2, "bf16-amp": 5e-2}


def check_compile_mode(mode: str, device: str | torch.device) -> None:
    """Raise the one-line error for an unknown mode, or a CUDA-graph mode asked for on the CPU."""
    if mode not in COMPILE_MODES:
        raise HsgprofError(f"--compile {mode!r} is not accepted; choose one of {', '.join(COMPILE_MODES)}")
    if mode in CUDA_ONLY_MODES and torch.device(device).type != "cuda":
        raise HsgprofError(f"--compile {mode} needs --device cuda: it adds CUDA graphs, which do not exist on "
                           "the CPU; use --compile default there")


def compile_module(model: nn.Module, mode: str) -> nn.Module:
    """``torch.compile(model)`` in ``mode`` with static shapes (``mode`` must not be ``none``)."""
    return torch.compile(model, mode=None if mode == "default" else mode, dynamic=False)


def dynamo_counts() -> dict[str, int]:
    """Graphs Dynamo has compiled and graph breaks it has met in this process so far."""
    from torch._dynamo.utils import counters

    return {"graphs": int(counters["stats"]["unique_graphs"]),
            "graph_breaks": int(sum(counters["graph_break"].values()))}


REGION_EVENT = "Torch-Compiled Region"        # the profiler event Dynamo opens around compiled code


def compiled_regions(call: Any) -> int:
    """How many compiled regions one ``call()`` enters (0: it ran eagerly), read from the profiler."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        call()
    return sum(1 for e in prof.events() if e.name.startswith(REGION_EVENT))


@contextmanager
def compiling() -> Iterator[None]:
    """While first calls compile: a recompile limit several presets of one class fit under."""
    import torch._dynamo

    cfg = torch._dynamo.config
    name = "recompile_limit" if hasattr(cfg, "recompile_limit") else "cache_size_limit"   # older torch
    with cfg.patch(**{name: max(RECOMPILE_LIMIT, getattr(cfg, name))}):
        yield


def reset_compiled() -> None:
    """Forget every compiled graph (between configurations, so caches never hit their limits)."""
    import torch._dynamo

    torch._dynamo.reset()


def output_leaves(out: Any, prefix: str = "") -> list[tuple[str, torch.Tensor]]:
    """(name, tensor) for every tensor in a nested output (dicts, lists, tuples, dataclasses)."""
    if isinstance(out, torch.Tensor):
        return [(prefix or "output", out)]
    if isinstance(out, dict):
        items = out.items()
    elif isinstance(out, (list, tuple)):
        items = ((str(i), v) for i, v in enumerate(out))
    elif hasattr(out, "__dataclass_fields__"):
        items = ((k, getattr(out, k)) for k in out.__dataclass_fields__)
    else:
        return []
    leaves = []
    for key, value in items:
        leaves += output_leaves(value, f"{prefix}.{key}" if prefix else str(key))
    return leaves


def compare_outputs(eager: Any, compiled: Any, precision: str) -> list[dict[str, Any]]:
    """One row per output tensor: max |compiled − eager|, eager's scale, and whether within tolerance."""
    tol = TOLERANCE.get(precision, TOLERANCE["fp32"])
    ref, got = dict(output_leaves(eager)), dict(output_leaves(compiled))
    rows = []
    for name in ref.keys() | got.keys():
        a, b = ref.get(name), got.get(name)
        row: dict[str, Any] = {"output": name, "tolerance": tol}
        if a is None or b is None or a.shape != b.shape:
            row.update(ok=False, note="missing in one path" if a is None or b is None else
                       f"shapes differ: {list(a.shape)} vs {list(b.shape)}")
        elif not a.is_floating_point():
            same = bool(torch.equal(a, b))
            row.update(ok=same, max_abs_diff=0.0 if same else float("nan"), note="integer output: compared exactly")
        else:
            a32, b32 = a.detach().float(), b.detach().float()
            diff = float((a32 - b32).abs().max()) if a32.numel() else 0.0
            scale = float(a32.abs().max()) if a32.numel() else 0.0
            finite = math.isfinite(diff)
            rel = diff / scale if scale > 0 else (0.0 if diff == 0 else math.inf)
            row.update(max_abs_diff=diff, max_abs_eager=scale, rel_diff=rel, ok=finite and rel <= tol)
        rows.append(row)
    return sorted(rows, key=lambda r: r["output"])
