"""Receptive fields of every output level of any model: theoretical (exact) and effective (gradient).

>>> from hsgprof.receptive import receptive_fields
>>> res = receptive_fields("hsgdet-tiny", "1x3x64x256", overrides={"variant": "grid-only"})
>>> [(lv.name, lv.stride, lv.theoretical_rf, lv.effective_rf) for lv in res.levels]

A *level* is one output of the model: each level of a detector (HSG-Det: the dense head's P3,
P4 and P5 maps, plus ``queries`` for a model with a query head), or the one output of a plain
model (each spatial map in a dict, list or tuple of outputs is a level; a non-spatial output,
such as a classifier's logits, is one level whose field is the whole input).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from .effective import effective_radius, gradient_maps
from .theoretical import Levels, Support, centre_cell, supports

DEFAULT_SHARE = 0.95
DEFAULT_SAMPLES = 8
MAX_PIXELS = 2 ** 20          # the structural pass grows a clipped input up to this many pixels


@dataclass
class LevelField:
    """One output level's receptive field (pixels of the analysed input)."""

    name: str
    shape: tuple[int, ...]                    # the level's output shape at the analysed input
    stride: float | None                      # input rows per output row (None: not a spatial map)
    cell: tuple[int, int] | None              # the measured output cell (H // 2, W // 2)
    theoretical_rf: int                       # side of the exact field's box (max of its height and width)
    theoretical_hw: tuple[int, int]
    theoretical_clipped: bool                 # the field reached the border of every input tried (a lower bound)
    is_global: bool                           # it filled the whole input at every size tried
    theoretical_input: tuple[int, int]        # input (H, W) at which the theoretical field was read
    centre: tuple[float, float]               # (y, x) in input pixels around which the effective field is measured
    effective_radius: float
    effective_rf: int                         # 2 · radius + 1
    share: float
    mass_outside_theoretical: float           # gradient mass outside the exact box (0 when the box is right)
    grad_map: np.ndarray = field(repr=False)  # (H, W), the effective-field map

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "stride": self.stride, "theoretical_rf": self.theoretical_rf,
                "effective_rf": self.effective_rf, "effective_radius": self.effective_radius,
                "share": self.share, "theoretical_hw": list(self.theoretical_hw),
                "theoretical_clipped": self.theoretical_clipped, "global": self.is_global,
                "theoretical_input": list(self.theoretical_input), "output_shape": list(self.shape),
                "cell": list(self.cell) if self.cell else None, "centre": list(self.centre),
                "mass_outside_theoretical": self.mass_outside_theoretical}


@dataclass
class FieldsResult:
    """Every level's field for one model and input."""

    target: str
    input_shape: tuple[int, int, int, int]
    weights: str                              # "random init (seed s)" or the weights file
    samples: int
    seed: int
    levels: list[LevelField]

    def level(self, name: str) -> LevelField:
        for lv in self.levels:
            if lv.name == name:
                return lv
        raise KeyError(f"no level {name!r}; levels: {', '.join(lv.name for lv in self.levels)}")

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{k: v for k, v in lv.to_dict().items()
                              if k in ("name", "stride", "theoretical_rf", "theoretical_clipped", "global",
                                       "effective_rf", "effective_radius", "share", "mass_outside_theoretical")}
                             for lv in self.levels])

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "input": list(self.input_shape), "weights": self.weights,
                "samples": self.samples, "seed": self.seed,
                "definition": ("theoretical_rf: side in pixels of the exact box of input pixels that can influence the "
                               "centre output cell (positive-weight float64 pass, max pools as windows); "
                               f"effective_rf: 2r+1, r the smallest Chebyshev radius around the field's centre holding "
                               f"the declared share of mean |d(sum of the cell's channels)/d input| over {self.samples} "
                               "uniform [0,1] inputs, eval mode"),
                "levels": [lv.to_dict() for lv in self.levels]}


def output_levels(forward) -> Levels:
    """Levels from a model's own outputs: every tensor in a (nested) dict, list or tuple."""
    def levels(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        _flatten(forward(model, x), "output", out)
        return out
    return levels


def _flatten(obj: Any, name: str, out: dict[str, torch.Tensor]) -> None:
    if isinstance(obj, torch.Tensor):
        if obj.is_floating_point():
            out[name] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _flatten(v, str(k) if name == "output" else f"{name}.{k}", out)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _flatten(v, f"{name}[{i}]", out)


def fields(model: nn.Module, levels: Levels, shape: tuple[int, int, int, int], share: float = DEFAULT_SHARE,
           samples: int = DEFAULT_SAMPLES, seed: int = 0, max_pixels: int = MAX_PIXELS) -> list[LevelField]:
    """Theoretical and effective field of every level of ``model`` at input ``shape``."""
    h, w = shape[-2:]
    first = supports(model, levels, shape, seed)
    chosen: dict[str, tuple[Support, tuple[int, ...], tuple[int, int]]] = {n: (s, o, (h, w)) for n, (s, o) in first.items()}
    always_full = {n: s.full() for n, (s, _) in first.items()}
    size = (h, w)
    while True:
        clipped = [s.touches() for s, _, _ in chosen.values() if s.touches_border()]
        grow = (2 if any(c[0] for c in clipped) else 1, 2 if any(c[1] for c in clipped) else 1)
        if grow == (2, 2) and size[0] != size[1]:              # both axes reached: square up the input first
            grow = (2, 1) if size[0] < size[1] else (1, 2)
        if not clipped or size[0] * grow[0] * size[1] * grow[1] > max_pixels:
            break
        size = (size[0] * grow[0], size[1] * grow[1])        # grow only the axes a field reaches
        grown = supports(model, levels, (1, shape[1], *size), seed)
        for n, (s, o) in grown.items():
            always_full[n] = always_full.get(n, True) and s.full()
            if n in chosen and chosen[n][0].touches_border():
                chosen[n] = (s, o, size)
    maps, out_shapes = gradient_maps(model, levels, shape, samples, seed)
    result = []
    for name, grad_map in maps.items():
        support, sup_shape, at = chosen[name]
        out_shape = out_shapes[name]
        cell = centre_cell(out_shape)
        stride = float(h / out_shape[-2]) if cell is not None else None
        stride_w = float(w / out_shape[-1]) if cell is not None else None
        clipped = support.touches_border()
        centre = _centre(support, sup_shape, at, cell, stride, stride_w, clipped, (h, w))
        radius = effective_radius(grad_map, centre, share)
        th, tw = support.extent
        box_here = _box_at(support, sup_shape, cell, stride, stride_w, clipped, at, (h, w))
        outside = 0.0 if box_here is None else _mass_outside(grad_map, box_here)
        result.append(LevelField(
            name=name, shape=out_shape, stride=_tidy(stride), cell=cell, theoretical_rf=max(th, tw),
            theoretical_hw=(th, tw), theoretical_clipped=clipped, is_global=bool(always_full.get(name, False)),
            theoretical_input=at, centre=centre, effective_radius=radius, effective_rf=int(round(2 * radius + 1)),
            share=share, mass_outside_theoretical=outside, grad_map=grad_map))
    return result


def _tidy(x: float | None) -> float | int | None:
    return int(x) if x is not None and float(x).is_integer() else x


def _offset(support: Support, sup_shape: tuple[int, ...], at: tuple[int, int]) -> tuple[float, float] | None:
    """Centre of the exact box relative to (i · stride_h, j · stride_w) of its cell (at the size it was read)."""
    cell = centre_cell(sup_shape)
    if cell is None or support.box is None:
        return None
    t, l, b, r = support.box
    sh, sw = at[0] / sup_shape[-2], at[1] / sup_shape[-1]
    return ((t + b) / 2 - cell[0] * sh, (l + r) / 2 - cell[1] * sw)


def _centre(support, sup_shape, at, cell, sh, sw, clipped, hw) -> tuple[float, float]:
    if cell is None:
        return ((hw[0] - 1) / 2, (hw[1] - 1) / 2)
    off = None if clipped else _offset(support, sup_shape, at)
    if off is None:
        return ((cell[0] + 0.5) * sh - 0.5, (cell[1] + 0.5) * sw - 0.5)
    return (cell[0] * sh + off[0], cell[1] * sw + off[1])


def _box_at(support, sup_shape, cell, sh, sw, clipped, at, hw) -> tuple[float, float, float, float] | None:
    """The exact box of the analysed input's centre cell (top, left, bottom, right; may extend past the border)."""
    if cell is None or clipped or support.box is None:
        return None
    off = _offset(support, sup_shape, at)
    th, tw = support.extent
    cy, cx = cell[0] * sh + off[0], cell[1] * sw + off[1]
    return (cy - (th - 1) / 2, cx - (tw - 1) / 2, cy + (th - 1) / 2, cx + (tw - 1) / 2)


def _mass_outside(grad_map: np.ndarray, box: tuple[float, float, float, float]) -> float:
    total = float(grad_map.sum())
    if total <= 0:
        return 0.0
    yy, xx = np.mgrid[0:grad_map.shape[0], 0:grad_map.shape[1]]
    t, l, b, r = box
    inside = (yy >= t - 1e-9) & (yy <= b + 1e-9) & (xx >= l - 1e-9) & (xx <= r + 1e-9)
    return float(grad_map[~inside].sum() / total)


def receptive_fields(target: str | nn.Module, input: str | tuple[int, int, int, int] | None = None,
                     share: float = DEFAULT_SHARE, samples: int = DEFAULT_SAMPLES, seed: int = 0,
                     weights: str | None = None, overrides: dict[str, Any] | None = None,
                     max_pixels: int = MAX_PIXELS, levels: Levels | None = None) -> FieldsResult:
    """Fields of a preset, a ``package.module:factory`` or an ``nn.Module`` (see :func:`fields`).

    ``levels``: how to get the output levels from (model, input); default: HSG-Det's dense levels
    (and queries) for a preset, else every floating tensor the model returns.
    """
    from hsgprof.errors import HsgprofError
    from hsgprof.targets import load_target, parse_input

    from hsgprof.adapters import hsgdet as hsgdet_adapter

    if not 0.0 < share <= 1.0:
        raise HsgprofError(f"--share {share!r} is not accepted; give a fraction in (0, 1], e.g. 0.95")
    if samples < 1:
        raise HsgprofError(f"--samples {samples!r} is not accepted; give 1 or more")
    if isinstance(target, nn.Module):
        model, name, default = target, type(target).__name__, (1, 3, 224, 224)
    else:
        torch.manual_seed(seed)
        tgt = load_target(target, **(overrides or {}))
        model, name, default = tgt.model, tgt.name, tgt.default_input
        if target in hsgdet_adapter.presets():
            default = hsgdet_adapter.RF_INPUT[:1] + (model.cfg.in_channels,) + hsgdet_adapter.RF_INPUT[2:]
            levels = levels or hsgdet_adapter.rf_levels
        else:
            levels = levels or output_levels(tgt.forward)
    if levels is None:
        levels = output_levels(lambda m, x: m(x))
    shape = parse_input(input, default) if isinstance(input, str) else tuple(input) if input else default
    if len(shape) != 4 or any(int(d) <= 0 for d in shape):
        raise HsgprofError(f"input {shape!r} is not accepted; give BxCxHxW with positive integers")
    label = f"random init (seed {seed})"
    if weights:
        _load_weights(model, weights)
        label = str(weights)
    try:
        levels_found = fields(model, levels, tuple(int(d) for d in shape), share, samples, seed, max_pixels)
    except (RuntimeError, ValueError) as exc:
        raise HsgprofError(f"{name} does not run on input {'x'.join(map(str, shape))}: {exc}".splitlines()[0]) from None
    return FieldsResult(name, tuple(int(d) for d in shape), label, samples, seed, levels_found)


def _load_weights(model: nn.Module, path: str) -> None:
    """A state dict (or a checkpoint holding one under ``model``), read with ``weights_only=True``."""
    from hsgprof.errors import HsgprofError

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise HsgprofError(f"--weights {path!r} cannot be read ({type(exc).__name__}: {exc})".splitlines()[0]) from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as exc:
        raise HsgprofError(f"--weights {path!r} does not fit the model: {str(exc).splitlines()[0]}") from None
