"""Eval-mode output, the seed's "Optional NMS-free Output", in three documented modes.

- ``nms_free``: the query head alone; one box per query, no suppression (one-to-one trained).
- ``nms``: the dense head alone, with class-aware NMS (``torchvision.ops.batched_nms``).
- ``fused``: both heads' candidates pooled, then class-aware NMS over the union, so a query
  box and a dense box on the same object collapse to the higher-scoring one.
Boxes come back as xyxy in the caller's input pixels (letterbox padding removed).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import HSGDetConfig
from .heads import anchor_decode, dfl_decode

# torchvision.ops (and scipy) are imported where they are used: importing torchvision.ops imports
# torch._dynamo (seconds), which building and running the network never needs.


@dataclass(frozen=True)
class InputMeta:
    """How the caller's images map to the network input (letterbox offsets)."""

    image_size: tuple[int, int]        # (H, W) the caller gave
    input_size: tuple[int, int]        # (H, W) the network saw
    offset: tuple[int, int]            # (top, left) padding


Detections = list[dict[str, torch.Tensor]]


class OutputHead(nn.Module):
    """Turns raw head outputs into per-image detections; holds no parameters."""

    def __init__(self, cfg: HSGDetConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def available_modes(self, raw: dict) -> tuple[str, ...]:
        has_dense, has_sparse = "dense" in raw, "sparse" in raw
        return tuple(m for m, ok in (("nms_free", has_sparse), ("nms", has_dense),
                                     ("fused", has_dense and has_sparse)) if ok)

    def forward(self, raw: dict, meta: InputMeta, mode: str) -> Detections:
        from torchvision.ops import batched_nms

        if mode not in self.available_modes(raw):
            raise ValueError(f"output_mode={mode!r} is not available for variant "
                             f"{self.cfg.variant!r}; accepted: {', '.join(self.available_modes(raw))}")
        batch = (raw["dense"]["logits"] if "dense" in raw else raw["sparse"]["logits"][-1]).shape[0]
        results = []
        for b in range(batch):
            parts = []
            if mode in ("nms", "fused"):
                parts.append(self._dense_candidates(raw["dense"], b))
            if mode in ("nms_free", "fused"):
                parts.append(self._sparse_candidates(raw["sparse"], b, meta.input_size))
            boxes, scores, labels = (torch.cat(x) for x in zip(*parts))
            if mode == "nms_free":
                keep = scores.argsort(descending=True)
            else:
                keep = batched_nms(boxes.float(), scores.float(), labels, self.cfg.nms_iou)
            keep = keep[: self.cfg.max_detections]
            results.append(self._to_image(boxes[keep], scores[keep], labels[keep], meta))
        return results

    def _dense_candidates(self, out: dict, b: int) -> tuple[torch.Tensor, ...]:
        if "anchor_wh" in out:                                                      # YOLOv5 references
            boxes, cls = anchor_decode(out["pred"][b], out["grid"], out["strides"], out["anchor_wh"])
            scores, labels = cls.max(-1)
            keep = (scores > self.cfg.score_threshold).nonzero().squeeze(1)
            keep = keep[scores[keep].argsort(descending=True)[: self.cfg.pre_nms_topk]]
            return boxes[keep], scores[keep], labels[keep]
        scores, labels = out["logits"][b].sigmoid().max(-1)                        # (A,)
        keep = (scores > self.cfg.score_threshold).nonzero().squeeze(1)
        keep = keep[scores[keep].argsort(descending=True)[: self.cfg.pre_nms_topk]]
        boxes = dfl_decode(out["dist"][b][keep], out["points"][keep], out["strides"][keep])
        return boxes, scores[keep], labels[keep]

    def _sparse_candidates(self, out: dict, b: int, input_size: tuple[int, int]) -> tuple[torch.Tensor, ...]:
        from torchvision.ops import box_convert

        scores, labels = out["logits"][-1, b].sigmoid().max(-1)                    # (N,)
        keep = scores > self.cfg.score_threshold
        h, w = input_size
        scale = torch.tensor([w, h, w, h], dtype=out["boxes"].dtype, device=out["boxes"].device)
        boxes = box_convert(out["boxes"][-1, b][keep] * scale, "cxcywh", "xyxy")
        return boxes, scores[keep], labels[keep]

    @staticmethod
    def _to_image(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                  meta: InputMeta) -> dict[str, torch.Tensor]:
        top, left = meta.offset
        h, w = meta.image_size
        boxes = boxes - boxes.new_tensor([left, top, left, top])
        boxes = torch.stack((boxes[:, 0].clamp(0, w), boxes[:, 1].clamp(0, h),
                             boxes[:, 2].clamp(0, w), boxes[:, 3].clamp(0, h)), -1)
        return {"boxes": boxes.float(), "scores": scores.float(), "labels": labels}
