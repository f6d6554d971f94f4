"""CUDA measurements: per-phase peaks, memory snapshots, and an OOM-safe max-batch search.

Protocol of :func:`measure_step_memory`: build the model on the GPU, run ``warmup`` full steps
(optimizer state exists, cuDNN/cuBLAS are initialised, the caching allocator holds its
segments), synchronise, read the baseline, then for each phase (forward incl. loss, backward,
optimizer step) ``reset_peak_memory_stats`` -> run the phase -> synchronise -> read
``max_memory_allocated`` and ``max_memory_reserved``. These are what the estimate's replay
predicts (after its own warm-up iteration).

Every function here raises :class:`~hsgprof.errors.HsgprofError` when CUDA is absent, and
:func:`search_cuda_max_batch` leaves the process usable after an out-of-memory error: the trial's
tensors are dropped, garbage is collected, the cache is emptied and peaks are reset before
the next trial; only batches whose trial ran to the end are ever reported as fitting.
"""

from __future__ import annotations

import gc
import pickle
from pathlib import Path
from typing import Any

import torch

from hsgprof.errors import HsgprofError
from hsgprof.memory.runner import RealStep
from hsgprof.memory.search import SearchError, SearchResult, search_max_batch

MiB = 1 << 20

OOM_MARKERS = ("out of memory", "CUBLAS_STATUS_ALLOC_FAILED", "CUDNN_STATUS_ALLOC_FAILED",
               "cudaErrorMemoryAllocation")


def require_cuda() -> None:
    if not torch.cuda.is_available():
        raise HsgprofError("CUDA is not available on this machine: CUDA measurements need an NVIDIA GPU "
                           "(the device-agnostic estimate, `hsgprof memory`, runs without one)")


def is_oom(exc: BaseException) -> bool:
    """An allocation failure (PyTorch's OutOfMemoryError, or a library's allocation failure)."""
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    return isinstance(exc, RuntimeError) and any(m in str(exc) for m in OOM_MARKERS)


def free_cuda_memory() -> None:
    """Drop cached blocks and reset the peaks (after an OOM or between measurements)."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def context_bytes() -> int:
    """Device memory in use that PyTorch's allocator does not hold (CUDA context, libraries, others)."""
    require_cuda()
    free, total = torch.cuda.mem_get_info()
    return int(total - free - torch.cuda.memory_reserved())


def _peaks() -> tuple[int, int]:
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated()), int(torch.cuda.max_memory_reserved())


def _reset() -> None:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()


def measure_step_memory(target: str, input_shape: tuple[int, int, int, int], mode: str = "inference",
                        precision: str = "fp32", optimizer: str | None = "adamw", warmup: int = 2,
                        step: RealStep | None = None, **overrides: Any) -> dict[str, Any]:
    """Per-phase peak allocated/reserved bytes of one step after ``warmup`` steps (CUDA only)."""
    require_cuda()
    free_cuda_memory()
    step = step or RealStep(target, mode, precision, optimizer, "cuda", **overrides)
    x = step.make_input(tuple(input_shape))
    stepped, done = False, 0
    while done < max(warmup, 1) or (mode == "train" and not stepped and done < warmup + 20):
        stepped = step.run(x)            # fp16 AMP: go on until the scaler stops skipping steps
        done += 1
    torch.cuda.synchronize()
    out: dict[str, Any] = {"warmup_steps": done,
                           "baseline_allocated_bytes": int(torch.cuda.memory_allocated()),
                           "baseline_reserved_bytes": int(torch.cuda.memory_reserved())}
    phases: dict[str, tuple[int, int]] = {}
    _reset()
    if mode == "inference":
        y = step.infer(x)
        phases["forward"] = _peaks()
        del y
    else:
        loss = step.forward_loss(x)
        phases["forward"] = _peaks()
        _reset()
        step.backward(loss)
        del loss
        phases["backward"] = _peaks()
        _reset()
        out["optimizer_step_skipped"] = not step.optimizer_step()
        phases["optimizer"] = _peaks()
    torch.cuda.synchronize()
    out["phases"] = {k: {"peak_allocated_bytes": a, "peak_reserved_bytes": r} for k, (a, r) in phases.items()}
    out["peak_allocated_bytes"] = max(a for a, _ in phases.values())
    out["peak_reserved_bytes"] = max(r for _, r in phases.values())
    out["end_allocated_bytes"] = int(torch.cuda.memory_allocated())
    del x, step
    free_cuda_memory()
    return out


def record_snapshot(target: str, input_shape: tuple[int, int, int, int], path: str | Path,
                    mode: str = "inference", precision: str = "fp32", optimizer: str | None = "adamw",
                    warmup: int = 1, max_entries: int = 200_000, **overrides: Any) -> dict[str, Any]:
    """Record one step's allocator history and save it as a pickle PyTorch's memory_viz opens.

    Open it at https://pytorch.org/memory_viz (drag the file in) or with
    ``python -m torch.cuda._memory_viz trace_plot FILE -o trace.html``.
    """
    require_cuda()
    free_cuda_memory()
    step = RealStep(target, mode, precision, optimizer, "cuda", **overrides)
    x = step.make_input(tuple(input_shape))
    for _ in range(max(warmup, 0)):
        step.run(x)
    torch.cuda.synchronize()
    try:
        torch.cuda.memory._record_memory_history(enabled="all", context="all", stacks="python",
                                                 max_entries=max_entries)
    except TypeError:                                  # older signature
        torch.cuda.memory._record_memory_history(True, max_entries=max_entries)
    try:
        step.run(x)
        torch.cuda.synchronize()
        snap = torch.cuda.memory._snapshot()
    finally:
        try:
            torch.cuda.memory._record_memory_history(enabled=None)
        except TypeError:
            torch.cuda.memory._record_memory_history(False)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with open(tmp, "wb") as fh:
        pickle.dump(snap, fh)
    tmp.replace(path)
    del x, step
    free_cuda_memory()
    traces = snap.get("device_traces", [[]]) if isinstance(snap, dict) else [[]]
    return {"path": str(path), "bytes": path.stat().st_size, "events": sum(len(t) for t in traces)}


def search_cuda_max_batch(target: str, hw: tuple[int, int], mode: str, precision: str,
                          limit_bytes: int | None, optimizer: str | None = "adamw", max_batch: int = 64,
                          time_budget_s: float | None = None, steps_per_trial: int | None = None,
                          device: str = "cuda", **overrides: Any) -> SearchResult:
    """Largest batch that runs at ``hw`` with the allocator limited to ``limit_bytes`` (reserved).

    The limit is set with ``torch.cuda.set_per_process_memory_fraction`` and restored to 1.0 at
    the end. A training trial runs two full steps (the first creates the optimizer state, the
    second is the steady state); an inference trial runs one call. ``device="cpu"`` runs the same
    logic without a limit (for tests, where out-of-memory errors are simulated).
    """
    cuda = device == "cuda"
    if cuda:
        require_cuda()
    h, w = hw
    n_steps = steps_per_trial or (2 if mode == "train" else 1)
    cleanup = free_cuda_memory if cuda else gc.collect
    cleanup()
    step = RealStep(target, mode, precision, optimizer, device, **overrides)
    if cuda and limit_bytes is not None:
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(limit_bytes / total, 1.0))

    def trial(b: int) -> tuple[bool, dict[str, Any]]:
        step.reset_grads()
        cleanup()
        err = ""
        try:
            x = step.make_input((b, 3, h, w))
            for _ in range(n_steps):
                step.run(x)
            del x
            if cuda:
                torch.cuda.synchronize()
            ok = True
        except Exception as exc:            # noqa: BLE001 - classified below, never swallowed silently
            if not is_oom(exc):
                raise SearchError(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
            ok, err = False, f"{type(exc).__name__}: {str(exc).splitlines()[0][:160]}"
        info: dict[str, Any] = {"error": err}
        if cuda:
            info.update(peak_allocated_bytes=int(torch.cuda.max_memory_allocated()),
                        peak_reserved_bytes=int(torch.cuda.max_memory_reserved()))
        if not ok:
            step.recover()
        cleanup()
        return ok, info

    try:
        return search_max_batch(trial, max_batch, time_budget_s)
    finally:
        if cuda:
            torch.cuda.set_per_process_memory_fraction(1.0)
        del step
        cleanup()
