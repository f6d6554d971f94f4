"""Evaluation sets and what a trained model says about them: detections and per-object outputs.

``ObjectOutputs`` holds, for every ground-truth object of a set, what each branch predicts *at
that object* (the declared representation of Y, docs/experiments.md):

* **dense (grid) branch**: the class logits of one anchor, chosen without looking at the label:
  among the anchors whose centre lies inside the object's box, the one whose decoded box has
  the highest IoU with it (the nearest anchor to the box centre when none lies inside).
* **sparse (query) branch**: the class logits of the query matched to the object by a
  Hungarian assignment on *box cost only* (5·L1 − 2·GIoU, the model's own box weights); the
  class cost is left out so the choice of query does not peek at the label. Objects beyond the
  number of queries stay unmatched (``sparse_matched`` False).
* features for the information estimates: ``G``, the grid branch's PAN features at the
  object's centre cell, the three levels concatenated; ``Q``, the matched query's final
  hidden state (``raw["sparse"]["hidden"]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_convert, box_iou, generalized_box_iou

from hsgprof.adapters.hsgdet_experiments import Scene, dfl_decode, generate_scenes, scenes_to_coco
from hsgprof.experiments.config import ExperimentConfig
from hsgprof.experiments.metrics import ap_by_density, ap_by_occlusion, coco_ap, detections_to_coco

MODES_BY_VARIANT = {"hybrid": ("nms_free", "nms", "fused"), "grid-only": ("nms",), "sparse-only": ("nms_free",)}


@dataclass
class EvalSet:
    """A fixed evaluation set: scenes, their COCO ground truth, and the stacked images."""

    name: str
    scenes: list[Scene]
    gt: dict[str, Any]

    @property
    def image_ids(self) -> list[int]:
        return [im["id"] for im in self.gt["images"]]

    def images(self, start: int = 0, stop: int | None = None) -> torch.Tensor:
        return torch.stack([s.image for s in self.scenes[start:stop]])


def make_eval_sets(cfg: ExperimentConfig, scene: tuple[tuple[str, Any], ...] = ()) -> dict[str, EvalSet]:
    """The declared evaluation sets (seeds from ``cfg.eval_seed``; training never uses them).

    ``scene``: a control's scene overrides, applied to every set (same seeds, so the same layouts).
    """
    nc = cfg.train_scene.num_classes
    over = dict(scene)
    sets: dict[str, EvalSet] = {}
    val = generate_scenes(cfg.val_scene.replace(**over), cfg.n_val, cfg.eval_seed)
    sets["val"] = EvalSet("val", val, scenes_to_coco(val, nc))
    conv = val[: cfg.n_convergence]
    sets["convergence"] = EvalSet("convergence", conv, scenes_to_coco(conv, nc))
    occ = generate_scenes(cfg.occlusion_scene.replace(**over), cfg.n_occlusion, cfg.eval_seed + 1)
    sets["occlusion"] = EvalSet("occlusion", occ, scenes_to_coco(occ, nc))
    dense: list[Scene] = []
    for i, (lo, hi) in enumerate(cfg.dense_counts):
        dense += generate_scenes(cfg.dense_scene.replace(min_objects=lo, max_objects=hi, **over),
                                 cfg.n_dense_per_bin, cfg.eval_seed + 100 + i)
    sets["dense"] = EvalSet("dense", dense, scenes_to_coco(dense, nc))
    return sets


@torch.no_grad()
def predict(model: torch.nn.Module, eval_set: EvalSet, modes: Sequence[str], batch_size: int = 16
            ) -> dict[str, list[dict[str, torch.Tensor]]]:
    """Detections per output mode for every image of the set (model put in eval mode)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: dict[str, list] = {m: [] for m in modes}
    for start in range(0, len(eval_set.scenes), batch_size):
        images = eval_set.images(start, start + batch_size).to(device)
        raw = model.forward_raw(images)
        meta = model.preprocess(images)[1]
        for m in modes:
            out[m] += [{k: v.cpu() for k, v in d.items()} for d in model.detection.output(raw, meta, m)]
    model.train(was_training)
    return out


def ap_rows(model: torch.nn.Module, eval_set: EvalSet, modes: Sequence[str], cfg: ExperimentConfig,
            breakdown: str = "overall") -> list[dict[str, Any]]:
    """AP rows (one per mode, and per bin when ``breakdown`` is density or occlusion)."""
    dets = predict(model, eval_set, modes)
    rows = []
    for mode in modes:
        results = detections_to_coco(dets[mode], eval_set.image_ids)
        if breakdown == "overall":
            parts = [{"bin": "all", "bin_lo": 0, **coco_ap(eval_set.gt, results, max_dets=cfg.ap_max_dets)}]
        elif breakdown == "density":
            parts = ap_by_density(eval_set.gt, results, cfg.density_bins, cfg.ap_max_dets)
        elif breakdown == "occlusion":
            parts = ap_by_occlusion(eval_set.gt, results, cfg.occlusion_bins, cfg.ap_max_dets)
        else:
            raise ValueError(f"breakdown={breakdown!r}; accepted: overall, density, occlusion")
        for p in parts:
            rows.append({"set": eval_set.name, "mode": mode, "breakdown": breakdown,
                         "n_detections": len(results), **p})
    return rows


@dataclass
class ObjectOutputs:
    """Per ground-truth object: metadata and each branch's outputs at the object (see module doc)."""

    meta: pd.DataFrame                      # one row per object
    dense_logits: np.ndarray | None         # (M, C)
    sparse_logits: np.ndarray | None        # (M, C)
    sparse_matched: np.ndarray | None       # (M,) bool
    G: np.ndarray | None                    # (M, dg) PAN features at the object centre
    Q: np.ndarray | None                    # (M, d) matched query hidden state

    def to_arrays(self) -> dict[str, np.ndarray]:
        out = {f"meta_{c}": self.meta[c].to_numpy() for c in self.meta.columns}
        for k in ("dense_logits", "sparse_logits", "sparse_matched", "G", "Q"):
            v = getattr(self, k)
            if v is not None:
                out[k] = v
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "ObjectOutputs":
        meta = pd.DataFrame({k[5:]: v for k, v in arrays.items() if k.startswith("meta_")})
        return cls(meta, *(arrays.get(k) for k in ("dense_logits", "sparse_logits", "sparse_matched", "G", "Q")))


def _to_cpu(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.cpu()
    if isinstance(x, dict):
        return {k: _to_cpu(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(_to_cpu(v) for v in x)
    return x


def _object_meta(scenes: Sequence[Scene], set_name: str) -> pd.DataFrame:
    rows, offset = [], 0
    for i, s in enumerate(scenes):
        n = len(s.labels)
        for j in range(n):
            label = int(s.labels[j])
            rows.append({"set": set_name, "image": i, "obj": j, "label": label, "family": label // 2,
                         "bit": label % 2, "z": s.z, "occlusion": float(s.occlusion[j]),
                         "occluder": bool(s.occluder[j]),
                         "partner": offset + int(s.pair[j]) if s.pair[j] >= 0 else -1, "n_objects": n})
        offset += n
    return pd.DataFrame(rows, columns=["set", "image", "obj", "label", "family", "bit", "z", "occlusion",
                                       "occluder", "partner", "n_objects"])


def _dense_anchor(boxes: torch.Tensor, points: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Per object, the in-box anchor with the best decoded-box IoU (nearest to the centre if none)."""
    x, y = points[:, 0], points[:, 1]
    inside = (x[None] > gt[:, 0:1]) & (x[None] < gt[:, 2:3]) & (y[None] > gt[:, 1:2]) & (y[None] < gt[:, 3:4])
    iou = box_iou(gt, boxes).masked_fill(~inside, -1.0)                        # (G, A)
    best = iou.argmax(1)
    centre = (gt[:, :2] + gt[:, 2:]) / 2
    nearest = torch.cdist(centre, points).argmin(1)
    return torch.where(inside.any(1), best, nearest)


def _box_match(pred_cxcywh: torch.Tensor, gt_cxcywh: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Hungarian match on box cost only (5·L1 − 2·GIoU): (query index, object index) pairs."""
    cost = 5 * torch.cdist(pred_cxcywh, gt_cxcywh, p=1) - 2 * generalized_box_iou(
        box_convert(pred_cxcywh, "cxcywh", "xyxy"), box_convert(gt_cxcywh, "cxcywh", "xyxy"))
    return linear_sum_assignment(cost.numpy())


@torch.no_grad()
def object_outputs(model: torch.nn.Module, scenes: Sequence[Scene], set_name: str = "val",
                   batch_size: int = 16) -> ObjectOutputs:
    """Each branch's class logits and features at every ground-truth object of ``scenes``."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    dense_l, sparse_l, matched, feats_g, feats_q = [], [], [], [], []
    store: dict[str, Any] = {}
    hook = (model.head.dense.register_forward_hook(lambda m, inp, out: store.__setitem__("pan", inp[0]))
            if model.head.dense is not None else None)
    try:
        for start in range(0, len(scenes), batch_size):
            chunk = scenes[start:start + batch_size]
            images = torch.stack([s.image for s in chunk]).to(device)
            h, w = images.shape[-2:]
            raw = _to_cpu(model.forward_raw(images))
            if "pan" in store:
                store["pan"] = [t.cpu() for t in store["pan"]]
            for b, s in enumerate(chunk):
                gt = s.boxes.float()
                n = len(gt)
                if n == 0:
                    continue
                if "dense" in raw:
                    d = raw["dense"]
                    boxes = dfl_decode(d["dist"][b], d["points"], d["strides"])
                    idx = _dense_anchor(boxes, d["points"], gt)
                    dense_l.append(d["logits"][b][idx].float().numpy())
                    cx = ((gt[:, 0] + gt[:, 2]) / 2)
                    cy = ((gt[:, 1] + gt[:, 3]) / 2)
                    parts = []
                    for level in store["pan"]:                     # (B, c, H/s, W/s)
                        lh, lw = level.shape[-2:]
                        col = (cx * lw / w).long().clamp(0, lw - 1)
                        row = (cy * lh / h).long().clamp(0, lh - 1)
                        parts.append(level[b][:, row, col].T)      # (n, c)
                    feats_g.append(torch.cat(parts, 1).float().numpy())
                if "sparse" in raw:
                    sp = raw["sparse"]
                    scale = torch.tensor([w, h, w, h], dtype=torch.float32)
                    gt_cxcywh = box_convert(gt, "xyxy", "cxcywh") / scale
                    qi, oi = _box_match(sp["boxes"][-1, b].float(), gt_cxcywh)
                    logits = np.zeros((n, sp["logits"].shape[-1]), np.float32)
                    hidden = np.zeros((n, sp["hidden"].shape[-1]), np.float32)
                    ok = np.zeros(n, bool)
                    logits[oi] = sp["logits"][-1, b][qi].float().numpy()
                    hidden[oi] = sp["hidden"][b][qi].float().numpy()
                    ok[oi] = True
                    sparse_l.append(logits)
                    feats_q.append(hidden)
                    matched.append(ok)
    finally:
        if hook is not None:
            hook.remove()
        model.train(was_training)
    cat = (lambda xs: np.concatenate(xs) if xs else None)
    return ObjectOutputs(_object_meta(scenes, set_name), cat(dense_l), cat(sparse_l), cat(matched),
                         cat(feats_g), cat(feats_q))


def concat_outputs(parts: Sequence[ObjectOutputs]) -> ObjectOutputs:
    """Objects of several sets in one table (partner indices shifted to stay valid)."""
    metas, offset = [], 0
    for p in parts:
        m = p.meta.copy()
        m["partner"] = np.where(m["partner"] >= 0, m["partner"] + offset, -1)
        metas.append(m)
        offset += len(m)

    def cat(name: str) -> np.ndarray | None:
        xs = [getattr(p, name) for p in parts]
        return None if any(x is None for x in xs) else np.concatenate(xs)

    return ObjectOutputs(pd.concat(metas, ignore_index=True), cat("dense_logits"), cat("sparse_logits"),
                         cat("sparse_matched"), cat("G"), cat("Q"))
