"""Readings of the seed: the choices it leaves open, named, and the declared rule for the primary one.

The seed fixes the channel plan (64 → 256/512/1024), K, N, d_model and the decoder depth; it leaves
open the CSP block and depths, the stem, the PAN and the dense head's design. A *reading* is one
complete set of those choices: a chassis (a published detector's backbone, PAN and depths) carrying
the seed's channel plan and its sparse branch. Every reading is data (name → preset + overrides +
description) so a claims file can refer to it by name.

The primary reading is chosen by :func:`choose_primary` from the seed's own premises, scored by
:func:`premise_scores`; both are declared here, before any verdict under a reading is computed
(docs/readings.md says the same in prose). ``hsgdet-l`` is an alias of the winner's preset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from .seed import SEED_CHANNELS, SEED_FLOPS


@dataclass(frozen=True)
class Reading:
    """One reading of the seed's open choices."""

    name: str
    preset: str                       # an HSG-Det preset (model/hsgdet/config.py PRESETS)
    family: str                       # the chassis' detector family: "yolov8" or "yolov5"
    reference: str                    # the published detector whose chassis it is (a *-ref preset)
    description: str
    overrides: dict[str, Any] = field(default_factory=dict)


# The published references of each family, by scale (validated in tests/test_model_reference.py).
FAMILIES: dict[str, dict[str, str]] = {
    "yolov8": {"l": "yolov8l-ref", "m": "yolov8m-ref"},
    "yolov5": {"l": "yolov5l-ref", "m": "yolov5m-ref"},
}

READINGS: dict[str, Reading] = {r.name: r for r in (
    Reading("hsgdet-l-v8", "hsgdet-l-v8", "yolov8", "yolov8l-ref",
            "YOLOv8-l's chassis (3×3 stem, C2f 3/6/6/3, C2f PAN depth 3, decoupled DFL head) with the seed's "
            "1024-channel P5 (YOLOv8-l caps P5 at 512): hsgdet-l until issue 15"),
    Reading("hsgdet-l-v5", "hsgdet-l-v5", "yolov5", "yolov5l-ref",
            "YOLOv5-l's chassis (6×6 stem, C3 3/6/9/3, SPPF, C3 PAN with lateral convs), whose widths are the "
            "seed's plan exactly, with the seed's anchor-free dense head (YOLOv8's decoupled head)"),
    Reading("hsgdet-m-v8", "hsgdet-m-v8", "yolov8", "yolov8m-ref",
            "'CSP blocks, similar scale to YOLO-m size': YOLOv8-m's depths (C2f 2/4/4/2, PAN depth 2) with the "
            "seed's channel plan"),
    Reading("hsgdet-m-v5", "hsgdet-m-v5", "yolov5", "yolov5m-ref",
            "'CSP blocks, similar scale to YOLO-m size': YOLOv5-m's depths (C3 2/4/6/2, PAN depth 2) on the v5 "
            "chassis with the seed's channel plan"),
)}


def reading(name: str) -> Reading:
    """The reading called ``name``; an unknown name raises a one-line error listing the accepted ones."""
    from hsgprof.errors import HsgprofError

    if name not in READINGS:
        raise HsgprofError(f"unknown reading {name!r}; accepted: {', '.join(READINGS)}")
    return READINGS[name]


# --------------------------------------------------------------------------------- the declared rule

@dataclass(frozen=True)
class Premise:
    """A premise the seed states about its own model, and how a chassis is scored on it (0 to 1)."""

    key: str
    section: str
    quote: str
    scoring: str


PREMISES: tuple[Premise, ...] = (
    Premise("channel_plan", "3 Parameter Estimation", "Approx channel plan: Stem 3→64, P3 256, P4 512, P5 1024",
            "the fraction of the four seed widths (stem, P3, P4, P5) that the chassis' published model has itself "
            "(every reading carries the seed's plan; this asks whose plan it is)"),
    Premise("base_flops_640", "4 FLOPs Calculation", "If 640 model ~ 110 GFLOPs",
            "1 − min(1, |log2(F / 110 G)|), F = the referee's GEMM FLOPs (2 × MACs) of the reading's grid-only "
            "model at 640×640: 1 at 110 G, 0 at a factor of 2 either way"),
    Premise("yolo_l_scale", "3 and 4", "(YOLO-l scale); Comparable to YOLO-l scale",
            "1 if the reading's CSP and PAN depths are its family's l depths, else 0"),
    Premise("yolo_m_csp", "3 Parameter Estimation", "Using CSP blocks (similar scale to YOLO-m size)",
            "1 if the reading's CSP and PAN depths are its family's m depths, else 0"),
)

PRIMARY_RULE = (
    "Each reading is scored 0 to 1 on each of the four premises above, and the scores are added with equal "
    "weights: the seed states each once as a premise of its arithmetic, and nothing in it ranks one above "
    "another. A reading's depths are l or m, never both, so the two depth premises together add exactly 1 to "
    "every reading: the seed's 'YOLO-l scale' and 'YOLO-m size' contradict each other and decide nothing; the "
    "channel plan and the base FLOPs decide. The highest total is the primary reading. Ties (totals within "
    "1e-9) go to the higher base-FLOPs score (the number the seed's 570 G is derived from), then to the higher "
    "channel-plan score, then to the name in alphabetical order."
)
TIE_TOLERANCE = 1e-9


def premise_scores(facts: dict[str, Any]) -> dict[str, float]:
    """The four premise scores of one reading from its measured facts.

    ``facts``: ``reference_channels`` (stem, P3, P4, P5 of the chassis' published model),
    ``grid_flops_640`` (FLOPs), ``depths_match`` ("l", "m" or "" : which of its family's references
    has the reading's CSP and PAN depths).
    """
    seed = (SEED_CHANNELS["stem"], SEED_CHANNELS["p3"], SEED_CHANNELS["p4"], SEED_CHANNELS["p5"])
    ref = tuple(facts["reference_channels"])
    if len(ref) != 4:
        raise ValueError(f"reference_channels={ref!r}: give four widths (stem, P3, P4, P5)")
    flops = float(facts["grid_flops_640"])
    if not flops > 0:
        raise ValueError(f"grid_flops_640={flops!r}: a positive FLOP count is needed")
    premise = SEED_FLOPS["reference_gflops_640"] * 1e9
    return {"channel_plan": sum(a == b for a, b in zip(ref, seed)) / 4,
            "base_flops_640": 1 - min(1.0, abs(math.log2(flops / premise))),
            "yolo_l_scale": float(facts["depths_match"] == "l"),
            "yolo_m_csp": float(facts["depths_match"] == "m")}


def choose_primary(scores: dict[str, dict[str, float]]) -> str:
    """The primary reading under :data:`PRIMARY_RULE` from {reading: premise scores}."""
    if not scores:
        raise ValueError("no readings to choose from")
    totals = {name: sum(s[p.key] for p in PREMISES) for name, s in scores.items()}
    best = max(totals.values())
    tied = sorted(n for n, t in totals.items() if best - t <= TIE_TOLERANCE)
    return sorted(tied, key=lambda n: (-scores[n]["base_flops_640"], -scores[n]["channel_plan"], n))[0]


def reading_facts(r: Reading) -> dict[str, Any]:
    """Measure the facts :func:`premise_scores` needs (configs, and one referee count on the meta device)."""
    from hsgprof.adapters.hsgdet import chassis_facts
    from hsgprof.counting import count

    own = chassis_facts(r.preset, **r.overrides)
    match = ""
    for scale, ref in FAMILIES[r.family].items():
        theirs = chassis_facts(ref)
        if (theirs["depths"], theirs["neck_depth"]) == (own["depths"], own["neck_depth"]):
            match = scale
    grid = count(r.preset, "640x640", "native", "analytic", **{**r.overrides, "variant": "grid-only"})
    return {"reading": r.name, "reference": r.reference, "reference_channels": chassis_facts(r.reference)["channels"],
            "channels": own["channels"], "depths": own["depths"], "neck_depth": own["neck_depth"],
            "depths_match": match, "grid_flops_640": grid.flops, "grid_params": grid.params}


# ------------------------------------------------------------------ which config a GPU result measured

# GPU results record ``meta["config_fingerprints"]`` (preset name -> config fingerprint) since issue
# 15. Results without it were written before, when these names meant these configs: hsgdet-l and its
# variants were the YOLOv8-l chassis (hsgdet-l-v8). Such results belong to that reading, never to
# today's hsgdet-l.
LEGACY_TARGETS: dict[str, tuple[str, dict[str, Any]]] = {
    "hsgdet-l": ("hsgdet-l-v8", {}),
    "hsgdet-l-grid": ("hsgdet-l-v8", {"variant": "grid-only"}),
    "hsgdet-l-sparse": ("hsgdet-l-v8", {"variant": "sparse-only"}),
    "hsgdet-l-ms": ("hsgdet-l-v8", {"token_scales": ("p3", "p4", "p5")}),
    "yolov8l-ref": ("yolov8l-ref", {}),
}


def measured_fingerprint(doc: dict[str, Any], target: str) -> str | None:
    """The config fingerprint of the model ``target`` named when the results ``doc`` were measured."""
    from hsgprof.adapters.hsgdet import config_fingerprint

    recorded = (doc.get("meta") or {}).get("config_fingerprints")
    if recorded is not None:
        return recorded.get(target)
    legacy = LEGACY_TARGETS.get(target)
    return config_fingerprint(legacy[0], **legacy[1]) if legacy else None


def measured_on(doc: dict[str, Any], target: str, subject: str) -> bool:
    """Whether the results' ``target`` rows were measured on today's ``subject`` preset (same config)."""
    from hsgprof.adapters.hsgdet import config_fingerprint, presets

    if subject not in presets():
        return target == subject
    fp = measured_fingerprint(doc, target)
    return fp is not None and fp == config_fingerprint(subject)


def measured_label(doc: dict[str, Any], target: str) -> str:
    """The name a GPU result's target has today: itself if its config is unchanged, else the reading
    (and variant) it was measured on, e.g. ``hsgdet-l-v8`` for a pre-issue-15 ``hsgdet-l``."""
    from hsgprof.adapters.hsgdet import config_fingerprint, presets

    fp = measured_fingerprint(doc, target)
    if fp is None or target not in presets() or fp == config_fingerprint(target):
        return target
    for r in READINGS.values():
        for variant in ("hybrid", "grid-only", "sparse-only"):
            if fp == config_fingerprint(r.preset, **{**r.overrides, "variant": variant}):
                return r.name if variant == "hybrid" else f"{r.name} ({variant})"
    return f"{target} (an earlier config)"
