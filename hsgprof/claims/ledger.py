"""The claims ledger: every claim of the HSG-Det seed as data, with its verdict rule declared.

Each claim names the measurement that tests it (a function in :mod:`hsgprof.claims.measures`,
reading results files) and a rule with its tolerance fixed here, before any measurement. The
claimed values come from :mod:`hsgprof.claims.seed`, never from a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import seed
from .rules import (AtLeast, AtMost, Approx, Exact, InRange, Negative, NotMeasurable, Positive, Rule,
                    Verdict)

APPROX = Approx(0.10)       # the tolerance for every "≈"/"~" number of the seed, declared once


@dataclass(frozen=True)
class Claim:
    """One statement of the seed, what would test it, and how the verdict is reached."""

    id: str
    section: str
    statement: str
    claimed: Any
    unit: str
    conditions: str
    measure: str            # name of the measurement function in hsgprof.claims.measures
    rule: Rule


def _shape_claims() -> list[Claim]:
    out = []
    for level, s in seed.SEED_SHAPES.items():
        out.append(Claim(f"shape.{level}", "2 Tensor Shapes", f"{level.upper()}: stride {s['stride']}, "
                         f"{s['hw'][0]}×{s['hw'][1]}, {s['channels']} channels",
                         (*s["hw"], s["channels"]), "rows, cols, channels",
                         "1080×1920 input, native mode", f"shape_{level}", Exact()))
    return out


_PARAM_IDS = {"Stem": "stem", "P3 stage": "p3", "P4 stage": "p4", "P5 stage": "p5",
              "Global block": "global_block", "PAN path": "pan", "Token extractor": "token_extractor",
              "Token fusion": "token_fusion", "Dense head": "dense_head", "Sparse head": "sparse_head",
              "Backbone": "backbone", "Neck": "neck", "Head": "head", "Total": "total"}


def _param_claims() -> list[Claim]:
    return [Claim(f"params.{key}", seed.SEED_PARAMS_SECTION, f"{name} ≈ {seed.SEED_COMPONENT_PARAMS[name] / 1e6:g}M parameters",
                  seed.SEED_COMPONENT_PARAMS[name], "parameters", "hsgdet-l as built from the seed's channel plan",
                  f"params:{name}", APPROX)
            for name, key in _PARAM_IDS.items()]


def _claims() -> list[Claim]:
    f, d, m = seed.SEED_FLOPS, seed.SEED_DECODER, seed.SEED_MEMORY
    flops = seed.SEED_FLOPS_SECTION
    return [
        *_shape_claims(),
        *_param_claims(),
        Claim("params.decoder_formula", seed.SEED_PARAMS_SECTION,
              "6-layer decoder params ≈ 6 × 4d² ≈ 1.6M (d = 256)", d["params"], "parameters",
              "the 6 decoder layers of head.sparse", "decoder_layer_params", APPROX),
        Claim("params.yolo_l_scale", seed.SEED_PARAMS_SECTION, "Total comparable to YOLO-l scale",
              1.0, "ratio of parameters HSG-Det-l / the YOLO-l reference of its chassis' family", "declared: 'comparable' = ratio within ±25%",
              "params_ratio_yolo", Approx(0.25)),
        Claim("flops.scaling", flops, "1080p costs (1920/640)·(1080/640) ≈ 5.07× a 640 model",
              f["scaling_factor"], "ratio", "the YOLO-l reference of hsgdet-l's family, 1080×1920 native vs 640×640",
              "flops_scaling", APPROX),
        Claim("flops.yolo_l_640", flops, "a YOLO-l-scale model at 640 is ~110 GFLOPs",
              f["reference_gflops_640"] * 1e9, "FLOPs (2×MAC)", "the YOLO-l reference of hsgdet-l's family "
              "(docs/readings.md), 640×640", "flops_yolo_640", APPROX),
        Claim("flops.backbone", flops, "backbone ≈ 110 × 5.07 ≈ 558 GFLOPs at 1080p", f["backbone_gflops"] * 1e9,
              "FLOPs (2×MAC)", "hsgdet-l Backbone group, 1080×1920 native", "flops_backbone", APPROX),
        Claim("flops.token_attention", flops, "sparse global attention O(K²d) = 256²·256 = 16.7M ops",
              f["token_attention_ops"], "ops (seed's unit; compared as FLOPs, 2×MAC)",
              "hsgdet-l Token fusion, K = 256, d = 256", "flops_token_fusion", APPROX),
        Claim("flops.decoder", flops, "query decoder O(NKd) = 200·256·256 = 13M ops", f["decoder_ops"],
              "ops (seed's unit; compared as FLOPs, 2×MAC)", "hsgdet-l Sparse head, N = 200, K = 256",
              "flops_sparse_head", APPROX),
        Claim("flops.total", flops, "total ≈ 570 GFLOPs at 1080p", f["total_gflops"] * 1e9, "FLOPs (2×MAC)",
              "hsgdet-l, 1080×1920 native, forward without post-processing", "flops_total", APPROX),
        Claim("share.global_flops", "Final Summary", "global reasoning cost < 5% of total (FLOPs)",
              f["global_share_max"], "fraction of FLOPs",
              "Global block + Token extractor + Token fusion + Sparse head, 1080×1920", "global_share_flops", AtMost()),
        Claim("share.global_time", "Final Summary", "global reasoning cost < 5% of total (time)",
              f["global_share_max"], "fraction of latency", "same components, batch 1", "global_share_time", AtMost()),
        Claim("memory.fp16_params", "7 Memory Footprint (FP16)", "params 38.5M × 2 B ≈ 77 MB",
              m["fp16_params_bytes"], "bytes", "hsgdet-l parameters stored in fp16", "fp16_param_bytes", APPROX),
        Claim("memory.train_activations", "7 Memory Footprint (FP16)", "activations ≈ 1.2–1.5 GB in training",
              m["train_activation_bytes"], "bytes", "hsgdet-l, 1080×1920, batch 1, fp16 autocast, training step",
              "train_activation_bytes", InRange(0.10)),
        Claim("memory.inference_activations", "7 Memory Footprint (FP16)", "activations ≈ 400–600 MB in inference",
              m["inference_activation_bytes"], "bytes", "hsgdet-l, 1080×1920, batch 1, fp16, inference",
              "inference_activation_bytes", InRange(0.10)),
        Claim("memory.16gb", "7 Memory Footprint (FP16)", "suitable for a 16 GB GPU", 1, "largest training batch",
              "hsgdet-l, 1080×1920, fp16 AMP training step on a 16 GB card", "max_batch_16gb_train", AtLeast()),
        Claim("latency.near_yolo_l", "Final Summary", "latency near YOLO-l scale", 1.0,
              "latency ratio HSG-Det-l / its family's YOLO-l reference", "declared: 'near' = ratio within ±25%; batch 1, same device and run",
              "latency_ratio_yolo", Approx(0.25)),
        Claim("nms.optional", "Final Summary", "NMS optional", None, "AP",
              "synthetic scenes; NMS-free (query head) vs NMS (dense head) output of the trained hybrid",
              "nms_optional", Verdict("supported if the NMS-free AP is at least 90% of the NMS AP (seeds' mean)")),
        Claim("dense.strong", "Final Summary", "dense objects: strong", None, "AP on the densest bin",
              "synthetic dense scenes; hybrid vs grid-only", "dense_strong",
              Verdict("'strong' has no yardstick in the seed; tested as: hybrid AP ≥ grid-only AP on the "
                      "densest bin, CI over seeds")),
        Claim("occlusion.strong", "Final Summary", "occlusion: strong", None, "AP on the most occluded bin",
              "synthetic occluded scenes; hybrid vs grid-only", "occlusion_strong",
              Verdict("tested as: hybrid AP ≥ grid-only AP on the most occluded bin, CI over seeds")),
        Claim("theorem.entropy", "5 Entropy Theorem", "H_hybrid < H_pure grid", 0.0,
              "nats per object, H_hybrid − H_grid (held-out NLL, an upper bound on H(Y|X))",
              "trained hybrid vs grid-only, synthetic scenes with a global latent", "entropy_difference", Negative()),
        Claim("theorem.bound", "5 Entropy Theorem", "H(Y|X;θ) ≤ H_grid(Y|X;θ_g) − I(Y_global; Q | X)", None, "",
              "", "mi_queries_given_grid",
              NotMeasurable("Q is a deterministic function of X, so I(Y_global; Q | X) = 0 exactly and the bound "
                            "reduces to H_hybrid ≤ H_grid; I(Y_global; Q | G), G = grid features, is shown instead")),
        Claim("corollary.occlusion", "5 Corollary (Occlusion Robustness)", "H_hybrid ≤ H_grid − Δ with Δ > 0 for overlapping objects",
              0.0, "nats per object, Δ = H_grid − H_hybrid", "overlapping pairs, most occluded level",
              "delta_occlusion", Positive()),
        Claim("corollary.delta_capacity", "5 Corollary (Occlusion Robustness)", "Δ ∝ attention capacity", None, "",
              "Δ over N, K, heads and decoder layers", "delta_capacity",
              Verdict("supported if Δ rises monotonically with capacity and a line through the origin fits (R² ≥ 0.9)")),
        Claim("stability.no_collapse", "6 Why Stable?", "decoupled branches: no gradient collapse", None, "",
              "per-branch gradient norms during training, hybrid", "gradient_collapse",
              Verdict("declared in the experiment config: no run has a branch whose gradient norm stays below "
                      "the collapse threshold for the declared window")),
        Claim("stability.no_quadratic_explosion", "6 Why Stable?", "no full quadratic attention explosion", None, "",
              "attention FLOPs vs input resolution (meta-device counts, hsgdet-l)", "attention_scaling",
              Verdict("supported only if every attention in the model grows at most linearly with input pixels "
                      "(growth exponent ≤ 1.1 between the smallest and largest swept input); the token path "
                      "(K fixed) and the global block (all P5 cells) are reported separately")),
        Claim("convergence.faster_than_detr", "6 Why Stable?", "convergence faster than pure DETR", 0.0,
              "steps to reach the declared AP, hybrid − sparse-only", "same data, budget and seeds",
              "convergence_difference", Negative()),
    ]


LEDGER: tuple[Claim, ...] = tuple(_claims())


def claim(claim_id: str) -> Claim:
    """The ledger entry with this id."""
    for c in LEDGER:
        if c.id == claim_id:
            return c
    raise KeyError(f"no claim {claim_id!r}; ledger ids: {', '.join(c.id for c in LEDGER)}")
