"""torch's FlopCounterMode: 2 FLOPs per MAC for GEMMs and attention kernels it has formulas for.

It runs on the meta device where the model allows (exact for GEMMs, no allocation) and with real
tensors where it does not (``fcm@cpu`` forces real tensors, the path where fused CPU attention
kernels appear). The referee's counting mode runs beneath it in the same pass, so every op FCM has
no formula for is listed with the FLOPs it missed instead of becoming a silent zero.

FlopCounterMode's module tracker registers autograd hooks on module inputs and raises under
``torch.no_grad()`` when a module is handed a view of a parameter (HSG-Det's sparse head is);
this backend runs under ``enable_grad`` on meta (free there); with real tensors under ``no_grad``
it switches every parameter's ``requires_grad`` off for the run (and restores the flags), which
keeps no activations and takes the same (fused) kernels as a plain ``no_grad`` forward.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from hsgprof.counting import formulas as F
from hsgprof.counting.backends.analytic import tally_frame
from hsgprof.counting.backends.base import (Backend, BackendResult, Job, exclusive_from_inclusive, grad_context,
                                            strip_prefix, timed_run)
from hsgprof.counting.counter import CountingMode, Tally
from hsgprof.counting.tracker import ModuleStack


def _family(op: str) -> str:
    packet = getattr(torch.ops.aten, op.split(".", 1)[1], None) if op.startswith("aten.") else None
    rule = F.lookup(packet) if packet is not None else None
    return rule.family if rule else "other"


def fcm_frame(counts: dict[str, dict[Any, int]], root: str) -> pd.DataFrame:
    """FlopCounterMode's per-module (inclusive) counts -> exclusive rows (module, family, op, flops)."""
    inclusive: dict[str, dict[str, float]] = {}
    for name, ops in counts.items():
        path = strip_prefix(name, root)
        if path is None:
            continue
        inclusive[path] = {str(op): float(v) for op, v in ops.items()}
    rows = [{"module": m, "family": _family(op), "op": op, "flops": v, "calls": None}
            for m, ops in exclusive_from_inclusive(inclusive).items() for op, v in ops.items()]
    return pd.DataFrame(rows, columns=["module", "family", "op", "flops", "calls"])


class FCMBackend(Backend):
    """torch.utils.flop_counter.FlopCounterMode (native unit: FLOPs, 2 per MAC)."""

    unit = "FLOP"
    description = "torch.utils.flop_counter.FlopCounterMode: GEMM and attention-kernel formulas, 2 FLOPs per MAC"

    def __init__(self, device: str = "auto") -> None:
        if device not in ("auto", "meta", "cpu"):
            raise ValueError(f"device={device!r} is not accepted; choose auto, meta or cpu")
        self.device = device
        self.name = "fcm" if device == "auto" else f"fcm@{device}"

    @staticmethod
    def _once(model: torch.nn.Module, x: torch.Tensor, job: Job, grad: str) -> tuple[FlopCounterMode, Tally]:
        tally = Tally()
        fcm = FlopCounterMode(display=False)
        # the referee's mode is entered first, so FlopCounterMode sits on top and dispatches into it
        with grad_context(grad), ModuleStack(model) as stack, CountingMode(stack, tally), fcm:
            job.forward(model, x)
        return fcm, tally

    def run(self, job: Job) -> BackendResult:
        def go() -> BackendResult:
            notes: list[str] = []
            fcm = tally = None
            device = "meta"
            if self.device in ("auto", "meta"):
                model = job.meta_model()
                try:
                    fcm, tally = self._once(model, job.meta_input(), job, "enable_grad")
                except Exception as exc:
                    if self.device == "meta":
                        raise
                    notes.append(f"meta run failed ({type(exc).__name__}); counted with real tensors")
            if fcm is None:
                device = "cpu"
                model = job.real_model()
                flags = [(p, p.requires_grad) for p in model.parameters()]
                frozen = job.grad != "enable_grad" and any(f for _, f in flags)
                if frozen:       # its module tracker would raise on parameter views (see the module docstring)
                    notes.append(f"ran under {job.grad} with every parameter's requires_grad off (restored after): "
                                 "FlopCounterMode's module tracker raises on a parameter view otherwise")
                try:
                    if frozen:
                        for p, _ in flags:
                            p.requires_grad_(False)
                    fcm, tally = self._once(model, job.real_input(), job, job.grad)
                finally:
                    for p, flag in flags:
                        p.requires_grad_(flag)
            total = float(fcm.get_total_flops())
            frame = fcm_frame(fcm.get_flop_counts(), type(model).__name__)
            below = tally_frame(tally)
            missed = below[(below.macs > 0) & below.fcm_flops.isna()]
            skipped = [{"what": op, "calls": int(g.calls.sum()), "missed_flops": float(2 * g.macs.sum()),
                        "why": "no FlopCounterMode formula (counted 0)"} for op, g in missed.groupby("op")]
            notes.append("counts GEMM and attention-kernel work only; non-GEMM ops are 0 by design")
            return BackendResult(self.name, self.unit, total, total, device, 0.0, frame, skipped=skipped, notes=notes)

        return timed_run(self.name, self.unit, job.model, go)
