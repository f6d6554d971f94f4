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


def reference_presets() -> tuple[str, ...]:
    """The rebuilt published detectors (every preset whose name ends in ``-ref``), as they exist now."""
    return tuple(p for p in presets() if p.endswith("-ref"))


def primary() -> str:
    """The primary reading's preset (what ``hsgdet-l`` is an alias of; docs/readings.md)."""
    from hsgdet.config import PRIMARY

    return PRIMARY


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


def synthetic_targets(batch: int, h: int, w: int, num_classes: int, seed: int = 0,
                      per_image: int = 8) -> list[dict[str, torch.Tensor]]:
    """Seeded training targets for profiling: ``per_image`` boxes per image (xyxy pixels)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batch):
        wh = torch.rand(per_image, 2, generator=g) * 0.3 + 0.05
        c = torch.rand(per_image, 2, generator=g) * (1 - wh) + wh / 2
        xyxy = torch.cat((c - wh / 2, c + wh / 2), 1) * torch.tensor([w, h, w, h])
        labels = torch.randint(0, num_classes, (per_image,), generator=g)
        out.append({"boxes": xyxy, "labels": labels})
    return out


def training_loss(model: nn.Module, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A training step's loss on synthetic targets, model in train mode."""
    b, _, h, w = x.shape
    targets = [{k: v.to(x.device) for k, v in t.items()}
               for t in synthetic_targets(b, h, w, model.cfg.num_classes, seed)]
    return model(x, targets)["loss"]


# The same step in two pieces, for tracers that run the network on fake tensors and the loss
# (whose matching needs values) on real stand-ins: network = preprocess + forward_raw (forward
# itself checks that every pixel is finite, which needs values), loss = matching + losses.

def network(model: nn.Module, x: torch.Tensor) -> Any:
    """Preprocess and the network's raw outputs, with no value-dependent input checks."""
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


def loss_from_outputs(model: nn.Module, raw: Any, x: torch.Tensor) -> torch.Tensor:
    """The training loss of ``network``'s outputs against synthetic targets."""
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


def check_input(model: nn.Module, shape: tuple[int, ...], dtype: torch.dtype) -> None:
    """Raise the toolkit's one-line error if the model rejects an input of this shape and dtype."""
    try:
        model.validate_images(torch.empty(shape, dtype=dtype, device="meta"))
    except ValueError as exc:
        raise HsgprofError(f"the model rejects input {'x'.join(map(str, shape))}: {exc}") from None


def chassis_facts(preset: str, **overrides: Any) -> dict[str, Any]:
    """What a preset's chassis is made of, from its config alone (no model is built).

    ``channels``: output widths of stem, P3, P4, P5 after the width multiplier; ``depths``: CSP depths
    (stride 4, P3, P4, P5) after the depth multiplier; ``neck_depth``: the PAN blocks' depth.
    """
    from hsgdet import get_config
    from hsgdet.backbone import scaled_channels, scaled_depth

    try:
        cfg = get_config(preset, **overrides)
    except ValueError as exc:
        raise HsgprofError(str(exc)) from None
    c0, _, c3, c4, c5 = scaled_channels(cfg)
    return {"channels": (c0, c3, c4, c5), "depths": tuple(scaled_depth(n, cfg) for n in cfg.depths),
            "neck_depth": max(round(cfg.neck_depth * cfg.depth_mult), 1), "csp_block": cfg.csp_block,
            "pan": cfg.pan, "dense_head": cfg.dense_head, "stem_kernel": cfg.stem_kernel}


# The fields of HSGDetConfig when GPU results first recorded fingerprints. A field added since is
# hashed only when it differs from its default, so adding a field never changes the fingerprint of
# a model that already existed (its GPU results stay attributed to it).
FINGERPRINTED_FIELDS = frozenset({
    "channels", "csp_block", "d_model", "decoder_ffn", "decoder_heads", "decoder_layers", "dense_head", "depth_mult",
    "depths", "dropout", "extra_input_planes", "focal_alpha", "focal_gamma", "fusion_ffn", "fusion_heads",
    "fusion_layers", "global_dim", "global_ffn", "global_heads", "global_layers", "input_mode", "loss_dense_box",
    "loss_dense_cls", "loss_dense_dfl", "loss_sparse_cls", "loss_sparse_giou", "loss_sparse_l1", "loss_token",
    "match_cost_class", "match_cost_giou", "match_cost_l1", "max_detections", "neck_depth", "nms_iou", "num_classes",
    "num_queries", "num_tokens", "output_mode", "pad_multiple", "pad_value", "pan", "pre_nms_topk", "reg_max",
    "score_threshold", "stem_kernel", "tal_alpha", "tal_beta", "tal_topk", "token_scales", "variant", "width_mult"})


def fingerprint_fields(cfg: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """What a fingerprint hashes: every field but the name, a field newer than the fingerprints only
    when it differs from its default."""
    return {k: v for k, v in cfg.items()
            if k != "name" and (k in FINGERPRINTED_FIELDS or k not in defaults or v != defaults[k])}


def config_fingerprint(preset: str, **overrides: Any) -> str:
    """A short hash of the config (:func:`fingerprint_fields`): equal fingerprints, equal models.

    GPU results record it per target, so a result is never attributed to a preset whose meaning
    has changed since it was measured (``hsgdet-l`` follows the primary reading).
    """
    import dataclasses
    import hashlib
    import json

    from hsgdet import HSGDetConfig, get_config

    try:
        cfg = get_config(preset, **overrides).to_dict()
    except ValueError as exc:
        raise HsgprofError(str(exc)) from None
    defaults = {f.name: f.default for f in dataclasses.fields(HSGDetConfig)}
    blob = json.dumps(fingerprint_fields(cfg, defaults), sort_keys=True, default=list)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


# Receptive fields (``hsgprof rf``): a smaller default input than the seed's, because the exact
# (float64) pass backpropagates through the whole network; conv fields do not depend on it.
RF_INPUT = (1, 3, 640, 640)
LEVEL_NAMES = ("P3", "P4", "P5")


def rf_levels(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Each output level's map: the dense head's box and class outputs per PAN level
    (``P3``/``P4``/``P5``: (B, 4·reg_max + classes, H/s, W/s)), and ``queries``, the last decoder
    layer's class logits (B, N, classes), for a model with a query head."""
    xp, _ = model.preprocess(x)
    feats = model.backbone(xp)
    out: dict[str, torch.Tensor] = {}
    if model.neck.pan is not None:
        dense = model.head.dense
        for name, f, box, cls in zip(LEVEL_NAMES, model.neck.pan(feats), dense.box, dense.cls):
            out[name] = torch.cat((box(f), cls(f)), 1)
    if model.neck.token_extractor is not None:
        tokens = model.neck.token_extractor(feats)
        out["queries"] = model.head.sparse(model.neck.token_fusion(tokens.memory))["logits"][-1]
    return out
