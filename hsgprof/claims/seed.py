"""What the HSG-Det seed (../shared/seed/HSG-Det.md) states, transcribed as data.

These are claims, not measurements: they are the values hsgprof's measurements are set beside.
Each entry keeps the seed section it comes from.
"""

from __future__ import annotations

# Section 3 "Parameter Estimation": per-component parameter budgets (parameters, SI units).
SEED_COMPONENT_PARAMS: dict[str, float] = {
    "Stem": 0.1e6,
    "P3 stage": 3e6,
    "P4 stage": 6e6,
    "P5 stage": 10e6,
    "Global block": 3e6,
    "PAN path": 5e6,
    "Token extractor": 1e6,
    "Token fusion": 3e6,
    "Dense head": 4e6,
    "Sparse head": 3.5e6,
    "Backbone": 22e6,
    "Neck": 9e6,
    "Head": 7.5e6,
    "Total": 38.5e6,
}
SEED_PARAMS_SECTION = "3 Parameter Estimation"

# Section 3 "Approx channel plan": stem 3→64, P3 256, P4 512, P5 1024 (output channels).
SEED_CHANNELS = {"stem": 64, "p3": 256, "p4": 512, "p5": 1024}

# Section 3: the decoder formula "6 × (4d²) ≈ 6 × 262k ≈ 1.6M" (d = 256), plus "projection layers ≈ 2M".
SEED_DECODER = {"layers": 6, "d_model": 256, "per_layer_params": 4 * 256**2, "params": 1.6e6,
                "projection_params": 2e6, "sparse_head_params": 3.5e6, "num_queries": 200}

# Section 4 "FLOPs Calculation (1080p)" (the seed says GFLOPs; DESIGN.md: FLOPs = 2 × MACs).
SEED_FLOPS = {
    "input_hw": (1080, 1920),
    "scaling_factor": 5.07,            # (1920/640) × (1080/640) ≈ 3 × 1.69
    "reference_gflops_640": 110.0,     # "If 640 model ~ 110 GFLOPs (YOLO-l scale)"
    "backbone_gflops": 558.0,          # 110 × 5.07
    "p5_tokens": 34 * 60,              # "34 × 60 = 2040 tokens"
    "num_tokens": 256,                 # K
    "token_attention_ops": 16.7e6,     # O(K²d) = 256² · 256
    "decoder_ops": 13e6,               # O(NKd) = 200 · 256 · 256
    "total_gflops": 570.0,
    "global_share_max": 0.05,          # "Global reasoning cost <5% total"
}
SEED_FLOPS_SECTION = "4 FLOPs Calculation (1080p)"

# Section 2 "Tensor Shapes (1080p)".
SEED_SHAPES = {"p3": {"stride": 8, "hw": (135, 240), "channels": 256},
               "p4": {"stride": 16, "hw": (67, 120), "channels": 512},
               "p5": {"stride": 32, "hw": (34, 60), "channels": 1024}}

# Section 7 "Memory Footprint (FP16)" (the seed writes MB/GB; bytes here, decimal as written).
SEED_MEMORY = {"fp16_params_bytes": 77e6, "train_activation_bytes": (1.2e9, 1.5e9),
               "inference_activation_bytes": (400e6, 600e6), "card_gb": 16}

# Published reference figures the seed leans on (not seed claims, not our measurements). Ultralytics
# computes GFLOPs as 2 × thop MACs of the BN-folded model at 640×640 (model_info in yolov5's
# utils/torch_utils.py); its "parameters" are those of the model it prints, BN-folded for the tables.
PUBLISHED = {
    "yolov8l_params": 43_691_520,        # ultralytics yolov8.yaml: "43691520 parameters, 43691504 gradients"
    "yolov8l_trainable_params": 43_691_504,
    "yolov8l_gflops_640": 165.2,         # Ultralytics docs table (fused model, 2 × thop MACs)
    # ultralytics yolov8.yaml, scale m: "25902640 parameters, 25902624 gradients"; docs/en/models/yolov8.md
    # table: YOLOv8m 25.9M params, 78.9 GFLOPs at 640.
    "yolov8m_params": 25_902_640,
    "yolov8m_trainable_params": 25_902_624,
    "yolov8m_gflops_640": 78.9,
    # ultralytics/yolov5 README "Pretrained Checkpoints" (v6.2/v7.0 and today; the 640 rows are the
    # anchor-based v6+ checkpoints): YOLOv5l 46.5M params, 109.1 GFLOPs@640; YOLOv5m 21.2M, 49.0.
    "yolov5l_params_m": 46.5,
    "yolov5l_gflops_640": 109.1,
    "yolov5m_params_m": 21.2,
    "yolov5m_gflops_640": 49.0,
    # ultralytics/yolov5 v7.0 tutorial.ipynb, the fused model printed by detect.py / val.py:
    # "YOLOv5s summary: 213 layers, 7225885 parameters, 0 gradients" (width 0.50, depth 0.33): an
    # exact check of the C3 / SPPF / PAN / Detect structure at another scale.
    "yolov5s_fused_params": 7_225_885,
}

# The published GFLOPs at 640 of each reference preset (the keys are hsgdet presets).
REFERENCE_GFLOPS_640 = {"yolov8l-ref": PUBLISHED["yolov8l_gflops_640"], "yolov8m-ref": PUBLISHED["yolov8m_gflops_640"],
                        "yolov5l-ref": PUBLISHED["yolov5l_gflops_640"], "yolov5m-ref": PUBLISHED["yolov5m_gflops_640"]}

# The seed's sections, as the ledger and hsgprof/claims/hsgdet.yaml name them (the seed's own numbering;
# "Final Summary" is its closing table). Every claim's ``section`` is one of these.
SEED_SECTIONS = ("2 Tensor Shapes", SEED_PARAMS_SECTION, SEED_FLOPS_SECTION, "5 Entropy Theorem",
                 "5 Corollary (Occlusion Robustness)", "6 Why Stable?", "7 Memory Footprint (FP16)", "Final Summary")
