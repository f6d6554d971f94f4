"""Neck: the PAN/FPN local path, the sparse token extractor and cross-scale token fusion."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import HSGDetConfig
from .layers import C2f, C3, ConvBNAct, EncoderLayer, grid_coords, sincos_embed


def resize_to(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Nearest-neighbour resize of ``x`` to ``ref``'s spatial size.

    With sizes divisible by 32 this is the ×2 upsample of YOLO's PAN; at native 1080 rows it
    absorbs the one-row mismatch (2 × 68 = 136 vs P3's 135).
    """
    return F.interpolate(x, size=ref.shape[-2:], mode="nearest")


def match_size(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``x`` resized to ``ref``'s size only when they differ (the stride-2 path at native sizes)."""
    return x if x.shape[-2:] == ref.shape[-2:] else resize_to(x, ref)


class PAN(nn.Module):
    """YOLOv8's PAN: top-down FPN then bottom-up path, C2f blocks without shortcut."""

    def __init__(self, c3: int, c4: int, c5: int, n: int) -> None:
        super().__init__()
        self.td_p4 = C2f(c5 + c4, c4, n)           # up(P5) ++ P4 -> N4
        self.td_p3 = C2f(c4 + c3, c3, n)           # up(N4) ++ P3 -> out P3
        self.down_p3 = ConvBNAct(c3, c3, 3, 2)
        self.bu_p4 = C2f(c3 + c4, c4, n)           # down(out P3) ++ N4 -> out P4
        self.down_p4 = ConvBNAct(c4, c4, 3, 2)
        self.bu_p5 = C2f(c4 + c5, c5, n)           # down(out P4) ++ P5 -> out P5
        self.out_channels = (c3, c4, c5)

    def forward(self, feats: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = feats["p3"], feats["p4"], feats["p5"]
        n4 = self.td_p4(torch.cat((resize_to(p5, p4), p4), 1))                   # (B, c4, H/16, W/16)
        o3 = self.td_p3(torch.cat((resize_to(n4, p3), p3), 1))                   # (B, c3, H/8, W/8)
        o4 = self.bu_p4(torch.cat((match_size(self.down_p3(o3), n4), n4), 1))    # (B, c4, H/16, W/16)
        o5 = self.bu_p5(torch.cat((match_size(self.down_p4(o4), p5), p5), 1))    # (B, c5, H/32, W/32)
        return [o3, o4, o5]


class PANv5(nn.Module):
    """YOLOv5 (v6+) PAN: a 1×1 lateral conv before each upsample, C3 blocks without shortcut.

    The bottom-up path concatenates the lateral outputs (not the top-down blocks), as
    yolov5l.yaml's head does (layers 10-23).
    """

    def __init__(self, c3: int, c4: int, c5: int, n: int) -> None:
        super().__init__()
        self.lat_p5 = ConvBNAct(c5, c4, 1)         # P5 -> L5 (c4)
        self.td_p4 = C3(c4 + c4, c4, n)            # up(L5) ++ P4 -> N4
        self.lat_p4 = ConvBNAct(c4, c3, 1)         # N4 -> L4 (c3)
        self.td_p3 = C3(c3 + c3, c3, n)            # up(L4) ++ P3 -> out P3
        self.down_p3 = ConvBNAct(c3, c3, 3, 2)
        self.bu_p4 = C3(c3 + c3, c4, n)            # down(out P3) ++ L4 -> out P4
        self.down_p4 = ConvBNAct(c4, c4, 3, 2)
        self.bu_p5 = C3(c4 + c4, c5, n)            # down(out P4) ++ L5 -> out P5
        self.out_channels = (c3, c4, c5)

    def forward(self, feats: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        p3, p4, p5 = feats["p3"], feats["p4"], feats["p5"]
        l5 = self.lat_p5(p5)                                                       # (B, c4, H/32, W/32)
        l4 = self.lat_p4(self.td_p4(torch.cat((resize_to(l5, p4), p4), 1)))        # (B, c3, H/16, W/16)
        o3 = self.td_p3(torch.cat((resize_to(l4, p3), p3), 1))                     # (B, c3, H/8, W/8)
        o4 = self.bu_p4(torch.cat((match_size(self.down_p3(o3), l4), l4), 1))      # (B, c4, H/16, W/16)
        o5 = self.bu_p5(torch.cat((match_size(self.down_p4(o4), l5), l5), 1))      # (B, c5, H/32, W/32)
        return [o3, o4, o5]


PANS = {"v8": PAN, "v5": PANv5}


@dataclass
class Tokens:
    """The sparse tokens picked from the pyramid, and what the losses need to supervise them."""

    memory: torch.Tensor                 # (B, T, d): gated features + position + scale embedding
    coords: torch.Tensor                 # (B, T, 2): normalised (x, y) of each token's cell
    score_maps: list[torch.Tensor]       # per scale (B, H*W) score logits, for the token loss
    shapes: list[tuple[int, int]]        # per scale (H, W)
    indices: list[torch.Tensor]          # per scale (B, K) flat indices of the selected cells


class TokenExtractor(nn.Module):
    """Top-K sparse tokens per scale: project, score, select, gather, gate, encode position.

    ``topk`` indices carry no gradient, so the selected features are multiplied by
    sigmoid(score): the score head then learns from every loss downstream, and the token loss
    (supervised objectness, as RT-DETR supervises its encoder's top-K) tells it where objects are.
    """

    def __init__(self, in_channels: dict[str, int], scales: tuple[str, ...], d: int, k: int) -> None:
        super().__init__()
        self.scales = scales
        self.k = k
        self.proj = nn.ModuleDict({s: ConvBNAct(in_channels[s], d, 1, act=False) for s in scales})
        self.score = nn.ModuleDict({s: nn.Conv2d(d, 1, 1) for s in scales})
        self.scale_embed = nn.Embedding(len(scales), d)
        for conv in self.score.values():
            nn.init.constant_(conv.bias, -4.6)                      # prior objectness ≈ 0.01

    def forward(self, feats: dict[str, torch.Tensor]) -> Tokens:
        memories, coords, score_maps, shapes, indices = [], [], [], [], []
        for i, s in enumerate(self.scales):
            x = self.proj[s](feats[s])                              # (B, d, H, W)
            b, d, h, w = x.shape
            scores = self.score[s](x).flatten(1)                    # (B, H*W)
            k = min(self.k, h * w)
            idx = scores.topk(k, dim=1).indices                     # (B, K), no gradient
            feat = x.flatten(2).transpose(1, 2)                     # (B, H*W, d)
            picked = feat.gather(1, idx[..., None].expand(b, k, d))                 # (B, K, d)
            gate = scores.gather(1, idx).sigmoid()[..., None]                       # (B, K, 1)
            xy = grid_coords(h, w, x.device)[idx]                                   # (B, K, 2)
            pos = sincos_embed(xy, d).to(picked.dtype)
            memories.append(picked * gate + pos + self.scale_embed.weight[i])
            coords.append(xy)
            score_maps.append(scores)
            shapes.append((h, w))
            indices.append(idx)
        return Tokens(torch.cat(memories, 1), torch.cat(coords, 1), score_maps, shapes, indices)


class TokenFusion(nn.Module):
    """Cross-scale token attention: encoder layers over the selected tokens of all scales."""

    def __init__(self, d: int, heads: int, ffn: int, layers: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(d, heads, ffn) for _ in range(layers))

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:                                   # (B, T, d) -> (B, T, d)
            memory = layer(memory)
        return memory


class Neck(nn.Module):
    """Holds ``pan`` (grid path) and ``token_extractor`` + ``token_fusion`` (sparse path)."""

    def __init__(self, cfg: HSGDetConfig, channels: dict[str, int]) -> None:
        super().__init__()
        self.pan = PANS[cfg.pan](channels["p3"], channels["p4"], channels["p5"],
                                 max(round(cfg.neck_depth * cfg.depth_mult), 1)) if cfg.has_dense else None
        if cfg.has_sparse:
            self.token_extractor = TokenExtractor(channels, cfg.token_scales, cfg.d_model, cfg.num_tokens)
            self.token_fusion = TokenFusion(cfg.d_model, cfg.fusion_heads, cfg.fusion_ffn, cfg.fusion_layers)
        else:
            self.token_extractor = self.token_fusion = None
