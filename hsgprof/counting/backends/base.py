"""The one interface every counting backend implements, and what a run hands it.

A backend gets a :class:`Job` (the model, how to call it, the input shape, and lazily built
copies on the meta device or with real tensors) and returns a :class:`BackendResult`: its raw
total in its own unit, the total normalised to FLOPs (= 2 × MACs), an exclusive per-module /
per-family / per-op table in normalised FLOPs, and what it skipped or could not see.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pandas as pd
import torch
from torch import nn

from hsgprof.counting.guard import materialized, meta_twin, model_device, preserved

ForwardFn = Callable[[nn.Module, torch.Tensor], Any]

FRAME_COLUMNS = ("module", "family", "op", "flops", "calls")


@dataclass
class Job:
    """One count request: the user's model, its forward, the input shape, and where it may run."""

    model: nn.Module
    forward: ForwardFn
    input_shape: tuple[int, ...]
    real_factory: Callable[[], nn.Module] | None = None     # builds a real-tensor model (CLI: load on CPU)
    seed: int = 0
    grad: str = "no_grad"                                   # grad mode for counting runs that allow a choice
    _meta: nn.Module | None = field(default=None, repr=False)
    _real: nn.Module | None = field(default=None, repr=False)

    @property
    def on_meta(self) -> bool:
        return model_device(self.model).type == "meta"

    def meta_model(self) -> nn.Module:
        """The model on the meta device: the user's own if it is already there, else a private twin."""
        if self.on_meta:
            return self.model
        if self._meta is None:
            self._meta = meta_twin(self.model)
        return self._meta

    def real_model(self) -> nn.Module:
        """A model with real tensors: the user's own, else the factory's, else placeholder values."""
        if not self.on_meta:
            return self.model
        if self._real is None:
            self._real = self.real_factory() if self.real_factory is not None else materialized(self.model)
        return self._real

    def meta_input(self) -> torch.Tensor:
        return torch.empty(self.input_shape, device="meta", dtype=_dtype(self.model))

    def real_input(self) -> torch.Tensor:
        model = self.real_model()
        g = torch.Generator().manual_seed(self.seed)
        return torch.rand(self.input_shape, generator=g).to(device=model_device(model), dtype=_dtype(model))


def _dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.float32


def grad_context(grad: str):
    """The context manager for a grad-mode name: no_grad, enable_grad or inference_mode."""
    if grad == "no_grad":
        return torch.no_grad()
    if grad == "enable_grad":
        return torch.enable_grad()
    if grad == "inference_mode":
        return torch.inference_mode()
    raise ValueError(f"grad={grad!r} is not accepted; choose no_grad, enable_grad or inference_mode")


@dataclass
class BackendResult:
    """What one backend reported, in its own terms and normalised (FLOPs = 2 × MACs)."""

    backend: str
    unit: str                                  # "MAC" or "FLOP": what the tool's own number counts
    raw: float | None                          # the tool's own total, in ``unit``
    flops: float | None                        # normalised to FLOPs
    device: str                                # where it ran: "meta" or "cpu"
    seconds: float
    frame: pd.DataFrame                        # exclusive rows: module, family, op, flops (normalised), calls
    skipped: list[dict[str, Any]] = field(default_factory=list)   # {what, calls, missed_flops, why}
    notes: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)             # what the guard had to put back
    error: str | None = None
    check: dict[str, Any] | None = None                            # the referee's cross-check with FCM

    def skipped_text(self, limit: int = 6) -> str:
        """One line: what this backend skipped (with the FLOPs it missed, where the referee knows them)."""
        if self.error:
            return f"failed: {self.error}"
        parts = []
        for s in self.skipped[:limit]:
            missed = s.get("missed_flops")
            extra = f", missed {missed / 1e9:.3g} GFLOPs" if missed else ""
            parts.append(f"{s['what']} ×{s['calls']}{extra}")
        if len(self.skipped) > limit:
            parts.append(f"… {len(self.skipped) - limit} more")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "unit": self.unit, "raw": self.raw, "flops": self.flops,
                "device": self.device, "seconds": round(self.seconds, 4), "skipped": self.skipped,
                "notes": self.notes, "restored": self.restored, "error": self.error}


def empty_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="object" if c in ("module", "family", "op") else "float64")
                         for c in FRAME_COLUMNS})


def exclusive_from_inclusive(inclusive: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    """Per-module inclusive counts (every ancestor holds its descendants') -> exclusive counts.

    Module paths are dotted; a module's own share is its total minus the totals of the counted
    paths directly below it (its nearest counted descendants: containers such as ``nn.ModuleList``
    are never called, so they never appear), op by op.
    """
    children: dict[str, list[str]] = {}
    for name in inclusive:
        if not name:
            continue
        parent = name
        while parent:
            parent = parent.rsplit(".", 1)[0] if "." in parent else ""
            if parent in inclusive:
                children.setdefault(parent, []).append(name)
                break
    out: dict[str, dict[str, float]] = {}
    for name, ops in inclusive.items():
        own = dict(ops)
        for c in children.get(name, []):
            for op, v in inclusive[c].items():
                own[op] = own.get(op, 0) - v
        out[name] = {op: v for op, v in own.items() if v}
    return out


def timed_run(name: str, unit: str, model: nn.Module, fn: Callable[[], BackendResult]) -> BackendResult:
    """Run ``fn`` with the model preserved; a failure becomes a result with ``error`` set."""
    t0 = time.perf_counter()
    with preserved(model) as snap:
        try:
            result = fn()
        except Exception as exc:  # a backend failing is a finding, reported in its row
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            result = BackendResult(name, unit, None, None, "-", 0.0, empty_frame(),
                                   error=f"{type(exc).__name__}: {msg}"[:300])
    result.restored = list(snap.changes)
    result.seconds = time.perf_counter() - t0
    return result


class Backend:
    """Base class: ``name``, ``unit`` and ``run(job)``."""

    name = "base"
    unit = "FLOP"
    description = ""

    def run(self, job: Job) -> BackendResult:  # pragma: no cover - interface
        raise NotImplementedError


class ForwardWrapper(nn.Module):
    """Holds the user's model as ``model`` and calls its forward function (for hook-based tools)."""

    def __init__(self, model: nn.Module, forward: ForwardFn) -> None:
        super().__init__()
        self.model = model
        self._fn = forward

    def forward(self, x: torch.Tensor) -> Any:
        return self._fn(self.model, x)


def strip_prefix(name: str, prefix: str) -> str | None:
    """``model.backbone`` -> ``backbone`` for prefix ``model``; the prefix itself -> ""; others -> None."""
    if name == prefix:
        return ""
    if name.startswith(prefix + "."):
        return name[len(prefix) + 1:]
    return None
