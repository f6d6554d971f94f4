"""What the grid-only model can see on the declared canvas: its receptive fields against the key gap.

The design rule (:class:`~hsgprof.experiments.config.Design`): the key lies farther from every
object (``key_gap``, Chebyshev pixels between the key and the object's box) than the grid-only
model's effective receptive-field radius at every dense level. The fields are measured with
:mod:`hsgprof.receptive` on the validation canvas, with random weights (the declared check) and
with each trained grid-only run's weights (reported beside it: training can widen a field).
"""

from __future__ import annotations

from typing import Any

from hsgprof.experiments.config import ExperimentConfig


def grid_fields(cfg: ExperimentConfig, state_dict: dict | None = None, seed: int = 0, grow: bool = True,
                extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The grid-only model's fields per dense level on ``cfg``'s validation canvas, and the design check."""
    import torch

    from hsgprof.adapters.hsgdet import rf_levels
    from hsgprof.adapters.hsgdet_experiments import build_model
    from hsgprof.receptive import fields
    from hsgprof.receptive.api import MAX_PIXELS

    torch.manual_seed(seed)
    model = build_model(cfg.preset, variant="grid-only", **{**cfg.model_kwargs(), **(extra or {})})
    if state_dict is not None:
        model.load_state_dict(state_dict)
    sc = cfg.val_scene
    shape = (1, model.cfg.in_channels, sc.height, sc.width)
    levels = fields(model, rf_levels, shape, cfg.design.share, cfg.design.samples, seed,
                    MAX_PIXELS if grow else 0)
    return {"input": list(shape), "share": cfg.design.share, "samples": cfg.design.samples,
            "weights": "trained" if state_dict is not None else f"random init (seed {seed})",
            "levels": [lv.to_dict() for lv in levels], **design_check(cfg, levels)}


def design_check(cfg: ExperimentConfig, levels) -> dict[str, Any]:
    """key_gap against the largest effective radius over the dense levels."""
    radii = {lv.name if hasattr(lv, "name") else lv["name"]:
             lv.effective_radius if hasattr(lv, "effective_radius") else lv["effective_radius"] for lv in levels}
    worst = max(radii.values()) if radii else float("nan")
    gap = cfg.val_scene.key_gap
    return {"key_gap": gap, "max_effective_radius": worst, "key_outside_effective_field": bool(gap > worst),
            "radii": radii}
