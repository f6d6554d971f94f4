"""Heads: the dense anchor-free grid head (YOLOv8), the anchor-based head of the YOLOv5 references,
and the sparse query head (DETR decoder)."""

from __future__ import annotations

import math

import torch
from torch import nn

from .config import HSGDetConfig
from .layers import MLP, ConvBNAct, DecoderLayer


class DenseHead(nn.Module):
    """YOLOv8's decoupled head: per level a box branch (4 × reg_max DFL bins) and a class branch."""

    def __init__(self, channels: tuple[int, ...], num_classes: int, reg_max: int,
                 strides: tuple[int, ...] = (8, 16, 32)) -> None:
        super().__init__()
        self.nc, self.reg_max, self.strides = num_classes, reg_max, strides
        c_box = max(16, channels[0] // 4, 4 * reg_max)
        c_cls = max(channels[0], min(num_classes, 100))
        self.box = nn.ModuleList(nn.Sequential(ConvBNAct(c, c_box, 3), ConvBNAct(c_box, c_box, 3),
                                               nn.Conv2d(c_box, 4 * reg_max, 1)) for c in channels)
        self.cls = nn.ModuleList(nn.Sequential(ConvBNAct(c, c_cls, 3), ConvBNAct(c_cls, c_cls, 3),
                                               nn.Conv2d(c_cls, num_classes, 1)) for c in channels)
        for box, cls, s in zip(self.box, self.cls, strides):        # YOLOv8's bias priors
            nn.init.constant_(box[-1].bias, 1.0)
            nn.init.constant_(cls[-1].bias, math.log(5 / num_classes / (640 / s) ** 2))

    def forward(self, feats: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        dist, logits, points, strides = [], [], [], []
        for x, box, cls, s in zip(feats, self.box, self.cls, self.strides):
            b, _, h, w = x.shape
            dist.append(box(x).flatten(2).transpose(1, 2))          # (B, H*W, 4*reg_max)
            logits.append(cls(x).flatten(2).transpose(1, 2))        # (B, H*W, nc)
            ys, xs = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device),
                                    indexing="ij")
            points.append((torch.stack((xs, ys), -1).reshape(-1, 2).float() + 0.5) * s)  # (H*W, 2) px
            strides.append(torch.full((h * w, 1), float(s), device=x.device))
        return {"dist": torch.cat(dist, 1), "logits": torch.cat(logits, 1),      # (B, A, ·)
                "points": torch.cat(points, 0), "strides": torch.cat(strides, 0)}  # (A, 2), (A, 1)


def dfl_decode(dist: torch.Tensor, points: torch.Tensor, strides: torch.Tensor) -> torch.Tensor:
    """DFL bins -> xyxy boxes in input pixels: expected (l, t, r, b) distances × stride."""
    *lead, c = dist.shape
    reg_max = c // 4
    probs = dist.reshape(*lead, 4, reg_max).softmax(-1)
    ltrb = probs @ torch.arange(reg_max, dtype=probs.dtype, device=probs.device)   # (..., A, 4)
    ltrb = ltrb * strides
    return torch.cat((points - ltrb[..., :2], points + ltrb[..., 2:]), -1)


# YOLOv5's default anchors (yolov5l.yaml, v6.0+), (w, h) in input pixels, three per level P3/P4/P5.
YOLOV5_ANCHORS = (((10, 13), (16, 30), (33, 23)),
                  ((30, 61), (62, 45), (59, 119)),
                  ((116, 90), (156, 198), (373, 326)))


class AnchorHead(nn.Module):
    """YOLOv5's anchor-based Detect: per level one 1×1 conv to na × (5 + classes) outputs.

    Used by the grid-only YOLOv5 references (``dense_head="anchor"``) so that their published
    parameters and FLOPs can be checked; it has a forward and an NMS output (``anchor_decode``)
    and no training loss here. Anchors are a buffer, not parameters (as in YOLOv5).
    """

    def __init__(self, channels: tuple[int, ...], num_classes: int,
                 anchors: tuple = YOLOV5_ANCHORS, strides: tuple[int, ...] = (8, 16, 32)) -> None:
        super().__init__()
        self.nc, self.no, self.na, self.strides = num_classes, num_classes + 5, len(anchors[0]), strides
        self.register_buffer("anchors", torch.tensor(anchors, dtype=torch.float32))   # (levels, na, 2) px
        self.m = nn.ModuleList(nn.Conv2d(c, self.na * self.no, 1) for c in channels)
        for conv, s in zip(self.m, strides):                         # YOLOv5's bias priors
            b = conv.bias.detach().view(self.na, self.no)
            b[:, 4] += math.log(8 / (640 / s) ** 2)                   # objectness: ~8 objects per 640² image
            b[:, 5:] += math.log(0.6 / (num_classes - 0.99))

    def forward(self, feats: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        preds, grids, strides, whs = [], [], [], []
        for i, (x, conv, s) in enumerate(zip(feats, self.m, self.strides)):
            b, _, h, w = x.shape
            p = conv(x).view(b, self.na, self.no, h, w).permute(0, 1, 3, 4, 2)   # (B, na, H, W, no)
            preds.append(p.reshape(b, -1, self.no))                               # (B, na*H*W, no)
            ys, xs = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device),
                                    indexing="ij")
            cells = torch.stack((xs, ys), -1).reshape(1, -1, 2).float().expand(self.na, -1, -1)
            grids.append(cells.reshape(-1, 2))                                    # (na*H*W, 2) cell index
            strides.append(torch.full((self.na * h * w, 1), float(s), device=x.device))
            whs.append(self.anchors[i].to(x.device)[:, None, :].expand(-1, h * w, -1).reshape(-1, 2))
        pred = torch.cat(preds, 1)
        return {"pred": pred, "logits": pred[..., 5:], "grid": torch.cat(grids, 0),      # (B, A, ·), (A, 2)
                "strides": torch.cat(strides, 0), "anchor_wh": torch.cat(whs, 0)}      # (A, 1), (A, 2)


def anchor_decode(pred: torch.Tensor, grid: torch.Tensor, strides: torch.Tensor,
                  anchor_wh: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """YOLOv5 (v6+) decoding: xyxy boxes in input pixels and per-class scores (objectness × class).

    xy = (2σ(t_xy) − 0.5 + cell) × stride; wh = (2σ(t_wh))² × anchor.
    """
    p = pred.sigmoid()
    xy = (p[..., :2] * 2 - 0.5 + grid) * strides
    wh = (p[..., 2:4] * 2) ** 2 * anchor_wh
    boxes = torch.cat((xy - wh / 2, xy + wh / 2), -1)
    return boxes, p[..., 4:5] * p[..., 5:]


class SparseQueryHead(nn.Module):
    """N learnable queries decoded against the fused tokens; predictions after every layer.

    Boxes are (cx, cy, w, h) normalised to the network input; the class and box heads are
    shared across layers (DETR), and every layer's predictions feed the auxiliary losses.
    Each query has a learned position and a learned content vector (Deformable DETR): with
    DETR's all-zero content the first self-attention's weights would get no gradient at all.
    """

    def __init__(self, cfg: HSGDetConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.query_pos = nn.Embedding(cfg.num_queries, d)
        self.query_content = nn.Embedding(cfg.num_queries, d)
        self.layers = nn.ModuleList(DecoderLayer(d, cfg.decoder_heads, cfg.decoder_ffn, cfg.dropout)
                                    for _ in range(cfg.decoder_layers))
        self.norm = nn.LayerNorm(d)
        self.class_head = nn.Linear(d, cfg.num_classes)
        self.box_head = MLP(d, d, 4, 3)
        nn.init.constant_(self.class_head.bias, -math.log((1 - 0.01) / 0.01))   # focal-loss prior

    def forward(self, memory: torch.Tensor) -> dict[str, torch.Tensor]:
        b = memory.shape[0]
        query_pos = self.query_pos.weight[None].expand(b, -1, -1)   # (B, N, d)
        tgt = self.query_content.weight[None].expand(b, -1, -1)
        hidden = []
        for layer in self.layers:
            tgt = layer(tgt, memory, query_pos)
            hidden.append(self.norm(tgt))
        hs = torch.stack(hidden)                                   # (L, B, N, d)
        return {"logits": self.class_head(hs), "boxes": self.box_head(hs).sigmoid(),  # (L, B, N, ·)
                "hidden": hs[-1]}


class Head(nn.Module):
    """Holds ``dense`` (grid branch) and ``sparse`` (query branch); either may be absent."""

    def __init__(self, cfg: HSGDetConfig, pan_channels: tuple[int, ...] | None) -> None:
        super().__init__()
        if not cfg.has_dense:
            self.dense = None
        elif cfg.dense_head == "anchor":
            self.dense = AnchorHead(pan_channels, cfg.num_classes)
        else:
            self.dense = DenseHead(pan_channels, cfg.num_classes, cfg.reg_max)
        self.sparse = SparseQueryHead(cfg) if cfg.has_sparse else None
