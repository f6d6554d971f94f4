"""HSG-Det adapter: the seed's component names as module paths, default input, raw forward, loss."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from hsgprof.components import Component, ComponentMap
from hsgprof.errors import HsgprofError

# The seed's table rows (section 3), one module path each; groups are the seed's subtotals.
COMPONENTS = ComponentMap(
    components=(
        Component("Stem", ("backbone.stem",), "Backbone"),
        Component("P3 stage", ("backbone.p3",), "Backbone"),
        Component("P4 stage", ("backbone.p4",), "Backbone"),
        Component("P5 stage", ("backbone.p5",), "Backbone"),
        Component("Global block", ("backbone.global_block",), "Backbone"),
        Component("PAN path", ("neck.pan",), "Neck"),
        Component("Token extractor", ("neck.token_extractor",), "Neck"),
        Component("Token fusion", ("neck.token_fusion",), "Neck"),
        Component("Dense head", ("head.dense",), "Head"),
        Component("Sparse head", ("head.sparse",), "Head"),
    ),
    groups=("Backbone", "Neck", "Head"),
)

# "Global reasoning" in the seed's sense: everything outside the grid path.
GLOBAL_REASONING = ("Global block", "Token extractor", "Token fusion", "Sparse head")

SEED_INPUT = (1, 3, 1080, 1920)


def presets() -> tuple[str, ...]:
    from hsgdet import PRESETS

    return tuple(PRESETS)


def build(preset: str, **overrides: Any) -> nn.Module:
    """Build a preset; hsgdet's ValueError becomes the toolkit's one-line error."""
    from hsgdet import build_model

    try:
        return build_model(preset, **overrides)
    except ValueError as exc:
        raise HsgprofError(str(exc)) from None


def raw_forward(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The network without post-processing (what FLOP/latency figures measure, as YOLO's do)."""
    return model(x, output_mode="raw")


def training_loss(model: nn.Module, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A training step's loss on synthetic targets (a few boxes per image), model in train mode."""
    b, _, h, w = x.shape
    g = torch.Generator().manual_seed(seed)
    targets = []
    for _ in range(b):
        n = 8
        wh = torch.rand(n, 2, generator=g) * 0.3 + 0.05
        c = torch.rand(n, 2, generator=g) * (1 - wh) + wh / 2
        xyxy = torch.cat((c - wh / 2, c + wh / 2), 1) * torch.tensor([w, h, w, h])
        labels = torch.randint(0, model.cfg.num_classes, (n,), generator=g)
        targets.append({"boxes": xyxy.to(x.device), "labels": labels.to(x.device)})
    return model(x, targets)["loss"]
