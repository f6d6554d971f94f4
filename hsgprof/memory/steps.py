"""What one step is, for any target: precisions, optimizers, and how to split a training step.

A training step is ``network(model, x) -> outputs`` (runs on fake tensors: no values needed) and
``loss(model, outputs, x) -> scalar`` (may need values: run on real stand-ins when the target says
so). Both come from the :class:`~hsgprof.targets.Target`: for any ``package.module:factory`` the
network is the target's forward and the loss is the sum of its floating outputs; HSG-Det's
adapter supplies its own (a loss that matches predictions to synthetic targets, run materialised).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from hsgprof.errors import HsgprofError
from hsgprof.memory import choices
from hsgprof.targets import Target

# name -> (parameter dtype, autocast dtype or None, uses a gradient scaler)
PRECISIONS: dict[str, tuple[torch.dtype, torch.dtype | None, bool]] = {
    "fp32": (torch.float32, None, False),
    "bf16": (torch.bfloat16, None, False),           # weights, activations, optimizer state in bf16
    "fp16": (torch.float16, None, False),            # pure half (inference latency; no scaler)
    "fp16-amp": (torch.float32, torch.float16, True),  # autocast fp16, fp32 master weights, GradScaler
    "bf16-amp": (torch.float32, torch.bfloat16, False),
}
if tuple(PRECISIONS) != choices.PRECISIONS:    # the CLI's help reads choices without importing torch
    raise RuntimeError(f"hsgprof.memory.choices.PRECISIONS {choices.PRECISIONS} differs from {tuple(PRECISIONS)}")
OPTIMIZERS = choices.OPTIMIZERS
MODES = choices.MODES


@dataclass(frozen=True)
class Precision:
    name: str
    param_dtype: torch.dtype
    autocast_dtype: torch.dtype | None
    grad_scaler: bool


def get_precision(name: str) -> Precision:
    if name not in PRECISIONS:
        raise HsgprofError(f"unknown precision {name!r}; accepted: {', '.join(PRECISIONS)}")
    return Precision(name, *PRECISIONS[name])


def check_optimizer(name: str) -> str:
    if name not in OPTIMIZERS:
        raise HsgprofError(f"unknown optimizer {name!r}; accepted: {', '.join(OPTIMIZERS)} "
                           "(sgd means SGD with momentum 0.9)")
    return name


def check_mode(name: str) -> str:
    if name not in MODES:
        raise HsgprofError(f"unknown mode {name!r}; accepted: {', '.join(MODES)}")
    return name


def make_optimizer(name: str, params: list[nn.Parameter], foreach: bool | None = None) -> torch.optim.Optimizer:
    """The optimizer a training step uses (default hyper-parameters; state size is what matters)."""
    check_optimizer(name)
    if name == "sgd":
        return torch.optim.SGD(params, lr=0.01, momentum=0.9, foreach=foreach)
    if name == "adam":
        return torch.optim.Adam(params, lr=1e-3, foreach=foreach)
    return torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05, foreach=foreach)


def optimizer_state_per_param(name: str) -> int:
    """Optimizer state tensors per parameter (momentum: 1; Adam/AdamW: exp_avg, exp_avg_sq)."""
    return {"sgd": 1, "adam": 2, "adamw": 2}[check_optimizer(name)]


@dataclass
class StepFunctions:
    """How to run a target's step in pieces the estimator can trace."""

    network: Callable[[nn.Module, torch.Tensor], Any]
    loss: Callable[[nn.Module, Any, torch.Tensor], torch.Tensor]
    loss_needs_values: bool
    check_input: Callable[[nn.Module, tuple[int, ...], torch.dtype], None]


def step_functions(target: Target) -> StepFunctions:
    """The step pieces ``target`` declares (its adapter's, or forward + sum of outputs)."""
    return StepFunctions(target.network or target.forward, target.loss_from_outputs,
                         target.loss_needs_values, target.check_input)
