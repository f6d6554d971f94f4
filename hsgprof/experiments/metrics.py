"""COCO AP with pycocotools: overall, by image density, by object occlusion, per output mode.

* AP is COCO's AP@[.5:.95] (101-point interpolated, area range "all"), with AP50 and AP75;
  ``maxDets`` is raised from COCO's 100 to the declared cap (300, the detector's own limit),
  or scenes with more than 100 objects could never reach full recall.
* **By density**: COCO evaluation restricted to the images whose object count lies in the bin.
* **By occlusion**: all images; objects outside the occlusion bin are marked ``iscrowd`` so
  that COCO *ignores* them (a detection on an ignored object is neither a true nor a false
  positive; the CrowdHuman "ignore region" convention). AP then measures the objects in the bin.
"""

from __future__ import annotations

import contextlib
import copy
import io
from typing import Any, Sequence

import numpy as np
import torch

METRIC_NAMES = ("AP", "AP50", "AP75")


def detections_to_coco(detections: Sequence[dict[str, torch.Tensor]], image_ids: Sequence[int],
                       label_to_category: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """Per-image detections (xyxy px, scores, labels) -> COCO result dicts (xywh)."""
    out = []
    for det, image_id in zip(detections, image_ids):
        boxes = det["boxes"].detach().cpu().double()
        xywh = torch.cat((boxes[:, :2], boxes[:, 2:] - boxes[:, :2]), 1).tolist()
        for b, s, c in zip(xywh, det["scores"].tolist(), det["labels"].tolist()):
            cat = label_to_category[int(c)] if label_to_category is not None else int(c) + 1
            out.append({"image_id": int(image_id), "category_id": int(cat), "bbox": b, "score": float(s)})
    return out


def coco_ap(gt: dict[str, Any], results: list[dict[str, Any]], image_ids: Sequence[int] | None = None,
            max_dets: int = 300) -> dict[str, float]:
    """COCO bbox AP, AP50, AP75 of ``results`` against the ground-truth dict ``gt``.

    No detections give AP 0 (pycocotools refuses an empty result list); images or a subset with
    no (non-ignored) ground truth give NaN, as COCO does.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    ids = list(image_ids) if image_ids is not None else [im["id"] for im in gt["images"]]
    n_gt = sum(1 for a in gt["annotations"] if a["image_id"] in set(ids) and not a.get("iscrowd", 0))
    if n_gt == 0:
        return {k: float("nan") for k in METRIC_NAMES} | {"n_gt": 0}
    if not results:
        return {k: 0.0 for k in METRIC_NAMES} | {"n_gt": n_gt}
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(copy.deepcopy(results))
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.params.imgIds = ids
        ev.params.maxDets = [1, 10, max_dets]
        ev.evaluate()
        ev.accumulate()
    # COCOeval.summarize() hard-codes maxDets=100 for its first AP, so read the precision array
    # directly: (T iou thresholds, R recall points, K classes, A area ranges, M maxDets); -1 = no data.
    prec = ev.eval["precision"][:, :, :, 0, -1]
    iou = ev.params.iouThrs

    def mean_valid(a: np.ndarray) -> float:
        a = a[a > -1]
        return float(a.mean()) if a.size else float("nan")

    return {"AP": mean_valid(prec), "AP50": mean_valid(prec[np.isclose(iou, 0.5)]),
            "AP75": mean_valid(prec[np.isclose(iou, 0.75)]), "n_gt": n_gt}


def ap_by_density(gt: dict[str, Any], results: list[dict[str, Any]], bins: Sequence[tuple[int, int]],
                  max_dets: int = 300) -> list[dict[str, Any]]:
    """One row per object-count bin [lo, hi): AP over the images whose count lies in it."""
    counts = {im["id"]: 0 for im in gt["images"]}
    for a in gt["annotations"]:
        counts[a["image_id"]] += 1
    rows = []
    for lo, hi in bins:
        ids = [i for i, n in counts.items() if lo <= n < hi]
        if not ids:
            continue
        label = f"{lo}+" if hi >= 10_000 else f"{lo}-{hi - 1}"
        rows.append({"bin": label, "bin_lo": lo, "n_images": len(ids),
                     **coco_ap(gt, [r for r in results if r["image_id"] in set(ids)], ids, max_dets)})
    return rows


def ap_by_occlusion(gt: dict[str, Any], results: list[dict[str, Any]], bins: Sequence[tuple[float, float]],
                    max_dets: int = 300) -> list[dict[str, Any]]:
    """One row per occlusion bin [lo, hi): objects outside the bin are ignored (``iscrowd``)."""
    rows = []
    for lo, hi in bins:
        sub = copy.deepcopy(gt)
        inside = 0
        for a in sub["annotations"]:
            occ = float(a.get("occlusion", 0.0))
            if lo <= occ < hi:
                inside += 1
            else:
                a["iscrowd"] = 1
        if inside == 0:
            continue
        rows.append({"bin": f"{lo:.2f}-{min(hi, 1.0):.2f}", "bin_lo": lo, **coco_ap(sub, results, None, max_dets)})
    return rows


def summarize_ap_rows(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Mean of AP columns over rows (ignoring NaN); handy for quick printing."""
    return {k: float(np.nanmean([r[k] for r in rows])) if rows else float("nan") for k in METRIC_NAMES}
