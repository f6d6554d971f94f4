"""The effective receptive field: where an output cell's gradient mass actually lies.

Definition (declared; Luo et al. 2016 measure the same map):

* the model as given (its own random initialisation, or trained weights), float32, eval mode
  (BatchNorm on running statistics, so the samples do not interact);
* ``samples`` inputs drawn uniformly from [0, 1] (images), from a fixed seed;
* the map M(p) = mean over samples of Σ_channels |∂ Σ_c y_c(cell) / ∂x_c(p)|, the gradient of the
  sum over channels of the centre output cell with respect to each input pixel p;
* the centre: the centre of the cell's theoretical field (its exact box, see
  :mod:`.theoretical`); where that field is global or clipped, the cell's centre in input
  pixels, ((i + ½)·stride − ½, (j + ½)·stride − ½);
* the **effective radius** at share q (default 0.95) is the smallest Chebyshev radius r such that
  the pixels with max(|py − cy|, |px − cx|) ≤ r hold at least q of the map's total mass; the
  **effective field** is the side of that square, 2r + 1 pixels (comparable with the
  theoretical field, which is also a side length in pixels).

A map with no mass at all (a level that does not depend on the input) has radius 0.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .theoretical import Levels, cell_objective


def gradient_maps(model: nn.Module, levels: Levels, shape: tuple[int, int, int, int], samples: int = 8,
                  seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, tuple[int, ...]]]:
    """Per level, the map M (H, W) defined in the module docstring, and the level's output shape."""
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
        dtype = param.dtype if param is not None and param.is_floating_point() else torch.float32
        g = torch.Generator().manual_seed(seed)
        x = torch.rand((samples, *shape[1:]), generator=g).to(device=device, dtype=dtype).requires_grad_(True)
        outs = levels(model, x)
        names = list(outs)
        maps, shapes = {}, {}
        for i, name in enumerate(names):
            out = outs[name]
            (grad,) = torch.autograd.grad(cell_objective(out), x, retain_graph=i < len(names) - 1, allow_unused=True)
            if grad is None:
                grad = torch.zeros_like(x)
            maps[name] = grad.detach().abs().sum(1).mean(0).double().cpu().numpy()     # (H, W)
            shapes[name] = tuple(out.shape)
    finally:
        model.train(was_training)
    return maps, shapes


def chebyshev(shape: tuple[int, int], centre: tuple[float, float]) -> np.ndarray:
    """max(|py − cy|, |px − cx|) for every pixel of an (H, W) grid."""
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    return np.maximum(np.abs(yy - centre[0]), np.abs(xx - centre[1]))


def effective_radius(grad_map: np.ndarray, centre: tuple[float, float], share: float = 0.95) -> float:
    """The smallest Chebyshev radius around ``centre`` holding ``share`` of the map's mass (pixels)."""
    if not 0.0 < share <= 1.0:
        raise ValueError(f"share={share!r} is not accepted; it must lie in (0, 1]")
    total = float(grad_map.sum())
    if total <= 0:
        return 0.0
    dist = chebyshev(grad_map.shape, centre).ravel()
    order = np.argsort(dist, kind="stable")
    d_sorted = dist[order]
    cum = np.cumsum(grad_map.ravel()[order]) / total
    # mass within radius r includes every pixel at distance exactly r: evaluate at the last index of each distance
    last = np.r_[np.flatnonzero(np.diff(d_sorted)), len(d_sorted) - 1]
    hit = last[cum[last] >= share - 1e-12]
    return float(d_sorted[hit[0]])


def mass_within(grad_map: np.ndarray, centre: tuple[float, float], radius: float) -> float:
    """Share of the map's mass within Chebyshev ``radius`` of ``centre``."""
    total = float(grad_map.sum())
    if total <= 0:
        return 0.0
    return float(grad_map[chebyshev(grad_map.shape, centre) <= radius].sum() / total)
