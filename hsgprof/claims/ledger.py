"""The claims ledger: every claim of the HSG-Det seed as data, with its verdict rule declared.

Two sources, one ledger:

- the claims a claims file can express (shapes, parameters, FLOPs, shares, memory, the 16 GB
  card, latency) live in ``hsgdet.yaml`` beside this module, the same file ``hsgprof verify``
  judges; their values are the seed's (tests keep them equal to :mod:`hsgprof.claims.seed`);
- the theory claims (entropy theorem, corollary, stability, convergence, NMS, dense/occlusion
  "strong", attention scaling) are judged by experiments and declared below in code.

Each ledger claim names the report's reader of the results files that tests it (a function in
:mod:`hsgprof.claims.measures`) and a rule with its tolerance fixed before any measurement.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from .claim import Claim
from .rules import Negative, NotMeasurable, Positive, Verdict
from .schema import ClaimSpec, load_claims

HSGDET_CLAIMS = Path(str(files("hsgprof.claims") / "hsgdet.yaml"))     # package data: installed beside this module

# The report judges the file's claims from the analyses' results files: the reader of each.
REPORT_MEASURES: dict[str, str] = {
    "shape.p3": "shape_p3", "shape.p4": "shape_p4", "shape.p5": "shape_p5",
    **{f"params.{key}": f"params:{name}" for key, name in (
        ("stem", "Stem"), ("p3", "P3 stage"), ("p4", "P4 stage"), ("p5", "P5 stage"),
        ("global_block", "Global block"), ("pan", "PAN path"), ("token_extractor", "Token extractor"),
        ("token_fusion", "Token fusion"), ("dense_head", "Dense head"), ("sparse_head", "Sparse head"),
        ("backbone", "Backbone"), ("neck", "Neck"), ("head", "Head"), ("total", "Total"))},
    "params.decoder_formula": "decoder_layer_params", "params.yolo_l_scale": "params_ratio_yolo",
    "flops.scaling": "flops_scaling", "flops.yolo_l_640": "flops_yolo_640", "flops.backbone": "flops_backbone",
    "flops.token_attention": "flops_token_fusion", "flops.decoder": "flops_sparse_head",
    "flops.total": "flops_total", "share.global_flops": "global_share_flops",
    "share.global_time": "global_share_time", "memory.fp16_params": "fp16_param_bytes",
    "memory.train_activations": "train_activation_bytes",
    "memory.inference_activations": "inference_activation_bytes", "memory.16gb": "max_batch_16gb_train",
    "latency.near_yolo_l": "latency_ratio_yolo",
}


def as_claim(spec: ClaimSpec, measure: str = "") -> Claim:
    """A claims-file entry as a ledger :class:`Claim` (``measure``: the report's reader; default its kind)."""
    return Claim(spec.id, spec.section, spec.statement or spec.id, spec.value, spec.unit, spec.conditions,
                 measure or spec.kind, spec.rule)


def _file_claims() -> list[Claim]:
    return [as_claim(spec, REPORT_MEASURES.get(spec.id, "")) for spec in load_claims(HSGDET_CLAIMS).claims]


def _theory_claims() -> list[Claim]:
    return [
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


LEDGER: tuple[Claim, ...] = (*_file_claims(), *_theory_claims())


def claim(claim_id: str) -> Claim:
    """The ledger entry with this id."""
    for c in LEDGER:
        if c.id == claim_id:
            return c
    raise KeyError(f"no claim {claim_id!r}; ledger ids: {', '.join(c.id for c in LEDGER)}")
