"""Sweeps (FLOPs versus input size or a config field) and forward/backward/training-step counts.

Every sweep point is a full referee count (meta device) and, when asked, FlopCounterMode beside
it; rows are tidy (one per point and input mode) with the global-reasoning share for HSG-Det.
Backward work is measured, never assumed to be 2× the forward: the referee prices every backward
op (phase ``backward``) and FlopCounterMode counts the same step.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from hsgprof.adapters import hsgdet as hsgdet_adapter
from hsgprof.counting.api import CountResult, count
from hsgprof.counting.backends.analytic import fcm_check, tally_frame
from hsgprof.counting.backends.base import grad_context
from hsgprof.counting.counter import CountingMode, Tally
from hsgprof.counting.guard import preserved
from hsgprof.counting.tracker import ModuleStack
from hsgprof.targets import load_target


def summary_row(res: CountResult) -> dict[str, Any]:
    """Totals of one count (and, for HSG-Det, each global-reasoning component and their share)."""
    row = {"mode": res.mode, "input": "x".join(map(str, res.input_shape)),
           "network_input": "x".join(map(str, res.network_input)), "params": res.params, "macs": res.macs,
           "flops": res.flops, "flops_all": res.flops_all, "referee_device": res.referee.device,
           "check": res.check.get("status")}
    for name, b in res.backends.items():
        if not name.startswith("analytic"):
            row[f"{name}_flops"] = b.flops
    if res.seed_columns:
        t = res.table("component").set_index("component")
        for c in hsgdet_adapter.GLOBAL_REASONING:
            row[f"{c} flops"] = float(t.referee_gemm_flops.get(c, 0.0))
        share = res.global_share or {}
        row.update(global_flops=share.get("gemm_flops"), global_share=share.get("share"),
                   global_share_all=share.get("share_all"))
    return row


def sweep_inputs(preset: str, inputs: Iterable[str], modes: Sequence[str] = ("native",),
                 backends: str = "analytic", **overrides: Any) -> list[dict[str, Any]]:
    """FLOPs of one preset at several input sizes (``HxW`` or ``BxCxHxW``), per input mode."""
    rows = []
    for mode in modes:
        target = load_target(preset, device="meta", input_mode=mode, **overrides)
        target.model.eval()
        for inp in inputs:
            res = count(target, inp, backends=backends)
            rows.append({"sweep": "input", "value": inp, **summary_row(res)})
    return rows


def sweep_config(preset: str, field: str, values: Iterable[Any], input: str | None = None,
                 modes: Sequence[str] = ("native",), backends: str = "analytic",
                 **overrides: Any) -> list[dict[str, Any]]:
    """FLOPs of one preset as one config field varies (e.g. num_tokens, num_queries, decoder_layers)."""
    rows = []
    for value in values:
        for mode in modes:
            res = count(preset, input, mode, backends, **{**overrides, field: value})
            shown = "+".join(value) if isinstance(value, (tuple, list)) else value
            rows.append({"sweep": field, "value": shown, **summary_row(res)})
    return rows


def count_step(model: nn.Module, step: Callable[[nn.Module, torch.Tensor], torch.Tensor], x: torch.Tensor,
               with_fcm: bool = True) -> dict[str, Any]:
    """Price one training step ``step(model, x) -> loss`` then ``loss.backward()``.

    Returns the referee's forward and backward MACs / FLOPs (GEMM and all) and, with ``with_fcm``,
    FlopCounterMode's total for the whole step and for the forward alone (so its backward is their
    difference: measured, not assumed). The model's state is preserved (BN statistics, flags).
    """
    out: dict[str, Any] = {}
    with preserved(model):
        tally = Tally()
        t0 = time.perf_counter()
        with grad_context("enable_grad"), ModuleStack(model) as stack, CountingMode(stack, tally) as mode:
            loss = step(model, x)
            mode.phase = "backward"
            loss.backward()
        out["referee_seconds"] = time.perf_counter() - t0
        model.zero_grad(set_to_none=True)
        frame = tally_frame(tally)
        for phase in ("forward", "backward"):
            f = frame[frame.phase == phase]
            out[f"{phase}_macs"] = int(f.macs.sum())
            out[f"{phase}_flops"] = int(f.flops.sum())
            out[f"{phase}_flops_all"] = int(f.flops.sum() + f.other_flops.sum())
        out["backward_over_forward"] = out["backward_flops"] / out["forward_flops"] if out["forward_flops"] else None
        out["check"] = fcm_check(frame)["status"]
        out["unknown_ops"] = dict(tally.unknown)
        if with_fcm:
            with grad_context("enable_grad"), FlopCounterMode(display=False) as fcm:
                loss = step(model, x)
                loss.backward()
            model.zero_grad(set_to_none=True)
            with grad_context("enable_grad"), FlopCounterMode(display=False) as fwd:
                step(model, x)
            out["fcm_step_flops"] = int(fcm.get_total_flops())
            out["fcm_forward_flops"] = int(fwd.get_total_flops())
            out["fcm_backward_flops"] = out["fcm_step_flops"] - out["fcm_forward_flops"]
    return out
