"""HSG-Det assembled: backbone -> neck (PAN + sparse tokens) -> heads -> matching/output.

Module paths carry the seed's component names (``backbone.stem`` … ``head.sparse``), so any
profiler can group by path. ``model(images, targets)`` in train mode returns named losses; in
eval mode it returns detections per image; ``output_mode="raw"`` returns the head tensors
(what profilers measure: the network without post-processing, as YOLO's FLOP figures are).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .backbone import Backbone, _direct
from .config import HSGDetConfig, get_config
from .heads import Head
from .loss import HSGDetLoss
from .matching import AdaptiveMatcher
from .neck import Neck
from .postprocess import Detections, InputMeta, OutputHead

MIN_SIZE = 32           # the largest stride: smaller images have no P5 cell


class Detection(nn.Module):
    """The seed's "Detection" block: adaptive matching, losses and output (no parameters)."""

    def __init__(self, cfg: HSGDetConfig) -> None:
        super().__init__()
        self.matching = AdaptiveMatcher(cfg.tal_topk, cfg.tal_alpha, cfg.tal_beta, cfg.match_cost_class,
                                        cfg.match_cost_l1, cfg.match_cost_giou, cfg.focal_alpha,
                                        cfg.focal_gamma)
        self.loss = HSGDetLoss(cfg)
        self.output = OutputHead(cfg)


class HSGDet(nn.Module):
    """The hybrid sparse-global detector (and its grid-only / sparse-only variants)."""

    def __init__(self, cfg: HSGDetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.backbone = Backbone(cfg)
        self.neck = Neck(cfg, self.backbone.out_channels)
        self.head = Head(cfg, self.neck.pan.out_channels if self.neck.pan is not None else None)
        self.detection = Detection(cfg)

    # ----------------------------------------------------------------------------- inputs
    def preprocess(self, images: torch.Tensor) -> tuple[torch.Tensor, InputMeta]:
        """Letterbox to a multiple of ``pad_multiple`` in ``padded`` mode; identity in ``native``."""
        h, w = images.shape[-2:]
        if self.cfg.input_mode == "native":
            return images, InputMeta((h, w), (h, w), (0, 0))
        m = self.cfg.pad_multiple
        hp, wp = math.ceil(h / m) * m, math.ceil(w / m) * m
        top, left = (hp - h) // 2, (wp - w) // 2
        padded = F.pad(images, (left, wp - w - left, top, hp - h - top), value=self.cfg.pad_value)
        return padded, InputMeta((h, w), (hp, wp), (top, left))

    def validate_images(self, images: Any) -> None:
        """Raise ValueError (naming the bad value) unless images is a finite float [B,C,H,W], C = 3 + extra planes."""
        c = self.cfg.in_channels
        if not isinstance(images, torch.Tensor):
            raise ValueError(f"images must be a torch.Tensor [B,{c},H,W], got {type(images).__name__}")
        if images.dim() != 4 or images.shape[1] != c:
            raise ValueError(f"images must have shape [B,{c},H,W], got {list(images.shape)}")
        if not images.is_floating_point():
            raise ValueError(f"images must be a floating-point tensor (0..1 pixels), got {images.dtype}")
        h, w = images.shape[-2:]
        if h < MIN_SIZE or w < MIN_SIZE:
            raise ValueError(f"image size {h}x{w} is below the largest stride; H and W must be >= {MIN_SIZE}")
        if images.shape[0] == 0:
            raise ValueError("images has batch size 0; B must be >= 1")
        if images.device.type != "meta" and not torch.isfinite(images).all():
            raise ValueError("images contain NaN or inf; every pixel must be finite")

    def validate_targets(self, targets: Any, images: torch.Tensor) -> None:
        """Raise ValueError unless targets is one {"boxes": [n,4] xyxy, "labels": [n]} per image."""
        b, _, h, w = images.shape
        if not isinstance(targets, (list, tuple)) or len(targets) != b:
            raise ValueError(f"targets must be a list of {b} dicts (one per image), got "
                             f"{type(targets).__name__}" + (f" of length {len(targets)}"
                                                            if isinstance(targets, (list, tuple)) else ""))
        for i, t in enumerate(targets):                    # structure: shapes and types, no values read
            if not isinstance(t, dict) or "boxes" not in t or "labels" not in t:
                raise ValueError(f"targets[{i}] must be a dict with 'boxes' and 'labels'")
            boxes, labels = t["boxes"], t["labels"]
            if not isinstance(boxes, torch.Tensor) or boxes.dim() != 2 or boxes.shape[1] != 4:
                raise ValueError(f"targets[{i}]['boxes'] must be a tensor [n,4] (x1,y1,x2,y2), got "
                                 f"{list(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__}")
            if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or len(labels) != len(boxes) \
                    or labels.is_floating_point():
                raise ValueError(f"targets[{i}]['labels'] must be an integer tensor [n] matching its {len(boxes)} boxes")
        # Values: one check over every image at once (one host read on a GPU, not four per image);
        # only when it fails are the images checked one by one, to name the bad one.
        boxes = torch.cat([t["boxes"].float() for t in targets])
        labels = torch.cat([t["labels"] for t in targets])
        if len(boxes):
            x1, y1, x2, y2 = boxes.unbind(1)
            bad = (~torch.isfinite(boxes).all(1) | (x2 <= x1) | (y2 <= y1) | (x1 < 0) | (y1 < 0) | (x2 > w) | (y2 > h)
                   | (labels < 0) | (labels >= self.cfg.num_classes))
            if bad.any():
                self._name_bad_target(targets, h, w)

    def _name_bad_target(self, targets: Any, h: int, w: int) -> None:
        """Raise ValueError naming the first bad box or label (called only when one is known to exist)."""
        for i, t in enumerate(targets):
            boxes, labels = t["boxes"], t["labels"]
            if len(boxes) == 0:
                continue
            if not torch.isfinite(boxes).all():
                raise ValueError(f"targets[{i}]['boxes'] contain NaN or inf")
            x1, y1, x2, y2 = boxes.unbind(1)
            bad = (x2 <= x1) | (y2 <= y1)
            if bad.any():
                raise ValueError(f"targets[{i}]['boxes'][{int(bad.nonzero()[0])}] = "
                                 f"{boxes[bad][0].tolist()} has x2<=x1 or y2<=y1; boxes are x1<x2, y1<y2")
            out = (x1 < 0) | (y1 < 0) | (x2 > w) | (y2 > h)
            if out.any():
                raise ValueError(f"targets[{i}]['boxes'][{int(out.nonzero()[0])}] = {boxes[out][0].tolist()} "
                                 f"lies outside the {h}x{w} image; boxes must be within [0,W]x[0,H]")
            if (labels < 0).any() or (labels >= self.cfg.num_classes).any():
                raise ValueError(f"targets[{i}]['labels'] has {labels[(labels < 0) | (labels >= self.cfg.num_classes)][0].item()}; "
                                 f"labels must be in [0, {self.cfg.num_classes})")

    # ----------------------------------------------------------------------------- forward
    def forward_raw(self, x: torch.Tensor, call=None) -> dict[str, Any]:
        """Network only: x (B, 3, H, W) already preprocessed -> raw branch outputs.

        ``call(module, *args)`` runs each of the seed's components (stem, P3, P4, P5, global block, PAN,
        dense head, token extractor, token fusion, sparse head); default: directly. A profiler can pass
        one that counts or caches component by component.
        """
        call = call or _direct
        feats = self.backbone(x, call)                 # p3 (B,256,H/8,W/8) … p5 (B,1024,H/32,W/32)
        raw: dict[str, Any] = {}
        if self.neck.pan is not None:
            raw["dense"] = call(self.head.dense, call(self.neck.pan, feats))
        if self.neck.token_extractor is not None:
            tokens = call(self.neck.token_extractor, feats)  # memory (B, S*K, d)
            raw["tokens"] = tokens
            raw["sparse"] = call(self.head.sparse, call(self.neck.token_fusion, tokens.memory))
        return raw

    def forward(self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]] | None = None,
                output_mode: str | None = None) -> dict[str, torch.Tensor] | Detections:
        self.validate_images(images)
        if self.training:
            if targets is None:
                raise ValueError("train mode needs targets (one dict of 'boxes' and 'labels' per image); "
                                 "call model.eval() for detections")
            self.validate_targets(targets, images)
        elif output_mode is not None and output_mode not in ("raw", "nms_free", "nms", "fused"):
            raise ValueError(f"output_mode={output_mode!r} is not accepted; choose raw, nms_free, nms or fused")
        x, meta = self.preprocess(images)
        raw = self.forward_raw(x)
        if self.training:
            top, left = meta.offset
            shift = torch.tensor([left, top, left, top], dtype=torch.float32, device=x.device)
            shifted = [{"boxes": t["boxes"].to(x.device).float() + shift, "labels": t["labels"].to(x.device).long()}
                       for t in targets]
            return self.detection.loss(raw, shifted, self.detection.matching, x.shape[-2:])
        if output_mode == "raw":
            return flat_raw(raw)
        return self.detection.output(raw, meta, output_mode or self.cfg.output_mode)


def flat_raw(raw: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The head outputs as a flat dict of tensors (what tracers and profilers can hold)."""
    out = {}
    if "dense" in raw and "pred" in raw["dense"]:
        out["dense_pred"] = raw["dense"]["pred"]                       # anchor-based head: (B, A, 5 + nc)
    elif "dense" in raw:
        out["dense_dist"], out["dense_logits"] = raw["dense"]["dist"], raw["dense"]["logits"]
    if "sparse" in raw:
        out["sparse_logits"], out["sparse_boxes"] = raw["sparse"]["logits"], raw["sparse"]["boxes"]
    return out


def build_model(preset: str = "hsgdet-l", **overrides: Any) -> HSGDet:
    """Build HSG-Det (or ``yolov8l-ref``) from a named preset with config overrides."""
    return HSGDet(get_config(preset, **overrides))
