"""Adaptive matching: one-to-many task-aligned assignment (dense head) and one-to-one
Hungarian assignment (query head).

"Adaptive" here means prediction-aware: both assignments are recomputed at every step from
the current predictions, never from fixed anchor/IoU rules. The dense head gets TOOD/YOLOv8's
task-aligned assigner (each object takes the top-k in-box anchors by s^α · IoU^β, so its number
of positives adapts to how well it is predicted); the query head gets DETR's set matching (each
object exactly one query, cost = class + L1 + GIoU), which is what makes its output NMS-free.
The two are independent: neither branch's assignment constrains the other's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

# torchvision.ops (and scipy) are imported where they are used: importing torchvision.ops imports
# torch._dynamo (seconds), which building and running the network never needs.


class HungarianMatcher:
    """One-to-one matching of N queries to G objects minimising class + L1 + GIoU cost."""

    def __init__(self, cost_class: float = 2.0, cost_l1: float = 5.0, cost_giou: float = 2.0,
                 alpha: float = 0.25, gamma: float = 2.0) -> None:
        self.cost_class, self.cost_l1, self.cost_giou = cost_class, cost_l1, cost_giou
        self.alpha, self.gamma = alpha, gamma

    @torch.no_grad()
    def cost_matrix(self, logits: torch.Tensor, boxes: torch.Tensor, labels: torch.Tensor,
                    target_boxes: torch.Tensor) -> torch.Tensor:
        """Cost (N, G) of one image. logits (N, C); boxes, target_boxes cxcywh normalised."""
        from torchvision.ops import box_convert, generalized_box_iou

        p = logits.float().sigmoid()[:, labels]                                   # (N, G)
        pos = self.alpha * (1 - p) ** self.gamma * -(p + 1e-8).log()              # focal-style
        neg = (1 - self.alpha) * p ** self.gamma * -(1 - p + 1e-8).log()
        l1 = torch.cdist(boxes.float(), target_boxes.float(), p=1)
        giou = generalized_box_iou(box_convert(boxes.float(), "cxcywh", "xyxy"),
                                   box_convert(target_boxes.float(), "cxcywh", "xyxy"))
        return self.cost_class * (pos - neg) + self.cost_l1 * l1 - self.cost_giou * giou

    @torch.no_grad()
    def __call__(self, logits: torch.Tensor, boxes: torch.Tensor, targets: list[dict[str, torch.Tensor]]
                 ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per image (query indices, target indices); logits (B, N, C), boxes (B, N, 4)."""
        padded = Padded.of(targets)
        bi, qi, ti = self.match_flat(logits, boxes, padded)
        return [(qi[bi == b], ti[bi == b]) for b in range(len(targets))]

    @torch.no_grad()
    def match_flat(self, logits: torch.Tensor, boxes: torch.Tensor, t: "Padded"
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Every image's matching at once: (image, query, target) index tensors, image-major.

        The (B, N, G) cost is computed in one batched pass and copied to the host once; only the
        assignment itself (scipy, per image) runs on the CPU.
        """
        from scipy.optimize import linear_sum_assignment
        from torchvision.ops import box_convert

        b, n, _ = logits.shape
        dev = logits.device
        if t.max_objects == 0:
            empty = torch.zeros(0, dtype=torch.long, device=dev)
            return empty, empty, empty
        p = logits.float().sigmoid().gather(2, t.labels[:, None, :].expand(b, n, t.max_objects))   # (B, N, G)
        pos = self.alpha * (1 - p) ** self.gamma * -(p + 1e-8).log()
        neg = (1 - self.alpha) * p ** self.gamma * -(1 - p + 1e-8).log()
        l1 = (boxes.float()[:, :, None, :] - t.cxcywh[:, None, :, :]).abs().sum(-1)                 # (B, N, G)
        giou = batched_giou(box_convert(boxes.float(), "cxcywh", "xyxy"), box_convert(t.cxcywh, "cxcywh", "xyxy"))
        cost = (self.cost_class * (pos - neg) + self.cost_l1 * l1 - self.cost_giou * giou).cpu().numpy()
        lengths = t.lengths.tolist()
        parts = []
        for i, g in enumerate(lengths):
            if g:
                rows, cols = linear_sum_assignment(cost[i, :, :g])
                parts.append(np.stack((np.full(len(rows), i), rows, cols)))
        idx = torch.as_tensor(np.concatenate(parts, 1) if parts else np.zeros((3, 0), int), dtype=torch.long,
                              device=dev)
        return idx[0], idx[1], idx[2]


@dataclass
class Padded:
    """A batch's targets padded to the most objects of any image (what batched matching needs)."""

    labels: torch.Tensor         # (B, G) long (0 where padded)
    boxes: torch.Tensor          # (B, G, 4) xyxy pixels
    cxcywh: torch.Tensor         # (B, G, 4) normalised
    valid: torch.Tensor          # (B, G) bool
    lengths: torch.Tensor        # (B,) objects per image

    @property
    def max_objects(self) -> int:
        return self.labels.shape[1]

    @classmethod
    def of(cls, targets: list[dict[str, torch.Tensor]]) -> "Padded":
        from torch.nn.utils.rnn import pad_sequence
        from torchvision.ops import box_convert

        dev = targets[0]["labels"].device
        lengths = torch.tensor([len(t["labels"]) for t in targets], device=dev)
        g = int(lengths.max()) if len(targets) else 0
        if g == 0:
            z = torch.zeros(len(targets), 0, device=dev)
            return cls(z.long(), z[..., None].expand(-1, -1, 4).float(), z[..., None].expand(-1, -1, 4).float(),
                       z.bool(), lengths)
        labels = pad_sequence([t["labels"].long() for t in targets], batch_first=True)
        cx = pad_sequence([t["boxes_cxcywh"].float() if "boxes_cxcywh" in t else
                           box_convert(t["boxes"].float(), "xyxy", "cxcywh") for t in targets], batch_first=True)
        boxes = (pad_sequence([t["boxes"].float() for t in targets], batch_first=True)
                 if all("boxes" in t for t in targets) else torch.zeros_like(cx))      # the matcher needs only cxcywh
        valid = torch.arange(g, device=dev)[None] < lengths[:, None]
        return cls(labels, boxes, cx, valid, lengths)


_EPS = 1e-9                 # px²: far below any real box's area, so it changes no IoU but 0/0


def batched_iou(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """IoU and union of every pair within each batch element: a (B, M, 4), b (B, K, 4) xyxy -> (B, M, K)."""
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    lt = torch.max(a[:, :, None, :2], b[:, None, :, :2])
    rb = torch.min(a[:, :, None, 2:], b[:, None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, :, None] + area_b[:, None, :] - inter
    # Two zero-area boxes (a padded target slot and a collapsed prediction) have union 0: their IoU
    # is 0, not 0/0 (a NaN there spreads through the assigner's max and sinks the step).
    return inter / union.clamp(min=_EPS), union


def batched_giou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Generalised IoU of every pair within each batch element (torchvision's definition): (B, M, K)."""
    iou, union = batched_iou(a, b)
    lt = torch.min(a[:, :, None, :2], b[:, None, :, :2])
    rb = torch.max(a[:, :, None, 2:], b[:, None, :, 2:])
    wh = (rb - lt).clamp(min=0)
    area = wh[..., 0] * wh[..., 1]
    return iou - (area - union) / area.clamp(min=_EPS)


@dataclass
class DenseAssignment:
    """The task-aligned assignment of one image: A anchors, C classes."""

    fg: torch.Tensor            # (A,) bool: anchor is a positive
    gt_index: torch.Tensor      # (A,) long: the object each positive anchor learns
    boxes: torch.Tensor         # (A, 4) xyxy target box per anchor (meaningful where fg)
    scores: torch.Tensor        # (A, C) soft class targets: alignment-normalised IoU on the label


class TaskAlignedAssigner:
    """TOOD/YOLOv8 one-to-many assignment: top-k in-box anchors per object by s^α·IoU^β."""

    def __init__(self, topk: int = 10, alpha: float = 0.5, beta: float = 6.0, eps: float = 1e-9) -> None:
        self.topk, self.alpha, self.beta, self.eps = topk, alpha, beta, eps

    @torch.no_grad()
    def __call__(self, scores: torch.Tensor, boxes: torch.Tensor, points: torch.Tensor,
                 labels: torch.Tensor, gt_boxes: torch.Tensor) -> DenseAssignment:
        """One image: scores (A, C) probabilities; boxes (A, 4) xyxy px; points (A, 2) px; gt (G,), (G, 4)."""
        t = Padded.of([{"labels": labels, "boxes": gt_boxes}])
        a = self.batched(scores[None], boxes[None], points, t)
        return DenseAssignment(a.fg[0], a.gt_index[0], a.boxes[0], a.scores[0])

    @torch.no_grad()
    def batched(self, scores: torch.Tensor, boxes: torch.Tensor, points: torch.Tensor, t: Padded
                ) -> DenseAssignment:
        """Every image at once: scores (B, A, C), boxes (B, A, 4) -> a DenseAssignment with a batch dim."""
        bsz, a, c = scores.shape
        g = t.max_objects
        if g == 0:
            return DenseAssignment(torch.zeros(bsz, a, dtype=torch.bool, device=scores.device),
                                   torch.zeros(bsz, a, dtype=torch.long, device=scores.device),
                                   torch.zeros(bsz, a, 4, device=scores.device), torch.zeros_like(scores))
        gt_boxes = t.boxes
        x, y = points[:, 0], points[:, 1]
        inside = ((x > gt_boxes[..., 0:1]) & (x < gt_boxes[..., 2:3]) & (y > gt_boxes[..., 1:2])
                  & (y < gt_boxes[..., 3:4]) & t.valid[..., None])                                # (B, G, A)
        ious = batched_iou(gt_boxes, boxes.float())[0].clamp(min=0) * inside                       # (B, G, A)
        s_at = scores.float().gather(2, t.labels[:, None, :].expand(bsz, a, g)).transpose(1, 2)    # (B, G, A)
        align = s_at.pow(self.alpha) * ious.pow(self.beta) * inside
        k = min(self.topk, a)
        top = align.topk(k, dim=2).indices                                                         # (B, G, k)
        pos = torch.zeros_like(inside).scatter_(2, top, True) & inside & (align > 0)
        # An anchor claimed by several objects goes to the one it overlaps most.
        multi = pos.sum(1) > 1                                                                     # (B, A)
        best = torch.nn.functional.one_hot(ious.argmax(1), g).transpose(1, 2).bool()               # (B, G, A)
        pos = torch.where(multi[:, None, :], best, pos)
        fg = pos.any(1)                                                                            # (B, A)
        gt_index = pos.float().argmax(1)                                                           # (B, A)
        align = align * pos
        norm = (align * ious.amax(2, keepdim=True) / (align.amax(2, keepdim=True) + self.eps)).amax(1)  # (B, A)
        target_scores = torch.zeros_like(scores, dtype=torch.float32)
        target_scores.scatter_(2, t.labels.gather(1, gt_index)[..., None], (norm * fg)[..., None])
        tboxes = gt_boxes.gather(1, gt_index[..., None].expand(bsz, a, 4))
        return DenseAssignment(fg, gt_index, tboxes, target_scores)


class AdaptiveMatcher(nn.Module):
    """The seed's "Adaptive Matching" block: both assigners, no parameters."""

    def __init__(self, tal_topk: int, tal_alpha: float, tal_beta: float, cost_class: float,
                 cost_l1: float, cost_giou: float, focal_alpha: float, focal_gamma: float) -> None:
        super().__init__()
        self.one_to_many = TaskAlignedAssigner(tal_topk, tal_alpha, tal_beta)
        self.one_to_one = HungarianMatcher(cost_class, cost_l1, cost_giou, focal_alpha, focal_gamma)
