"""The three variants compared on the user's own COCO-format data: COCO AP per output mode and
the held-out class NLL of each head.

On synthetic scenes H(Y|X) is known by construction; on real images it is not. A held-out NLL
is only an upper bound on H(Y|X) of the declared representation (docs/experiments.md), so no
variant's NLL can be set against a floor: what is reported is the **difference between
variants**, Δ = NLL_grid − NLL_other on the same held-out objects, paired by seed (Student-t
interval over seeds) and by object (cluster bootstrap over held-out images). Δ > 0 means the
other variant's head predicts the classes better than the grid-only head, which is what the
theorem's H_hybrid < H_grid says where no floor is known. Y here is the class of each
(non-crowd) ground-truth object at its box, from the logits each head outputs at the object
(the anchor and query choices of :mod:`hsgprof.experiments.evaluate`, which never look at the label).

AP is COCO's AP@[.5:.95] (pycocotools) on all held-out images, crowd annotations kept as
``iscrowd`` (ignored by COCO), computed in the resized frame: IoU is invariant to axis-aligned
scaling, so it equals AP in the original frame.

Tables (``experiments_coco_<name>.json``): ``ap`` (per run and mode), ``ap_summary`` (mean over
seeds with t-intervals), ``nll`` (per run and head), ``nll_difference`` (Δ rows) and ``summary``
(the primary Δ with a verdict, the others marked secondary).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch

from hsgprof.adapters.hsgdet_experiments import Scene
from hsgprof.experiments import entropy as E
from hsgprof.experiments.tables import primary_head
from hsgprof.experiments.verdicts import ci_verdict
from hsgprof.experiments.config import ExperimentConfig
from hsgprof.experiments.datasource import CocoSource, open_source, split_summary
from hsgprof.experiments.evaluate import MODES_BY_VARIANT, EvalSet, ObjectOutputs, ap_rows, object_outputs
from hsgprof.experiments.stats import cluster_bootstrap, t_interval

OBJECT_SETS = ("holdout",)
REFERENCE = ("grid-only", "dense")             # H_grid: the grid-only variant's own head
NO_FLOOR = ("no known H(Y|X) for this data: each NLL is only an upper bound, so only differences "
            "between variants are reported")


def with_data(cfg: ExperimentConfig, source: CocoSource) -> ExperimentConfig:
    """The preset's declared experiment on a COCO source: the same variants, seeds, budget, metrics
    and NLL rules; no capacity sweep and no controls (their questions, Δ ∝ capacity and whether
    the key can be learned, are asked of the synthetic scenes)."""
    return cfg.replace(name=f"{cfg.name}-coco", data=source, capacity=(), controls=())


# ----------------------------------------------------------------------------- evaluation
def coco_eval_sets(cfg: ExperimentConfig) -> dict[str, EvalSet]:
    """``holdout`` (every held-out image, in hash order) and ``convergence`` (its first
    ``n_convergence``), with COCO ground truth in the resized frame (crowd kept as ``iscrowd``)."""
    from PIL import Image

    opened = open_source(cfg.data)
    ds = opened.dataset
    h, w = cfg.data.height, cfg.data.width
    degenerate = set(ds.skipped["degenerate"])
    by_image: dict[Any, list[dict[str, Any]]] = {}
    for ann in ds.coco["annotations"]:
        if ann.get("id") not in degenerate:
            by_image.setdefault(ann["image_id"], []).append(ann)
    scenes, images, anns = [], [], []
    for i in opened.holdout_index:
        image, target = opened.item(i)
        info = ds.images[i]
        n = len(target["labels"])
        scenes.append(Scene(image=image, boxes=target["boxes"], labels=target["labels"], z=-1, key_box=(0, 0, 0, 0),
                            occlusion=np.zeros(n), pair=-np.ones(n, int), occluder=np.zeros(n, bool),
                            meta={"image_id": info["id"]}))
        with Image.open(ds.image_dir / info["file_name"]) as im:
            sx, sy = w / im.size[0], h / im.size[1]
        images.append({"id": info["id"], "file_name": info["file_name"], "height": h, "width": w})
        for a in by_image.get(info["id"], []):
            x, y, bw, bh = a["bbox"]
            anns.append({"id": a["id"], "image_id": info["id"], "category_id": ds.category_to_label[a["category_id"]] + 1,
                         "bbox": [x * sx, y * sy, bw * sx, bh * sy], "area": bw * sx * bh * sy,
                         "iscrowd": int(bool(a.get("iscrowd", 0)))})
    cats = [{"id": label + 1, "name": name} for label, name in enumerate(ds.category_names)]

    def subset(name: str, k: int) -> EvalSet:
        ids = {im["id"] for im in images[:k]}
        return EvalSet(name, scenes[:k], {"images": images[:k], "annotations": [a for a in anns if a["image_id"] in ids],
                                          "categories": cats})

    return {"holdout": subset("holdout", len(scenes)), "convergence": subset("convergence", cfg.n_convergence)}


def evaluate_coco_run(model: torch.nn.Module, spec: Any, sets: dict[str, EvalSet], cfg: ExperimentConfig
                      ) -> tuple[list[dict[str, Any]], dict[str, ObjectOutputs]]:
    """AP rows (held-out set, every output mode of the variant) and per-object outputs."""
    rows = ap_rows(model, sets["holdout"], MODES_BY_VARIANT[spec.variant], cfg, "overall")
    return rows, {"holdout": object_outputs(model, sets["holdout"].scenes, "holdout")}


# ----------------------------------------------------------------------------- tables
def nll_objects(records: Sequence[dict], cfg: ExperimentConfig, n_holdout_images: int) -> pd.DataFrame:
    """One row per (run, head, scored held-out object): class NLL (calibrated and raw, nats)."""
    n_cal = n_holdout_images // 2
    frames = []
    for rec in records:
        sp = rec["spec"]
        out = rec["objects"]["holdout"]
        if len(out.meta) == 0:
            continue
        labels = out.meta["label"].to_numpy()
        calib = out.meta["image"].to_numpy() < n_cal
        temps = E.calibrate(out, calib, cfg.prob_eps) if cfg.calibrate else {}
        for head in E.available_heads(out):
            nll = E.class_nll(E.head_log_probs(out, head, temps, cfg.prob_eps), labels)
            raw = E.class_nll(E.head_log_probs(out, head, {}, cfg.prob_eps), labels)
            m = out.meta[~calib]
            frames.append(pd.DataFrame({
                "variant": sp["variant"], "seed": sp["seed"], "head": head,
                "primary": head == primary_head(sp["variant"], cfg), "image": m["image"].to_numpy(),
                "obj": m["obj"].to_numpy(), "label": m["label"].to_numpy(), "nll_class": nll[~calib],
                "nll_class_raw": raw[~calib],
                "temperature": temps.get(head, float("nan")) if head != "mix" else float("nan")}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["variant", "seed", "head", "primary", "image", "obj", "label", "nll_class", "nll_class_raw",
                 "temperature"])


def nll_rows(obj: pd.DataFrame) -> pd.DataFrame:
    """Mean held-out class NLL per run and head (nats and bits; an upper bound, no known floor)."""
    if obj.empty:
        return pd.DataFrame()
    g = obj.groupby(["variant", "seed", "head", "primary"], as_index=False)
    rows = g.agg(n_objects=("nll_class", "size"), n_images=("image", "nunique"), nll_class=("nll_class", "mean"),
                 nll_class_raw=("nll_class_raw", "mean"), temperature=("temperature", "first"))
    rows["nll_class_bits"] = rows["nll_class"] / np.log(2)
    rows["floor"] = "unknown"
    return rows


def nll_difference_rows(obj: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    """Δ = NLL_grid − NLL_other (class, nats per object), paired by seed and by object."""
    rows: list[dict[str, Any]] = []
    if obj.empty:
        return pd.DataFrame(rows)
    ref = obj[(obj.variant == REFERENCE[0]) & (obj["head"] == REFERENCE[1])].set_index(["seed", "image", "obj"])
    if ref.empty:
        return pd.DataFrame(rows)
    hyb = ("hybrid", primary_head("hybrid", cfg))
    others = [hyb] + [k for k in (("hybrid", "dense"), ("hybrid", "sparse"), ("hybrid", "mix"), ("sparse-only", "sparse"))
                      if k != hyb]
    for variant, head in others:
        d = obj[(obj.variant == variant) & (obj["head"] == head)].set_index(["seed", "image", "obj"])
        common = ref.index.intersection(d.index)
        if not len(common):
            continue
        diff = ref.loc[common, "nll_class"] - d.loc[common, "nll_class"]          # per object, paired
        per_seed = diff.groupby(level="seed").mean()
        m, lo, hi = t_interval(per_seed.to_numpy(), cfg.ci_level)
        clusters = np.array([f"{s}:{i}" for s, i, _ in diff.index])
        blo, bhi = cluster_bootstrap(diff.to_numpy(), clusters, cfg.bootstrap, cfg.ci_level)
        rows.append({"quantity": "delta[nll_class]", "variant": variant, "head": head,
                     "primary": (variant, head) == hyb, "value": m, "ci_low": lo, "ci_high": hi,
                     "boot_low": blo, "boot_high": bhi, "n_seeds": len(per_seed), "n_objects": int(len(diff)),
                     "per_seed": [float(v) for v in per_seed], "unit": "nats per object (NLL_grid − NLL_other)",
                     "floor": "unknown", "note": NO_FLOOR})
    return pd.DataFrame(rows)


def ap_table(records: Sequence[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"variant": r["spec"]["variant"], "seed": r["spec"]["seed"], **row}
                         for r in records for row in r["ap"]])


def ap_summary_rows(ap: pd.DataFrame, cfg: ExperimentConfig) -> pd.DataFrame:
    rows = []
    for (variant, mode), d in (ap.groupby(["variant", "mode"]) if len(ap) else ()):
        for metric in ("AP", "AP50", "AP75"):
            m, lo, hi = t_interval(d[metric].to_numpy(float), cfg.ci_level)
            rows.append({"variant": variant, "mode": mode, "metric": metric, "value": m, "ci_low": lo,
                         "ci_high": hi, "n_seeds": len(d), "n_gt": int(d.n_gt.iloc[0])})
    return pd.DataFrame(rows)


def summary_rows(diff: pd.DataFrame, nll: pd.DataFrame, ap_summary: pd.DataFrame) -> pd.DataFrame:
    """One row per Δ: the hybrid's primary head with a verdict, the others marked secondary."""
    rows = []
    ref = nll[(nll.variant == REFERENCE[0]) & (nll["head"] == REFERENCE[1])].nll_class if len(nll) else pd.Series()
    ap = ap_summary[(ap_summary.metric == "AP")] if len(ap_summary) else ap_summary
    for r in diff.itertuples() if len(diff) else ():
        other = nll[(nll.variant == r.variant) & (nll["head"] == r.head)].nll_class
        verdict = ci_verdict(r.ci_low, r.ci_high)
        rows.append({"claim": "theorem.entropy", "measurement": "entropy_difference_class",
                     "statement": "H_hybrid < H_grid (own data, no known floor)" if r.primary
                     else f"NLL_grid − NLL[{r.variant}:{r.head}]",
                     "value": r.value, "ci_low": r.ci_low, "ci_high": r.ci_high, "unit": r.unit,
                     "verdict": verdict if r.primary else f"(secondary) {verdict}",
                     "evidence": (f"class NLL grid-only:dense {ref.mean():.3f}, {r.variant}:{r.head} {other.mean():.3f} "
                                  f"nats (seeds' mean); per seed Δ {[round(v, 4) for v in r.per_seed]}, t-interval over "
                                  f"{r.n_seeds} seed(s); bootstrap over images [{r.boot_low:.3f}, {r.boot_high:.3f}]; "
                                  f"{r.n_objects} scored objects; {NO_FLOOR}; AP: "
                                  + ", ".join(f"{a.variant}/{a.mode} {a.value:.3f}" for a in ap.itertuples()))})
    return pd.DataFrame(rows)


def build_coco_tables(records: Sequence[dict], cfg: ExperimentConfig, n_holdout_images: int) -> dict[str, pd.DataFrame]:
    main = [r for r in records if r["spec"]["tag"] == "main"]
    obj = nll_objects(main, cfg, n_holdout_images)
    tables = {"ap": ap_table(main)}
    tables["ap_summary"] = ap_summary_rows(tables["ap"], cfg)
    tables["nll"] = nll_rows(obj)
    tables["nll_difference"] = nll_difference_rows(obj, cfg)
    tables["summary"] = summary_rows(tables["nll_difference"], tables["nll"], tables["ap_summary"])
    return tables


def write_coco_results(records: Sequence[dict], cfg: ExperimentConfig, sets: dict[str, EvalSet],
                       out_dir: str | Path, wall_s: float, command: str | None = None,
                       training_invocation: dict | None = None) -> dict[str, Path]:
    """Write every table as ``experiments_coco_<name>.json`` (tidy rows + provenance + declared config)."""
    from hsgprof.results import write_results

    tables = build_coco_tables(records, cfg, len(sets["holdout"].scenes))
    meta = {"config_name": cfg.name, "config_key": cfg.key(), "seeds": list(cfg.seeds), "data": split_summary(cfg.data),
            "floor": "unknown", "note": NO_FLOOR, "wall_s_this_invocation": wall_s,
            "train_wall_s_sum": float(sum(r["log"].get("wall_s", 0.0) for r in records)), "n_runs": len(records),
            "training_invocation": training_invocation}
    out_dir = Path(out_dir)
    return {name: write_results(out_dir / f"experiments_coco_{name}.json", f"experiments.coco_{name}", df,
                                config=cfg.to_dict(), meta=meta, command=command)
            for name, df in tables.items()}
