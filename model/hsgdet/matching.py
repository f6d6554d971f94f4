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
        from scipy.optimize import linear_sum_assignment

        out = []
        for b, t in enumerate(targets):
            if len(t["labels"]) == 0:
                empty = torch.zeros(0, dtype=torch.long, device=logits.device)
                out.append((empty, empty))
                continue
            cost = self.cost_matrix(logits[b], boxes[b], t["labels"], t["boxes_cxcywh"])
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            out.append((torch.as_tensor(rows, dtype=torch.long, device=logits.device),
                        torch.as_tensor(cols, dtype=torch.long, device=logits.device)))
        return out


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
        """scores (A, C) probabilities; boxes (A, 4) xyxy px; points (A, 2) px; gt (G,), (G, 4)."""
        from torchvision.ops import box_iou

        a, c = scores.shape
        g = labels.shape[0]
        if g == 0:
            return DenseAssignment(torch.zeros(a, dtype=torch.bool, device=scores.device),
                                   torch.zeros(a, dtype=torch.long, device=scores.device),
                                   torch.zeros(a, 4, device=scores.device), torch.zeros_like(scores))
        x, y = points[:, 0], points[:, 1]
        inside = ((x[None] > gt_boxes[:, 0:1]) & (x[None] < gt_boxes[:, 2:3]) &
                  (y[None] > gt_boxes[:, 1:2]) & (y[None] < gt_boxes[:, 3:4]))        # (G, A)
        ious = box_iou(gt_boxes.float(), boxes.float()).clamp(min=0) * inside            # (G, A)
        align = scores.float()[:, labels].T.pow(self.alpha) * ious.pow(self.beta) * inside
        k = min(self.topk, a)
        top = align.topk(k, dim=1).indices                                                # (G, k)
        pos = torch.zeros_like(inside).scatter_(1, top, True) & inside & (align > 0)
        # An anchor claimed by several objects goes to the one it overlaps most.
        multi = pos.sum(0) > 1
        if multi.any():
            best = ious.argmax(0)
            pos[:, multi] = False
            pos[best[multi], multi.nonzero().squeeze(1)] = True
        fg = pos.any(0)
        gt_index = pos.float().argmax(0)
        align = align * pos
        norm = (align * ious.amax(1, keepdim=True) / (align.amax(1, keepdim=True) + self.eps)).amax(0)  # (A,)
        target_scores = torch.zeros_like(scores, dtype=torch.float32)
        target_scores[fg, labels[gt_index[fg]]] = norm[fg]
        return DenseAssignment(fg, gt_index, gt_boxes[gt_index].float(), target_scores)


class AdaptiveMatcher(nn.Module):
    """The seed's "Adaptive Matching" block: both assigners, no parameters."""

    def __init__(self, tal_topk: int, tal_alpha: float, tal_beta: float, cost_class: float,
                 cost_l1: float, cost_giou: float, focal_alpha: float, focal_gamma: float) -> None:
        super().__init__()
        self.one_to_many = TaskAlignedAssigner(tal_topk, tal_alpha, tal_beta)
        self.one_to_one = HungarianMatcher(cost_class, cost_l1, cost_giou, focal_alpha, focal_gamma)
