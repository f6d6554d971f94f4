"""Backbone: stem (stride 2), CSP stages P3/P4/P5 (strides 8/16/32) and the global block.

Stage boundaries follow the seed's diagram: B1 is the stride-2 stem; B2 ("Stage P3, stride 8")
takes the stride-2 map down to stride 8, so it holds YOLO's stride-4 stage as well as the
stride-8 one; B3 and B4 are P4 and P5. P5 ends with SPPF, as in YOLOv5/v8.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .config import HSGDetConfig
from .layers import CSP_BLOCKS, SPPF, ConvBNAct, EncoderLayer, grid_coords, make_divisible, sincos_embed


def scaled_channels(cfg: HSGDetConfig) -> tuple[int, ...]:
    """Conv widths after the width multiplier (YOLO rule: round up to a multiple of 8)."""
    return tuple(make_divisible(c * cfg.width_mult) for c in cfg.channels)


def scaled_depth(n: int, cfg: HSGDetConfig) -> int:
    """A CSP depth after the depth multiplier (YOLO rule: round, at least 1)."""
    return max(round(n * cfg.depth_mult), 1) if n > 1 else n


def csp_stage(c_in: int, c_out: int, n: int, block: str) -> nn.Sequential:
    """A stride-2 3×3 conv followed by a CSP block of depth ``n`` (with residual bottlenecks)."""
    return nn.Sequential(OrderedDict(down=ConvBNAct(c_in, c_out, 3, 2),
                                     csp=CSP_BLOCKS[block](c_out, c_out, n, shortcut=True)))


class GlobalBlock(nn.Module):
    """Low-resolution global attention over P5 (RT-DETR's AIFI, projected to ``global_dim``).

    P5 (B, C, H, W) -> 1×1 proj to d -> ``layers`` encoder layers over all H·W tokens with
    sin-cos positions -> 1×1 proj back to C, added to P5 (residual keeps the channel plan).
    """

    def __init__(self, channels: int, d: int, heads: int, ffn: int, layers: int) -> None:
        super().__init__()
        self.proj_in = ConvBNAct(channels, d, 1, act=False)
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ffn) for _ in range(layers))
        self.proj_out = ConvBNAct(d, channels, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        y = self.proj_in(x)                                   # (B, d, H, W)
        d = y.shape[1]
        tokens = y.flatten(2).transpose(1, 2)                 # (B, H*W, d)
        pos = sincos_embed(grid_coords(h, w, x.device), d).to(tokens.dtype)[None]  # (1, H*W, d)
        for layer in self.layers:
            tokens = layer(tokens, pos)
        y = tokens.transpose(1, 2).reshape(b, d, h, w)
        return x + self.proj_out(y)


class Backbone(nn.Module):
    """Stem + CSP stages; returns {"p3", "p4", "p5"} feature maps."""

    def __init__(self, cfg: HSGDetConfig) -> None:
        super().__init__()
        c0, c1, c3, c4, c5 = scaled_channels(cfg)
        n2, n3, n4, n5 = (scaled_depth(n, cfg) for n in cfg.depths)
        block = cfg.csp_block
        k = cfg.stem_kernel                                                    # 3 (v8) or 6 (v5, pad 2)
        self.stem = ConvBNAct(cfg.in_channels, c0, k, 2, p=(k - 1) // 2)       # stride 2
        self.p3 = nn.Sequential(OrderedDict(stride4=csp_stage(c0, c1, n2, block),
                                            stride8=csp_stage(c1, c3, n3, block)))
        self.p4 = csp_stage(c3, c4, n4, block)                                 # stride 16
        self.p5 = nn.Sequential(OrderedDict(stage=csp_stage(c4, c5, n5, block),
                                            sppf=SPPF(c5, c5)))                # stride 32
        self.global_block = (GlobalBlock(c5, cfg.global_dim, cfg.global_heads, cfg.global_ffn,
                                         cfg.global_layers) if cfg.variant != "grid-only" else None)
        self.out_channels = {"p3": c3, "p4": c4, "p5": c5}

    def forward(self, x: torch.Tensor, call=None) -> dict[str, torch.Tensor]:
        call = call or _direct      # ``call(module, *args)``: how each stage runs (profilers may cache)
        x = call(self.stem, x)      # (B, 64, H/2, W/2)
        p3 = call(self.p3, x)       # (B, 256, H/8, W/8)
        p4 = call(self.p4, p3)      # (B, 512, H/16, W/16)
        p5 = call(self.p5, p4)      # (B, 1024, H/32, W/32)
        if self.global_block is not None:
            p5 = call(self.global_block, p5)
        return {"p3": p3, "p4": p4, "p5": p5}


def _direct(module: nn.Module, *args):
    return module(*args)
