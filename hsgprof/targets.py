"""Resolving what the user wants measured: an HSG-Det preset or any ``package.module:factory``."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from hsgprof.adapters import hsgdet as hsgdet_adapter
from hsgprof.components import ComponentMap
from hsgprof.errors import HsgprofError


def _plain_forward(model: nn.Module, x: torch.Tensor) -> Any:
    return model(x)


def output_loss(out: Any) -> torch.Tensor:
    """A scalar from any model output: the sum of every floating tensor in it."""
    if isinstance(out, torch.Tensor):
        return out.float().sum() if out.is_floating_point() else out.new_zeros((), dtype=torch.float32)
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        parts = [output_loss(o) for o in out]
        if parts:
            return torch.stack([p.to(parts[0].device) for p in parts]).sum()
    raise HsgprofError(f"cannot make a training loss from a model output of type {type(out).__name__}")


def _plain_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return output_loss(model(x))


def _outputs_loss(model: nn.Module, out: Any, x: torch.Tensor) -> torch.Tensor:
    return output_loss(out)


def _no_check(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    return None


@dataclass
class Target:
    """A model to measure, with how to feed it and (if known) its component names."""

    name: str
    model: nn.Module
    default_input: tuple[int, int, int, int]
    components: ComponentMap | None = None
    forward: Callable[[nn.Module, torch.Tensor], Any] = _plain_forward
    loss: Callable[[nn.Module, torch.Tensor], torch.Tensor] = _plain_loss
    config: dict[str, Any] = field(default_factory=dict)
    # A training step in two pieces, for tracers (memory estimator): the network, which runs on
    # fake tensors, and the loss of its outputs, which may need real values (``loss_needs_values``).
    network: Callable[[nn.Module, torch.Tensor], Any] | None = None       # default: ``forward``
    loss_from_outputs: Callable[[nn.Module, Any, torch.Tensor], torch.Tensor] = _outputs_loss
    loss_needs_values: bool = False
    check_input: Callable[[nn.Module, tuple[int, ...], torch.dtype], None] = _no_check


_FACTORY = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def load_target(spec: str, device: str | torch.device = "cpu", **overrides: Any) -> Target:
    """Build the model ``spec`` names on ``device`` ("meta" builds without allocating)."""
    if spec in hsgdet_adapter.presets():
        with torch.device(device):
            model = hsgdet_adapter.build(spec, **overrides)
        return Target(spec, model, hsgdet_adapter.SEED_INPUT, hsgdet_adapter.COMPONENTS,
                      hsgdet_adapter.raw_forward, hsgdet_adapter.training_loss,
                      {"preset": spec, **model.cfg.to_dict()}, network=hsgdet_adapter.network,
                      loss_from_outputs=hsgdet_adapter.loss_from_outputs, loss_needs_values=True,
                      check_input=hsgdet_adapter.check_input)
    if not _FACTORY.match(spec):
        raise HsgprofError(f"unknown target {spec!r}; give a preset ({', '.join(hsgdet_adapter.presets())}) "
                           "or package.module:factory (e.g. torchvision.models:resnet50)")
    if overrides:
        raise HsgprofError(f"config overrides {sorted(overrides)} apply to HSG-Det presets only, not {spec!r}")
    module_name, factory_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise HsgprofError(f"cannot import {module_name!r} for target {spec!r}: {exc}") from None
    factory = getattr(module, factory_name, None)
    if not callable(factory):
        raise HsgprofError(f"{module_name!r} has no callable {factory_name!r} (target {spec!r})")
    try:
        with torch.device(device):
            model = factory()
    except Exception as exc:  # a user's factory can fail in any way; report it in one line
        raise HsgprofError(f"factory {spec!r} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise HsgprofError(f"factory {spec!r} returned {type(model).__name__}, not a torch.nn.Module")
    return Target(spec, model, (1, 3, 224, 224), config={"factory": spec})


def parse_input(text: str, default: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """``BxCxHxW`` or ``HxW`` (batch and channels from ``default``) -> a 4-tuple of positive ints."""
    parts = text.lower().split("x")
    try:
        dims = tuple(int(p) for p in parts)
    except ValueError:
        dims = ()
    if len(dims) not in (2, 4) or any(d <= 0 for d in dims):
        raise HsgprofError(f"--input {text!r} is not accepted; give BxCxHxW or HxW with positive integers, "
                           "e.g. 1x3x1080x1920 or 1080x1920")
    return dims if len(dims) == 4 else (default[0], default[1], dims[0], dims[1])
