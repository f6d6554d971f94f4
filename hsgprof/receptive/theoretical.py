"""The theoretical receptive field: which input pixels can influence an output cell at all.

Exact for networks built of convolutions, pooling, up-sampling, concatenation and addition,
whatever the paths (a PAN's top-down and bottom-up routes, skip connections): the field of a
cell is the union over every path, computed by the network itself rather than by a formula.

How: a *structural copy* of the model is run once in float64, in eval mode, with every weight
replaced by a positive random value (scaled by its fan-in so activations stay O(1)), BatchNorm
statistics reset to (0, 1), and every max-pool replaced by the average pool of the same
window (a max sends gradient only to its arg-max; its *field* is its whole window). With
positive weights and a positive input every path contributes a positive term to
∂(output cell)/∂(input pixel), so no two paths can cancel, and the gradient is non-zero
exactly on the pixels some path reaches; zero padding gives exact zeros everywhere else. The
field is the bounding box of that support (its union over paths is a box for every network of
the ops above; a non-box support is reported by its bounding box and its fill fraction).

Data-dependent ops (top-k token selection, attention) are followed for the random draw; a
softmax over all positions makes a field global. A field that reaches the input's border is
clipped: the analysis is repeated on larger inputs until it is not (``max_side``), and a field
that fills the whole input at every size tried is reported as global.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

Levels = Callable[[nn.Module, torch.Tensor], dict[str, torch.Tensor]]


class MaxPoolAsWindow(TorchFunctionMode):
    """Inside this mode every max pool is computed as the mean over the same window (same support)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in (F.max_pool1d, F.max_pool2d, F.max_pool3d, F.max_pool1d_with_indices,
                    F.max_pool2d_with_indices, F.max_pool3d_with_indices):
            return _window_mean(func, *args, **kwargs)
        if func in (F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d):
            x, size = args[0], args[1] if len(args) > 1 else kwargs["output_size"]
            dims = x.dim() - 2
            return {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}[dims](x, size)
        return func(*args, **kwargs)


def _window_mean(func, x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                 return_indices=False):
    dims = x.dim() - 2
    tup = (lambda v: tuple(v) if isinstance(v, (tuple, list)) else (v,) * dims)
    k, p, d = tup(kernel_size), tup(padding), tup(dilation)
    s = tup(stride) if stride not in (None, [], ()) else k
    if all(v == 1 for v in d):
        pool = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[dims]
        return pool(x, k, s, p, ceil_mode, True)
    if ceil_mode:
        raise NotImplementedError("receptive field of a dilated max pool with ceil_mode is not supported")
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[dims]
    c = x.shape[1]
    weight = x.new_ones((c, 1, *k)) / float(torch.tensor(k).prod())
    return conv(x, weight, None, s, p, d, c)


def structural_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A float64 eval-mode copy with positive random weights (the original is untouched)."""
    m = copy.deepcopy(model).double().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            fan_in = p[0].numel() if p.dim() > 1 else 1
            p.copy_((torch.rand(p.shape, generator=g, dtype=torch.float64) + 0.5) / fan_in)
        for mod in m.modules():
            if isinstance(mod, nn.modules.batchnorm._NormBase) and mod.track_running_stats:
                mod.running_mean.zero_()
                mod.running_var.fill_(1.0)
    return m


@dataclass
class Support:
    """The pixels that can influence one output cell (per level), at one input size."""

    mask: torch.Tensor                   # (H, W) bool
    box: tuple[int, int, int, int] | None   # (top, left, bottom, right), inclusive; None: empty

    @property
    def extent(self) -> tuple[int, int]:
        if self.box is None:
            return (0, 0)
        t, l, b, r = self.box
        return (b - t + 1, r - l + 1)

    def touches_border(self) -> bool:
        return any(self.touches())

    def touches(self) -> tuple[bool, bool]:
        """(reaches the top or bottom border, reaches the left or right border)."""
        if self.box is None:
            return (False, False)
        h, w = self.mask.shape
        t, l, b, r = self.box
        return (t == 0 or b == h - 1, l == 0 or r == w - 1)

    def full(self) -> bool:
        return bool(self.mask.all())


def centre_cell(shape: tuple[int, ...]) -> tuple[int, int] | None:
    """The cell whose field is measured: (H // 2, W // 2) of a (B, C, H, W) map; None if not spatial."""
    return (shape[-2] // 2, shape[-1] // 2) if len(shape) == 4 else None


def cell_objective(out: torch.Tensor) -> torch.Tensor:
    """Sum over channels (and batch) of the centre cell of a map, or of the whole of a non-spatial output."""
    cell = centre_cell(tuple(out.shape))
    if cell is None:
        return out.sum()
    return out[..., cell[0], cell[1]].sum()


def supports(model: nn.Module, levels: Levels, shape: tuple[int, int, int, int], seed: int = 0
             ) -> dict[str, tuple[Support, tuple[int, ...]]]:
    """Per level: the exact support of its centre cell at input ``shape`` (batch 1), and the level's shape."""
    m = structural_copy(model, seed)
    g = torch.Generator().manual_seed(seed + 1)
    x = (torch.rand((1, *shape[1:]), generator=g, dtype=torch.float64) + 0.5).requires_grad_(True)
    with MaxPoolAsWindow():
        outs = levels(m, x)
        result = {}
        names = list(outs)
        for i, name in enumerate(names):
            out = outs[name]
            (grad,) = torch.autograd.grad(cell_objective(out), x, retain_graph=i < len(names) - 1,
                                          allow_unused=True)
            mask = (grad.abs().sum((0, 1)) > 0) if grad is not None else torch.zeros(shape[-2:], dtype=torch.bool)
            result[name] = (Support(mask, _bbox(mask)), tuple(out.shape))
    return result


def _bbox(mask: torch.Tensor) -> tuple[int, int, int, int] | None:
    rows = torch.nonzero(mask.any(1)).flatten()
    cols = torch.nonzero(mask.any(0)).flatten()
    if len(rows) == 0:
        return None
    return (int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1]))
