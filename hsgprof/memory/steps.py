"""What one step is, for any target: precisions, optimizers, and how to split a training step.

A training step is ``network(model, x) -> outputs`` (runs on fake tensors: no values needed) and
``loss(model, outputs, x) -> scalar`` (may need values: run on real stand-ins when the target says
so). For any ``package.module:factory`` target the network is the target's forward and the loss
is the sum of its floating outputs. HSG-Det's loss matches predictions to synthetic targets, so
its loss runs materialised; its network is ``preprocess`` + ``forward_raw`` (``forward`` also
checks that every pixel is finite, which needs values).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from hsgprof.adapters import hsgdet as hsgdet_adapter
from hsgprof.errors import HsgprofError
from hsgprof.targets import Target, output_loss

# name -> (parameter dtype, autocast dtype or None, uses a gradient scaler)
PRECISIONS: dict[str, tuple[torch.dtype, torch.dtype | None, bool]] = {
    "fp32": (torch.float32, None, False),
    "bf16": (torch.bfloat16, None, False),           # weights, activations, optimizer state in bf16
    "fp16": (torch.float16, None, False),            # pure half (inference latency; no scaler)
    "fp16-amp": (torch.float32, torch.float16, True),  # autocast fp16, fp32 master weights, GradScaler
    "bf16-amp": (torch.float32, torch.bfloat16, False),
}
OPTIMIZERS = ("sgd", "adam", "adamw")
MODES = ("inference", "train")


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


def _no_check(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    return None


def is_hsgdet(target: Target) -> bool:
    return target.components is hsgdet_adapter.COMPONENTS


def synthetic_targets(batch: int, h: int, w: int, num_classes: int, seed: int = 0,
                      per_image: int = 8) -> list[dict[str, torch.Tensor]]:
    """The adapter's synthetic training targets (a few boxes per image, xyxy pixels)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batch):
        wh = torch.rand(per_image, 2, generator=g) * 0.3 + 0.05
        c = torch.rand(per_image, 2, generator=g) * (1 - wh) + wh / 2
        xyxy = torch.cat((c - wh / 2, c + wh / 2), 1) * torch.tensor([w, h, w, h])
        labels = torch.randint(0, num_classes, (per_image,), generator=g)
        out.append({"boxes": xyxy, "labels": labels})
    return out


def _hsgdet_network(model: nn.Module, x: torch.Tensor) -> Any:
    xp, _ = model.preprocess(x)
    return model.forward_raw(xp)


def _anchor_points(model: nn.Module, hp: int, wp: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense head's anchor centres and strides for a (hp, wp) network input.

    They depend on shapes only; recomputing them gives the loss's matching real anchor positions
    (random stand-ins would leave every object without positives, and the box branch without
    gradients). Level sizes follow the stride-2 convs: 5 halvings, rounding up.
    """
    dims, h, w = {}, hp, wp
    for stride in (2, 4, 8, 16, 32):
        h, w = -(-h // 2), -(-w // 2)
        dims[stride] = (h, w)
    points, strides = [], []
    for s in model.head.dense.strides:
        lh, lw = dims[s]
        ys, xs = torch.meshgrid(torch.arange(lh), torch.arange(lw), indexing="ij")
        points.append((torch.stack((xs, ys), -1).reshape(-1, 2).float() + 0.5) * s)
        strides.append(torch.full((lh * lw, 1), float(s)))
    return torch.cat(points), torch.cat(strides)


def _hsgdet_loss(model: nn.Module, raw: Any, x: torch.Tensor) -> torch.Tensor:
    b, _, h, w = x.shape
    with torch.device("meta"):
        _, meta = model.preprocess(torch.empty(tuple(x.shape)))
    (hp, wp), (top, left) = meta.input_size, meta.offset
    dense = raw.get("dense") if isinstance(raw, dict) else None
    if dense is not None and getattr(model.head, "dense", None) is not None:
        points, strides = _anchor_points(model, hp, wp)
        if points.shape == dense["points"].shape:
            dense["points"] = points.to(dense["points"].dtype)
            dense["strides"] = strides.to(dense["strides"].dtype)
    shift = torch.tensor([left, top, left, top], dtype=torch.float32)
    targets = [{"boxes": t["boxes"] + shift, "labels": t["labels"]}
               for t in synthetic_targets(b, h, w, model.cfg.num_classes)]
    return model.detection.loss(raw, targets, model.detection.matching, (hp, wp))["loss"]


def _hsgdet_check(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    try:
        model.validate_images(torch.empty(shape, dtype=dtype, device="meta"))
    except ValueError as exc:
        raise HsgprofError(f"the model rejects input {'x'.join(map(str, shape))}: {exc}") from None


def step_functions(target: Target) -> StepFunctions:
    """The step pieces for ``target`` (HSG-Det presets get the split described above)."""
    if is_hsgdet(target):
        return StepFunctions(_hsgdet_network, _hsgdet_loss, True, _hsgdet_check)
    fwd = target.forward
    return StepFunctions(lambda m, x: fwd(m, x), lambda m, out, x: output_loss(out), False, _no_check)
