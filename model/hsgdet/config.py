"""HSG-Det configuration: one dataclass, named presets, every architectural choice recorded.

The seed (../shared/seed/HSG-Det.md) fixes the channel plan (stem 64, P3 256, P4 512, P5 1024),
K = 256 tokens, N = 200 queries, d_model = 256 and a 6-layer decoder. Everything the seed leaves
open is anchored on a published design and says so in a comment; nothing was tuned to land on
the seed's 38.5M parameters (whether that budget holds is a measured finding, not an input).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

VARIANTS = ("hybrid", "grid-only", "sparse-only")
INPUT_MODES = ("native", "padded")
OUTPUT_MODES = ("nms_free", "nms", "fused")
PANS = ("v8", "v5")
DENSE_HEADS = ("decoupled", "anchor")
SCALES = ("p3", "p4", "p5")
STRIDES = {"p3": 8, "p4": 16, "p5": 32}


@dataclass(frozen=True)
class HSGDetConfig:
    """Every choice that defines an HSG-Det model (or the grid-only YOLOv8-l reference)."""

    name: str = "hsgdet-l-v8"                 # the defaults are the v8 chassis; hsgdet-l is get_config("hsgdet-l")
    variant: str = "hybrid"
    num_classes: int = 80                      # COCO, as the YOLO-l comparison assumes

    # Backbone. Channels: (stem, stride-4, P3, P4, P5). The seed fixes 64/256/512/1024; the
    # stride-4 width 128 is the YOLOv5/v8 plan those numbers come from.
    channels: tuple[int, int, int, int, int] = (64, 128, 256, 512, 1024)
    # CSP depths per stage (stride 4, P3, P4, P5): YOLOv8-l's C2f plan (3, 6, 6, 3).
    depths: tuple[int, int, int, int] = (3, 6, 6, 3)
    csp_block: str = "c2f"                     # "c2f" (YOLOv8) or "c3" (YOLOv5)
    # Stem kernel: 3 (YOLOv8's 3×3 stride-2 conv) or 6 (YOLOv5 v6+'s 6×6 stride-2 conv, padding 2).
    stem_kernel: int = 3
    width_mult: float = 1.0                    # scales every conv width (YOLO rule, multiple of 8)
    # Input planes beyond RGB (default none). The theory experiments' positive control feeds one
    # extra plane that holds the scene latent z everywhere, so a purely local model can read it;
    # only the stem conv's input width changes.
    extra_input_planes: int = 0
    depth_mult: float = 1.0                    # scales every CSP depth (round, at least 1)

    # Global block: RT-DETR's AIFI (one post-norm encoder layer over P5, hidden 256, 8 heads,
    # FFN 1024, 2-D sin-cos positions), wrapped in 1×1 projections 1024→256→1024 and a
    # residual so P5 keeps the seed's 1024 channels for the PAN and the token extractor.
    global_dim: int = 256
    global_heads: int = 8
    global_ffn: int = 1024
    global_layers: int = 1

    # Neck: YOLOv8 PAN (C2f, no shortcut) with depth 3 (l-scale). ``pan="v5"`` is YOLOv5 v6+'s PAN
    # instead: a 1×1 lateral conv before each upsample and C3 blocks without shortcut.
    neck_depth: int = 3
    pan: str = "v8"
    # Sparse tokens: the diagram feeds only P5 to the extractor (B4 -> N2); that is the default.
    token_scales: tuple[str, ...] = ("p5",)
    num_tokens: int = 256                      # K, per scale ("Top-K per scale")
    d_model: int = 256
    fusion_layers: int = 1                     # one encoder layer, as the seed's single O(K²d) term
    fusion_heads: int = 8
    fusion_ffn: int = 1024

    # Sparse query head: DETR decoder (post-norm, learned query positions, shared heads).
    num_queries: int = 200
    decoder_layers: int = 6
    decoder_heads: int = 8
    decoder_ffn: int = 1024                    # DETR/RT-DETR use 2048/1024; the seed counts none
    dropout: float = 0.0

    # Dense head: "decoupled" is YOLOv8's decoupled anchor-free head with DFL box distributions
    # (the seed's "Dense Grid Head, Anchor-free"); "anchor" is YOLOv5's anchor-based Detect (one
    # 1×1 conv per level, 3 anchors × (5 + classes) outputs), for the published YOLOv5 references:
    # it has a forward and an NMS output, and no training loss here. On an HSG-Det reading it
    # contradicts the seed's "Anchor-free" (the budget fit still counts it, and says so).
    dense_head: str = "decoupled"
    reg_max: int = 16

    # Input handling (DESIGN.md): "native" keeps 1080 and the neck resizes by one row where
    # needed; "padded" letterboxes to a multiple of 32 (1088) and maps boxes back.
    input_mode: str = "native"
    pad_multiple: int = 32
    pad_value: float = 114 / 255

    # Matching and losses (published defaults: YOLOv8 TAL and gains; Deformable-DETR costs).
    tal_topk: int = 10
    tal_alpha: float = 0.5
    tal_beta: float = 6.0
    match_cost_class: float = 2.0
    match_cost_l1: float = 5.0
    match_cost_giou: float = 2.0
    loss_dense_cls: float = 0.5
    loss_dense_box: float = 7.5
    loss_dense_dfl: float = 1.5
    loss_sparse_cls: float = 2.0
    loss_sparse_l1: float = 5.0
    loss_sparse_giou: float = 2.0
    loss_token: float = 1.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0

    # Output (eval mode).
    output_mode: str = "nms_free"
    score_threshold: float = 0.05
    nms_iou: float = 0.7
    max_detections: int = 300
    pre_nms_topk: int = 10000

    def __post_init__(self) -> None:
        _check_choice("variant", self.variant, VARIANTS)
        _check_choice("input_mode", self.input_mode, INPUT_MODES)
        _check_choice("output_mode", self.output_mode, OUTPUT_MODES)
        _check_choice("csp_block", self.csp_block, ("c2f", "c3"))
        _check_choice("pan", self.pan, PANS)
        _check_choice("dense_head", self.dense_head, DENSE_HEADS)
        if self.stem_kernel not in (3, 6):
            raise ValueError(f"stem_kernel={self.stem_kernel!r} is not accepted; choose 3 (YOLOv8) or 6 (YOLOv5)")
        if not self.token_scales or any(s not in SCALES for s in self.token_scales) \
                or len(set(self.token_scales)) != len(self.token_scales):
            raise ValueError(f"token_scales={self.token_scales!r} is not accepted; "
                             f"use distinct names from {SCALES}, e.g. ('p5',) or ('p3', 'p4', 'p5')")
        positive = dict(num_classes=self.num_classes, num_tokens=self.num_tokens, d_model=self.d_model,
                        num_queries=self.num_queries, decoder_layers=self.decoder_layers,
                        width_mult=self.width_mult, depth_mult=self.depth_mult, reg_max=self.reg_max)
        for key, value in positive.items():
            if value <= 0:
                raise ValueError(f"{key}={value!r} is not accepted; it must be > 0")
        if self.extra_input_planes < 0:
            raise ValueError(f"extra_input_planes={self.extra_input_planes!r} is not accepted; it must be >= 0")
        if self.variant == "grid-only" and self.output_mode != "nms":
            object.__setattr__(self, "output_mode", "nms")        # the only mode a grid model has
        if self.variant == "sparse-only" and self.output_mode != "nms_free":
            object.__setattr__(self, "output_mode", "nms_free")

    @property
    def in_channels(self) -> int:
        """Channels the network takes: RGB plus ``extra_input_planes``."""
        return 3 + self.extra_input_planes

    @property
    def has_dense(self) -> bool:
        return self.variant != "sparse-only"

    @property
    def has_sparse(self) -> bool:
        return self.variant != "grid-only"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_choice(key: str, value: Any, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise ValueError(f"{key}={value!r} is not accepted; choose one of {', '.join(accepted)}")


# The chassis HSG-Det can be read onto (issue 15). Every reading keeps the seed's channel plan
# (64 → 256/512/1024), K, N, d_model and decoder depth; they differ in what the seed leaves open.
YOLOV5 = {"stem_kernel": 6, "csp_block": "c3", "depths": (3, 6, 9, 3), "pan": "v5"}   # yolov5l.yaml (v6.0+)
M_DEPTH = 0.67                # YOLOv5-m and YOLOv8-m's depth_multiple: 3/6/9 -> 2/4/6, neck 3 -> 2
CHASSIS: dict[str, dict[str, Any]] = {
    # YOLOv8-l's stem, C2f depths 3/6/6/3, PAN (C2f, depth 3) and decoupled head, P5 widened to 1024.
    "hsgdet-l-v8": {},
    # YOLOv5-l's 6×6 stem, C3 depths 3/6/9/3, SPPF and C3 PAN with its lateral convs; its widths
    # are the seed's plan exactly; the dense head is the anchor-free one the seed's diagram names.
    "hsgdet-l-v5": dict(YOLOV5),
    # "CSP blocks (similar scale to YOLO-m size)": the seed's channel plan with YOLO-m's depths.
    "hsgdet-m-v8": {"depth_mult": M_DEPTH},
    "hsgdet-m-v5": {**YOLOV5, "depth_mult": M_DEPTH},
}
# The primary reading: the chassis the declared rule of hsgprof/claims/readings.py picks
# (see docs/readings.md); ``hsgdet-l`` and its variants are aliases of it.
PRIMARY = "hsgdet-l-v5"

PRESETS: dict[str, dict[str, Any]] = {
    # The seed's model on the primary reading, and its variants.
    "hsgdet-l": dict(CHASSIS[PRIMARY]),
    "hsgdet-l-grid": {**CHASSIS[PRIMARY], "variant": "grid-only"},
    "hsgdet-l-sparse": {**CHASSIS[PRIMARY], "variant": "sparse-only"},
    "hsgdet-l-ms": {**CHASSIS[PRIMARY], "token_scales": ("p3", "p4", "p5")},
    # HSG-Det on each chassis (every variant works on each: add variant=grid-only or sparse-only).
    **{name: dict(over) for name, over in CHASSIS.items()},
    # Published detectors rebuilt from their model files, grid-only, validated against their
    # published parameters and FLOPs at 640 (tests/test_model_reference.py, hsgprof/claims/seed.py).
    # YOLOv8-l (C2f 3/6/6/3, widths 64..512 because YOLOv8 caps channels at 512 for l, SPPF, PAN,
    # DFL head, 80 classes): the grid-only path with YOLOv8-l's widths.
    "yolov8l-ref": {"variant": "grid-only", "channels": (64, 128, 256, 512, 512)},
    # YOLOv8-m: width 0.75 with channels capped at 768 (so P5 = 576), depth 0.67.
    "yolov8m-ref": {"variant": "grid-only", "channels": (48, 96, 192, 384, 576), "depth_mult": M_DEPTH},
    # YOLOv5-l v6+ (yolov5l.yaml): 6×6 stem, C3 3/6/9/3, SPPF, C3 PAN, anchor-based Detect (3 anchors/level).
    "yolov5l-ref": {**YOLOV5, "variant": "grid-only", "dense_head": "anchor"},
    # YOLOv5-m: yolov5l-ref with width 0.75, depth 0.67 (yolov5m.yaml).
    "yolov5m-ref": {**YOLOV5, "variant": "grid-only", "dense_head": "anchor", "width_mult": 0.75,
                    "depth_mult": M_DEPTH},
    # A CPU-sized model for the theory experiments and tests (same code path, narrow and shallow).
    "hsgdet-tiny": {"width_mult": 0.125, "depth_mult": 0.34, "num_classes": 4, "global_dim": 32,
                    "global_heads": 2, "global_ffn": 64, "d_model": 32, "fusion_heads": 2,
                    "fusion_ffn": 64, "num_queries": 20, "num_tokens": 32, "decoder_layers": 2,
                    "decoder_heads": 2, "decoder_ffn": 64, "neck_depth": 1},
}


def get_config(preset: str = "hsgdet-l", **overrides: Any) -> HSGDetConfig:
    """The config of a named preset with ``overrides`` applied; bad names raise ValueError."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; accepted: {', '.join(PRESETS)}")
    known = {f.name for f in dataclasses.fields(HSGDetConfig)}
    for key in overrides:
        if key not in known:
            raise ValueError(f"unknown config field {key!r} for preset {preset!r}; "
                             f"accepted fields: {', '.join(sorted(known))}")
    values = {"name": preset, **PRESETS[preset], **overrides}
    if "token_scales" in values:
        values["token_scales"] = tuple(values["token_scales"])
    return HSGDetConfig(**values)
