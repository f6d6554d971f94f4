"""The declared experiment: data, budget, metrics, representations and verdict rules, fixed up front.

Everything an experiment's outcome could be tuned on lives in one frozen dataclass, written into
every results file (and hashed into the cache key) before any model is trained. Presets:

* ``smoke``: a few dozen steps, one seed; for tests and notebooks that must finish in seconds.
* ``quick``: the CPU default (three variants × three seeds, 64×64 scenes, hsgdet-tiny);
  the budget, the token scales, the gradient clip and the convergence target were set from
  feasibility runs of the hybrid alone (``analyses/experiments_feasibility.py``: its query head
  first detects anything after ~700–1000 steps; no head used the key within 1000 steps),
  before any other variant was trained.
* ``full``: a GPU run (128×128 scenes, wider model, more steps, five seeds, a per-axis
  capacity sweep).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from hsgprof.errors import HsgprofError
from hsgprof.adapters.hsgdet_experiments import VARIANTS, SceneConfig

# Object-count bins for AP by density and occlusion-fraction bins for AP/NLL by occlusion
# (lower edge inclusive, upper exclusive; the last upper edge is open).
DENSITY_BINS: tuple[tuple[int, int], ...] = ((1, 6), (6, 21), (21, 61), (61, 201), (201, 100000))
OCCLUSION_BINS: tuple[tuple[float, float], ...] = ((0.0, 0.05), (0.05, 0.3), (0.3, 0.5), (0.5, 1.01))


@dataclass(frozen=True)
class Budget:
    """The training budget, identical for every variant and seed."""

    steps: int = 1000
    batch_size: int = 16
    lr: float = 2e-3                   # AdamW; linear warm-up then constant
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    grad_clip: float = 10.0            # total-norm clip (YOLOv8's 10); logged norms are before clipping
    grad_every: int = 10               # per-branch gradients on shared parameters every n steps
    eval_every: int = 100              # AP on the convergence set every n steps
    checkpoint_every: int = 200


@dataclass(frozen=True)
class Capacity:
    """One point of the attention-capacity sweep (hybrid only): model overrides and a name."""

    name: str
    num_queries: int
    num_tokens: int
    decoder_heads: int
    decoder_layers: int

    def overrides(self) -> dict[str, int]:
        return {"num_queries": self.num_queries, "num_tokens": self.num_tokens,
                "decoder_heads": self.decoder_heads, "decoder_layers": self.decoder_layers}

    @property
    def index(self) -> int:
        """Declared capacity index: attention scores per image in the decoder, L·h·N·(N + K)."""
        return self.decoder_layers * self.decoder_heads * self.num_queries * (self.num_queries + self.num_tokens)


@dataclass(frozen=True)
class TrendRule:
    """How Δ (= H_grid − H_hybrid) versus attention capacity is classed, declared before any run.

    With m_i the mean Δ over seeds at capacity index x_i (points sorted by x):

    1. ``inconclusive`` if there are fewer than ``min_points`` points, or some point has fewer
       than ``min_seeds`` seeds (no interval to judge noise by);
    2. ``neither`` if the m_i are not strictly monotone (in either direction);
    3. ``inconclusive`` if they are, but the seed-paired change Δ(x_max) − Δ(x_min) has a
       ``ci_level`` t-interval containing 0 (a flat Δ is not excluded);
    4. ``proportional`` if they increase and the fit Δ = c·x through the origin has
       R² ≥ ``proportional_r2`` (R² = 1 − SS_res / SS_tot, SS_tot about the mean of the m_i);
    5. ``monotone`` otherwise (increasing or decreasing; the direction is reported beside it).

    The values are those the verdict rule used before the label existed (R² ≥ 0.9, 3 seeds for a
    verdict other than inconclusive), not fitted to any result.
    """

    min_points: int = 3
    min_seeds: int = 3
    proportional_r2: float = 0.9


@dataclass(frozen=True)
class ExperimentConfig:
    """The whole declared experiment. Change anything and the cache key changes with it."""

    name: str
    preset: str = "hsgdet-tiny"
    # Tokens from all three scales: at 64×64 the P5 map is 2×2, too coarse for the query head
    # to localise 8–16 px objects (the seed's diagram feeds P5 only; hsgdet-l-ms is this option).
    model_overrides: tuple[tuple[str, Any], ...] = (("token_scales", ("p3", "p4", "p5")),)
    variants: tuple[str, ...] = VARIANTS
    seeds: tuple[int, ...] = (0, 1, 2)
    budget: Budget = Budget()

    # Data (training draws fresh scenes every step from (seed, step); evaluation sets are fixed).
    train_scene: SceneConfig = SceneConfig()
    val_scene: SceneConfig = SceneConfig()
    occlusion_scene: SceneConfig = SceneConfig(min_objects=2, max_objects=6, pair_prob=1.0,
                                               overlap_levels=(0.0, 0.2, 0.4, 0.6, 0.8))
    dense_scene: SceneConfig = SceneConfig(height=256, width=256, min_size=8, max_size=12,
                                           pair_prob=0.1, max_objects=250)
    dense_counts: tuple[tuple[int, int], ...] = DENSITY_BINS[:-1] + ((201, 250),)
    n_val: int = 256                   # first half calibrates the temperature, second half is scored
    n_occlusion: int = 128
    n_dense_per_bin: int = 4
    n_convergence: int = 64            # images scored for AP during training
    eval_seed: int = 10_000            # evaluation sets come from seeds >= this, never used in training

    # Metrics (declared).
    ap_max_dets: int = 300             # pycocotools maxDets for AP (the detector keeps up to 300)
    density_bins: tuple[tuple[int, int], ...] = DENSITY_BINS
    occlusion_bins: tuple[tuple[float, float], ...] = OCCLUSION_BINS
    hybrid_ap_mode: str = "fused"      # the hybrid's mode in hybrid-vs-grid AP comparisons
    convergence_mode: str = "nms_free"
    convergence_metric: str = "AP50"
    convergence_target: float = 0.05   # steps to reach this AP50 (query head), hybrid vs sparse-only

    # Entropy: the declared discrete representation of Y (see docs/experiments.md).
    prob_eps: float = 1e-3             # q = (1 − ε)·q_model + ε/C, so every NLL is finite
    calibrate: bool = True             # primary NLL uses a temperature fitted on the calibration half
    hybrid_entropy_head: str = "sparse"   # the hybrid's primary predictive distribution (its default output)

    # Information: I(Y_global; Q | G).
    pca_dims: int = 4                  # G and Q each reduced by PCA (fit on the first half) to this many dims
    cmi_methods: tuple[str, ...] = ("mixed", "fp")    # hsgprof.info CMI estimators, besides the probe
    bootstrap: int = 200
    ci_level: float = 0.95

    # Stability (declared before training).
    spike_mad: float = 5.0             # a spike: norm > median + spike_mad · MAD (per run and branch)
    collapse_ratio: float = 0.01       # collapse: norm < ratio × early median ...
    collapse_window: float = 0.05      # ... for this fraction of the run's steps in a row ...
    collapse_loss_frac: float = 0.5    # ... while the branch loss is above this × its initial value

    # Verdict rules.
    nms_optional_ratio: float = 0.9    # NMS optional if AP(nms_free) ≥ ratio × AP(nms), seeds' mean

    # Attention-capacity sweep (hybrid, Δ against the grid-only run of the same seed).
    capacity: tuple[Capacity, ...] = ()
    capacity_seeds: tuple[int, ...] = (0,)
    capacity_trend: TrendRule = TrendRule()

    def __post_init__(self) -> None:
        for v in self.variants:
            if v not in VARIANTS:
                raise HsgprofError(f"variant {v!r} is not accepted; choose from {', '.join(VARIANTS)}")
        if not self.seeds:
            raise HsgprofError("seeds is empty; give at least one seed")
        if self.hybrid_entropy_head not in ("sparse", "dense", "mix"):
            raise HsgprofError(f"hybrid_entropy_head={self.hybrid_entropy_head!r}; accepted: sparse, dense, mix")
        if self.n_val < 4:
            raise HsgprofError(f"n_val={self.n_val} is too small; at least 4 images")

    # -------------------------------------------------------------------------------- helpers
    def model_kwargs(self) -> dict[str, Any]:
        return {"num_classes": self.train_scene.num_classes, **dict(self.model_overrides)}

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["capacity"] = [dict(dataclasses.asdict(c), index=c.index) for c in self.capacity]
        d["model_overrides"] = dict(self.model_overrides)
        return d

    def key(self) -> str:
        """A short hash of everything declared (the name excluded): the cache folder's name."""
        d = self.to_dict()
        d.pop("name")
        for f in dataclasses.fields(self):
            if f.name in KEYED_IF_CHANGED and getattr(self, f.name) == f.default:
                d.pop(f.name)
        blob = json.dumps(d, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:12]

    def replace(self, **changes: Any) -> "ExperimentConfig":
        return dataclasses.replace(self, **changes)


# Fields added after results were committed: hashed into the key only when they differ from their
# default, so the keys of existing presets (the run caches and committed results they name) stay
# valid while any change to these fields still changes the key.
KEYED_IF_CHANGED = frozenset({"capacity_trend"})


def _quick() -> ExperimentConfig:
    return ExperimentConfig(
        name="quick",
        capacity=(Capacity("small", 10, 16, 1, 1), Capacity("default", 20, 32, 2, 2),
                  Capacity("large", 40, 64, 4, 3)),
        capacity_seeds=(0,))


def _smoke() -> ExperimentConfig:
    return ExperimentConfig(
        name="smoke", seeds=(0,),
        budget=Budget(steps=200, batch_size=8, warmup_steps=20, grad_every=10, eval_every=50, checkpoint_every=100),
        n_val=32, n_occlusion=16, n_dense_per_bin=1, n_convergence=16, bootstrap=50,
        dense_counts=((1, 5), (6, 20), (21, 60)),
        capacity=(Capacity("small", 10, 16, 1, 1), Capacity("default", 20, 32, 2, 2)),
        capacity_seeds=(0,))


def _full() -> ExperimentConfig:
    scene = SceneConfig(height=128, width=128, min_objects=1, max_objects=12, min_size=10, max_size=28,
                        key_size=12)
    return ExperimentConfig(
        name="full", seeds=(0, 1, 2, 3, 4),
        model_overrides=(("token_scales", ("p3", "p4", "p5")), ("width_mult", 0.25), ("num_queries", 100),
                         ("num_tokens", 64)),
        budget=Budget(steps=10000, batch_size=32, lr=1e-3, warmup_steps=500, grad_every=50,
                      eval_every=500, checkpoint_every=1000),
        convergence_target=0.5,
        train_scene=scene, val_scene=scene,
        occlusion_scene=scene.replace(min_objects=2, max_objects=8, pair_prob=1.0,
                                      overlap_levels=(0.0, 0.2, 0.4, 0.6, 0.8)),
        dense_scene=SceneConfig(height=512, width=512, min_size=10, max_size=16, key_size=12,
                                pair_prob=0.1, max_objects=300),
        dense_counts=DENSITY_BINS[:-1] + ((201, 300),),
        n_val=2000, n_occlusion=1000, n_dense_per_bin=32, n_convergence=256, bootstrap=1000,
        capacity=tuple(Capacity(f"N{n}", n, 64, 2, 2) for n in (25, 50, 100, 200))
        + tuple(Capacity(f"K{k}", 100, k, 2, 2) for k in (16, 32, 128))
        + tuple(Capacity(f"h{h}", 100, 64, h, 2) for h in (1, 4, 8))
        + tuple(Capacity(f"L{layers}", 100, 64, 2, layers) for layers in (1, 4, 6)),
        capacity_seeds=(0, 1, 2))


PRESETS = {"smoke": _smoke, "quick": _quick, "full": _full}


def get_preset(name: str) -> ExperimentConfig:
    """The declared config of a named preset (smoke, quick, full)."""
    if name not in PRESETS:
        raise HsgprofError(f"unknown experiment preset {name!r}; accepted: {', '.join(PRESETS)}")
    return PRESETS[name]()
