"""Can a variant read the key where the objects are? A linear probe of its features, before training.

The receptive-field check (:mod:`.fields`) measures where the gradient of a dense output goes at
random weights. It can miss a path that carries little gradient at initialisation yet carries the
key: SPPF's three 5×5 max pools at P5 reach ±6 cells (±192 px at stride 32), and a max pool passes
gradient only to its argmax. The probe asks the question directly: from the features the dense
head reads (the PAN output of each level) at the cell holding an object's centre, can a linear
classifier tell the scene's z better than chance, on images it was not fitted on?

Protocol (declared, not tuned): weights from the seed's random init; BatchNorm on batch statistics
(as in training; no gradient); images drawn from ``cfg.val_scene`` with seeds at or above
``cfg.eval_seed`` (never used in training); per level, the features of each object's centre cell,
standardised on the fitting half; an L2 logistic regression (``C = 0.1``) fitted on the objects
of the first half of the images and scored on those of the second half (objects of one image
share z, so the split is by image); an exact two-sided binomial test against 1/2 and a Clopper–Pearson
interval at 1 − 0.05/3 (Bonferroni over the three levels, so a variant that cannot read z is
called a reader with probability at most 5%). A level *reads the key* when the interval's lower
end is above 1/2.

For the grid-only variant, reading the key at any level means the design's premise (the key is
out of the grid model's reach) fails at initialisation already. Not reading it is necessary, not
sufficient: training can open paths random weights do not use; the trained grid-only runs' bit
NLL is the final check.
"""

from __future__ import annotations

from typing import Any

from hsgprof.errors import HsgprofError
from hsgprof.experiments.config import ExperimentConfig

LEVELS = ("P3", "P4", "P5")
PROBE_C = 0.1                  # the logistic regression's inverse L2 strength (declared)
CI_LEVEL = 1 - 0.05 / len(LEVELS)   # per level; family-wise 95% over the levels
SEED_OFFSET = 700              # probe images: seeds (cfg.eval_seed + SEED_OFFSET, batch index)


def key_probe(cfg: ExperimentConfig, variant: str = "grid-only", images: int = 1024, seed: int = 0,
              batch: int = 32, extra: dict[str, Any] | None = None, model: Any = None) -> dict[str, Any]:
    """Linear-probe accuracy of z from ``variant``'s PAN features at the objects' cells, per level.

    ``extra``: model overrides beyond the config's (e.g. ``extra_input_planes=1`` for a z plane).
    ``model``: probe this (e.g. partly trained) model instead of a fresh one; a copy is probed, so
    its weights and BatchNorm statistics are left as they were.
    Returns ``{"variant", "seed", "images", "objects", "objects_scored", "levels": [{"name",
    "stride", "accuracy", "ci_low", "ci_high", "p_value", "reads_key"}], "reads_key"}``.
    """
    import numpy as np
    import torch

    from hsgprof.adapters.hsgdet_experiments import build_model, scene_batch

    if images < 4:
        raise HsgprofError(f"images={images} is too few for the probe; at least 4 (two per half)")
    if model is None:
        torch.manual_seed(seed)
        model = build_model(cfg.preset, variant=variant, **{**cfg.model_kwargs(), **(extra or {})})
    else:
        import copy

        model = copy.deepcopy(model)
    if model.neck.pan is None:
        raise HsgprofError(f"variant {variant!r} has no grid path to probe; accepted: grid-only, hybrid")
    model.train()                                                   # BatchNorm on batch statistics
    feats: list[list[np.ndarray]] = [[] for _ in LEVELS]
    z, image_index, strides = [], [], []
    done = 0
    with torch.no_grad():
        while done < images:
            n = min(batch, images - done)
            imgs, _, scenes = scene_batch(cfg.val_scene, n, (cfg.eval_seed + SEED_OFFSET, done))
            xp, _ = model.preprocess(imgs)                           # (B, C, H, W)
            maps = model.neck.pan(model.backbone(xp))                # [(B, c3, H/8, W/8), (B, c4, ...), (B, c5, ...)]
            strides = [imgs.shape[-1] / m.shape[-1] for m in maps]
            for i, s in enumerate(scenes):
                for x1, y1, x2, y2 in s.boxes.tolist():
                    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
                    for lv, (m, st) in enumerate(zip(maps, strides)):
                        r = min(int(cy // st), m.shape[-2] - 1)
                        c = min(int(cx // st), m.shape[-1] - 1)
                        feats[lv].append(m[i, :, r, c].numpy())      # (C,)
                    z.append(s.z)
                    image_index.append(done + i)
            done += n
    z_arr, img = np.asarray(z), np.asarray(image_index)
    fit = img < images // 2
    if fit.all() or not fit.any() or len(set(z_arr[fit])) < 2:
        raise HsgprofError(f"the probe's {images} images hold too few objects of both z values; give more images")
    levels = [dict(name=name, stride=strides[lv], **_score(np.stack(feats[lv]), z_arr, fit))
              for lv, name in enumerate(LEVELS)]
    return {"variant": model.cfg.variant, "seed": seed, "images": images, "objects": int(len(z_arr)),
            "objects_scored": int((~fit).sum()), "levels": levels,
            "reads_key": any(lv["reads_key"] for lv in levels)}


def _score(x, z, fit) -> dict[str, Any]:
    """Fit on the ``fit`` objects, score the others: accuracy, its interval at CI_LEVEL, p against 1/2."""
    from scipy.stats import binomtest
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x[fit])
    clf = LogisticRegression(C=PROBE_C, max_iter=5000).fit(scaler.transform(x[fit]), z[fit])
    correct = int((clf.predict(scaler.transform(x[~fit])) == z[~fit]).sum())
    n = int((~fit).sum())
    test = binomtest(correct, n, 0.5)
    ci = test.proportion_ci(CI_LEVEL, method="exact")
    return {"accuracy": correct / n, "ci_low": float(ci.low), "ci_high": float(ci.high),
            "p_value": float(test.pvalue), "reads_key": bool(ci.low > 0.5)}


def probe_text(result: dict[str, Any]) -> str:
    """One line: each level's accuracy and interval, and whether the variant reads the key."""
    parts = [f"{lv['name']} {lv['accuracy']:.3f} [{lv['ci_low']:.3f}, {lv['ci_high']:.3f}]" for lv in result["levels"]]
    verdict = "reads the key" if result["reads_key"] else "does not read the key (every interval holds 1/2)"
    return (f"{result['variant']}: z from the objects' cells, {result['objects_scored']} objects scored: "
            f"{'; '.join(parts)}: {verdict}")


__all__ = ["key_probe", "probe_text", "LEVELS", "PROBE_C", "CI_LEVEL"]
