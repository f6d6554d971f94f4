"""Building blocks shared by the backbone, neck and heads.

Conv/CSP blocks follow the YOLOv5/YOLOv8 published designs (Conv-BN-SiLU, C3, C2f, SPPF);
the attention layers follow DETR / RT-DETR (post-norm, positions added to queries and keys).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def make_divisible(x: float, divisor: int = 8) -> int:
    """Round a scaled channel count up to a multiple of ``divisor`` (YOLO's width rule)."""
    return int(math.ceil(x / divisor) * divisor)


class ConvBNAct(nn.Module):
    """Conv2d (no bias) + BatchNorm + SiLU: the YOLO "Conv" block."""

    def __init__(self, c_in: int, c_out: int, k: int = 1, s: int = 1, act: bool = True,
                 p: int | None = None) -> None:
        super().__init__()
        # padding k // 2 keeps odd kernels centred; YOLOv5's 6×6 stride-2 stem pads 2 (p=2)
        self.conv = nn.Conv2d(c_in, c_out, k, s, k // 2 if p is None else p, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=1e-3, momentum=0.03)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """Two convs with an optional residual; ``k`` gives the two kernel sizes."""

    def __init__(self, c_in: int, c_out: int, shortcut: bool = True, k: tuple[int, int] = (3, 3)) -> None:
        super().__init__()
        self.cv1 = ConvBNAct(c_in, c_out, k[0])
        self.cv2 = ConvBNAct(c_out, c_out, k[1])
        self.add = shortcut and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C2f(nn.Module):
    """YOLOv8's CSP block: split, n bottlenecks on one half, concatenate every intermediate."""

    def __init__(self, c_in: int, c_out: int, n: int = 1, shortcut: bool = False) -> None:
        super().__init__()
        self.c = c_out // 2
        self.cv1 = ConvBNAct(c_in, 2 * self.c, 1)
        self.cv2 = ConvBNAct((2 + n) * self.c, c_out, 1)
        self.m = nn.ModuleList(Bottleneck(self.c, self.c, shortcut, (3, 3)) for _ in range(n))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = list(self.cv1(x).chunk(2, 1))       # 2 × (B, c, H, W)
        for m in self.m:
            y.append(m(y[-1]))
        return self.cv2(torch.cat(y, 1))        # (B, (2+n)c, H, W) -> (B, c_out, H, W)


class C3(nn.Module):
    """YOLOv5's CSP block: two 1×1 branches, n bottlenecks (1×1, 3×3) on one, then a 1×1 merge."""

    def __init__(self, c_in: int, c_out: int, n: int = 1, shortcut: bool = False) -> None:
        super().__init__()
        c = c_out // 2
        self.cv1 = ConvBNAct(c_in, c, 1)
        self.cv2 = ConvBNAct(c_in, c, 1)
        self.cv3 = ConvBNAct(2 * c, c_out, 1)
        self.m = nn.Sequential(*(Bottleneck(c, c, shortcut, (1, 3)) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


CSP_BLOCKS = {"c2f": C2f, "c3": C3}


class SPPF(nn.Module):
    """Spatial pyramid pooling (fast): three chained 5×5 max-pools, concatenated."""

    def __init__(self, c_in: int, c_out: int, k: int = 5) -> None:
        super().__init__()
        c = c_in // 2
        self.cv1 = ConvBNAct(c_in, c, 1)
        self.cv2 = ConvBNAct(4 * c, c_out, 1)
        self.pool = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = [self.cv1(x)]
        for _ in range(3):
            y.append(self.pool(y[-1]))
        return self.cv2(torch.cat(y, 1))


def sincos_embed(coords: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """Fixed 2-D sine-cosine embedding of normalised (x, y) positions.

    coords: (..., 2) in [0, 1]; returns (..., dim). Parameter-free, so positions on every
    pyramid level share one scale (RT-DETR/DETR convention, on normalised coordinates).
    """
    if dim % 4:
        raise ValueError(f"positional embedding dim must be divisible by 4, got {dim}")
    quarter = dim // 4
    omega = temperature ** (-torch.arange(quarter, dtype=torch.float32, device=coords.device) / quarter)
    x = coords[..., 0:1].float() * (2 * math.pi) * omega       # (..., dim/4)
    y = coords[..., 1:2].float() * (2 * math.pi) * omega
    return torch.cat((x.sin(), x.cos(), y.sin(), y.cos()), -1).to(coords.dtype)


def grid_coords(h: int, w: int, device: torch.device | str | None = None) -> torch.Tensor:
    """Normalised cell-centre coordinates of an h×w grid: (h*w, 2) as (x, y), row-major."""
    ys = (torch.arange(h, device=device, dtype=torch.float32) + 0.5) / h
    xs = (torch.arange(w, device=device, dtype=torch.float32) + 0.5) / w
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack((gx, gy), -1).reshape(-1, 2)


class EncoderLayer(nn.Module):
    """Transformer encoder layer (post-norm); ``pos`` is added to queries and keys, not values."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float = 0.0, act: str = "gelu") -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d, ffn)
        self.linear2 = nn.Linear(ffn, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.dropout = nn.Dropout(dropout)
        self.act = nn.GELU() if act == "gelu" else nn.ReLU()

    def forward(self, src: torch.Tensor, pos: torch.Tensor | None = None) -> torch.Tensor:
        # src, pos: (B, T, d)
        q = k = src if pos is None else src + pos
        src = self.norm1(src + self.dropout(self.attn(q, k, src, need_weights=False)[0]))
        return self.norm2(src + self.dropout(self.linear2(self.dropout(self.act(self.linear1(src))))))


class DecoderLayer(nn.Module):
    """DETR decoder layer (post-norm): query self-attention, cross-attention to memory, FFN."""

    def __init__(self, d: int, heads: int, ffn: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(d, heads, dropout=dropout, batch_first=True)
        self.linear1 = nn.Linear(d, ffn)
        self.linear2 = nn.Linear(ffn, d)
        self.norm1 = nn.LayerNorm(d)
        self.norm2 = nn.LayerNorm(d)
        self.norm3 = nn.LayerNorm(d)
        self.dropout = nn.Dropout(dropout)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, query_pos: torch.Tensor) -> torch.Tensor:
        # tgt, query_pos: (B, N, d); memory: (B, T, d) with positions already added
        q = k = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout(self.self_attn(q, k, tgt, need_weights=False)[0]))
        tgt2 = self.cross_attn(tgt + query_pos, memory, memory, need_weights=False)[0]
        tgt = self.norm2(tgt + self.dropout(tgt2))
        return self.norm3(tgt + self.dropout(self.linear2(self.dropout(F.relu(self.linear1(tgt))))))


class MLP(nn.Module):
    """A small multi-layer perceptron with ReLU between layers (DETR's box head)."""

    def __init__(self, d_in: int, d_hidden: int, d_out: int, layers: int) -> None:
        super().__init__()
        dims = [d_in] + [d_hidden] * (layers - 1) + [d_out]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x
