"""Losses: each a small named method (DETR's SetCriterion style), combined in ``forward``.

Dense head (YOLOv8): BCE on task-aligned soft targets, GIoU and DFL on positives, all
normalised by the sum of target scores. Query head (Deformable DETR): sigmoid focal loss,
L1 and GIoU on Hungarian-matched queries, on every decoder layer (auxiliary losses),
normalised by the number of objects. Token scores: focal loss against "an object centre
lies in this cell", so the top-K selection learns where objects are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import HSGDetConfig
from .heads import dfl_decode
from .matching import AdaptiveMatcher, Padded
from .neck import Tokens

# torchvision.ops (and scipy) are imported where they are used: importing torchvision.ops imports
# torch._dynamo (seconds), which building and running the network never needs.


class HSGDetLoss(nn.Module):
    """Named losses of every branch present; ``loss`` is their weighted sum."""

    def __init__(self, cfg: HSGDetConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(self, raw: dict, targets: list[dict[str, torch.Tensor]], matcher: AdaptiveMatcher,
                image_size: tuple[int, int]) -> dict[str, torch.Tensor]:
        from torchvision.ops import box_convert

        h, w = image_size
        scale = torch.tensor([w, h, w, h], dtype=torch.float32, device=targets[0]["boxes"].device) \
            if targets else None
        for t in targets:
            t["boxes_cxcywh"] = box_convert(t["boxes"].float(), "xyxy", "cxcywh") / scale
        losses: dict[str, torch.Tensor] = {}
        if "dense" in raw and "anchor_wh" in raw["dense"]:
            raise ValueError("dense_head='anchor' (the YOLOv5 references' head) has no training loss here; "
                             "it exists to count and time YOLOv5's published design; train an anchor-free preset")
        if "dense" in raw:
            losses.update(self.dense(raw["dense"], targets, matcher))
            losses["loss_dense"] = sum(v for k, v in losses.items() if k.startswith("loss_dense_"))
        if "sparse" in raw:
            losses.update(self.sparse(raw["sparse"], targets, matcher))
            losses["loss_token"] = self.cfg.loss_token * self.token(raw["tokens"], targets, image_size)
            losses["loss_sparse"] = sum(v for k, v in losses.items() if k.startswith("loss_sparse_")) \
                + losses["loss_token"]
        losses["loss"] = losses.get("loss_dense", 0) + losses.get("loss_sparse", 0)
        return losses

    def dense(self, out: dict[str, torch.Tensor], targets: list[dict], matcher: AdaptiveMatcher
              ) -> dict[str, torch.Tensor]:
        from torchvision.ops import generalized_box_iou_loss

        cfg = self.cfg
        dist, logits, points, strides = out["dist"], out["logits"], out["points"], out["strides"]
        boxes = dfl_decode(dist, points, strides)                                 # (B, A, 4) px
        # One batched assignment for every image (targets padded), so the step's op count does not
        # grow with the batch (per-image loops made a GPU step launch-bound).
        a = matcher.one_to_many.batched(logits.detach().sigmoid(), boxes.detach(), points, Padded.of(targets))
        cls_loss = F.binary_cross_entropy_with_logits(logits.float(), a.scores, reduction="sum")
        norm = a.scores.sum().clamp(min=1.0)
        fg = a.fg                                                                  # (B, A)
        weight = a.scores[fg].sum(-1)                                              # (P,)
        giou = generalized_box_iou_loss(boxes[fg].float(), a.boxes[fg], reduction="none")
        box_loss = (giou * weight).sum()
        b = fg.shape[0]
        dfl_loss = (self._dfl(dist[fg], points[None].expand(b, -1, -1)[fg], strides[None].expand(b, -1, -1)[fg],
                              a.boxes[fg]) * weight).sum()
        return {"loss_dense_cls": cfg.loss_dense_cls * cls_loss / norm,
                "loss_dense_box": cfg.loss_dense_box * box_loss / norm,
                "loss_dense_dfl": cfg.loss_dense_dfl * dfl_loss / norm}

    def _dfl(self, dist: torch.Tensor, points: torch.Tensor, strides: torch.Tensor,
             gt: torch.Tensor) -> torch.Tensor:
        """Distribution focal loss per positive anchor: (P, 4·reg_max) -> (P,)."""
        reg_max = self.cfg.reg_max
        ltrb = torch.cat((points - gt[:, :2], gt[:, 2:] - points), -1) / strides
        ltrb = ltrb.clamp(0, reg_max - 1 - 0.01)                                  # (P, 4)
        left = ltrb.long()
        w_left = left + 1 - ltrb
        logits = dist.float().reshape(-1, 4, reg_max)
        ce_left = F.cross_entropy(logits.transpose(1, 2), left, reduction="none")
        ce_right = F.cross_entropy(logits.transpose(1, 2), left + 1, reduction="none")
        return (ce_left * w_left + ce_right * (1 - w_left)).mean(-1)

    def sparse(self, out: dict[str, torch.Tensor], targets: list[dict], matcher: AdaptiveMatcher
               ) -> dict[str, torch.Tensor]:
        from torchvision.ops import box_convert, generalized_box_iou_loss, sigmoid_focal_loss

        cfg = self.cfg
        num_boxes = max(sum(len(t["labels"]) for t in targets), 1)
        t = Padded.of(targets)
        cls_loss = l1_loss = giou_loss = out["logits"].new_zeros((), dtype=torch.float32)
        for logits, boxes in zip(out["logits"], out["boxes"]):                   # every decoder layer
            bi, qi, ti = matcher.one_to_one.match_flat(logits, boxes, t)         # one batched matching
            onehot = torch.zeros_like(logits, dtype=torch.float32)
            onehot[bi, qi, t.labels[bi, ti]] = 1.0
            cls_loss = cls_loss + sigmoid_focal_loss(logits.float(), onehot, cfg.focal_alpha,
                                                     cfg.focal_gamma, reduction="sum")
            pred = boxes[bi, qi].float()
            tgt = t.cxcywh[bi, ti]
            l1_loss = l1_loss + (pred - tgt).abs().sum()
            giou_loss = giou_loss + generalized_box_iou_loss(
                box_convert(pred, "cxcywh", "xyxy"), box_convert(tgt, "cxcywh", "xyxy"), reduction="sum")
        return {"loss_sparse_cls": cfg.loss_sparse_cls * cls_loss / num_boxes,
                "loss_sparse_l1": cfg.loss_sparse_l1 * l1_loss / num_boxes,
                "loss_sparse_giou": cfg.loss_sparse_giou * giou_loss / num_boxes}

    def token(self, tokens: Tokens, targets: list[dict], image_size: tuple[int, int]) -> torch.Tensor:
        """Focal loss of each scale's score map against the cells holding an object centre."""
        from torchvision.ops import sigmoid_focal_loss

        loss = tokens.score_maps[0].new_zeros((), dtype=torch.float32)
        t = Padded.of(targets)
        num_pos = 0
        for scores, (h, w) in zip(tokens.score_maps, tokens.shapes):
            target = torch.zeros_like(scores, dtype=torch.float32)                # (B, H*W)
            if t.max_objects:
                col = (t.cxcywh[..., 0] * w).long().clamp(0, w - 1)              # (B, G)
                row = (t.cxcywh[..., 1] * h).long().clamp(0, h - 1)
                target.scatter_reduce_(1, row * w + col, t.valid.float(), reduce="amax")
            num_pos += int(target.sum().item())
            loss = loss + sigmoid_focal_loss(scores.float(), target, self.cfg.focal_alpha,
                                             self.cfg.focal_gamma, reduction="sum")
        return loss / max(num_pos, 1)
