"""From finished runs to the results files: every table and the verdict summary, written and read.

:func:`build_tables` makes the tables (:mod:`hsgprof.experiments.tables`) and the ``summary`` of
verdicts (:mod:`hsgprof.experiments.verdicts`) from run records; :func:`write_all` writes each as
``experiments_<name>.json`` with provenance and the declared config; :func:`load_tables` reads
them back (notebooks, the report). Also here: the receptive-field design check of the trained
grid-only runs (``fields``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pandas as pd

from hsgprof.experiments import gate as G
from hsgprof.experiments import tables as T
from hsgprof.experiments.config import ExperimentConfig
from hsgprof.experiments.evaluate import EvalSet
from hsgprof.experiments.verdicts import summary_rows


def build_tables(records: Sequence[dict], cfg: ExperimentConfig) -> dict[str, pd.DataFrame]:
    """Every results table from finished run records."""
    obj = T.per_object_table(records, cfg)
    tables: dict[str, pd.DataFrame] = {}
    tables["entropy"] = T.entropy_rows(obj)
    tables["entropy_summary"] = T.entropy_summary(obj, cfg)
    tables["information"] = T.information_rows(records, cfg)
    tables["information_summary"] = T.information_summary(tables["information"], cfg)
    tables["pairs"] = T.pair_rows(obj, cfg)
    tables["occlusion"] = T.occlusion_rows(obj, cfg)
    tables["capacity"] = T.capacity_rows(obj, cfg)
    tables["stability"] = T.stability_rows(records, cfg)
    tables["gradients"] = T.gradient_log_rows([r for r in records if r["spec"]["tag"] == "main"])
    tables["convergence"], tables["convergence_steps"] = T.convergence_rows(records, cfg)
    tables["ap"] = T.ap_table(records)
    tables["ap_summary"] = T.ap_summary(tables["ap"], cfg)
    tables["controls"] = G.control_rows(obj, cfg, T.known(cfg)["h_bit_given_x"])
    tables["fields"] = field_rows(records, cfg)
    tables["summary"] = summary_rows(tables, cfg)
    return tables


def write_all(records: Sequence[dict], cfg: ExperimentConfig, sets: dict[str, EvalSet], out_dir: str | Path,
              wall_s: float, command: str | None = None, training_invocation: dict | None = None) -> dict[str, Path]:
    """Write every table as ``experiments_<name>.json`` (tidy rows + provenance + declared config)."""
    import time

    from hsgprof.results import write_results

    t0 = time.perf_counter()
    tables = build_tables(records, cfg)
    out_dir = Path(out_dir)
    train_wall = float(sum(r["log"].get("wall_s", 0.0) for r in records))
    eval_wall = float(sum(r.get("eval_wall_s", 0.0) for r in records))
    meta = {"config_name": cfg.name, "config_key": cfg.key(), "seeds": list(cfg.seeds),
            "known": T.known(cfg), "wall_s_this_invocation": wall_s + time.perf_counter() - t0, "train_wall_s_sum": train_wall,
            "eval_wall_s_sum": eval_wall, "n_runs": len(records),
            "training_invocation": training_invocation,
            "eval_sets": {k: {"images": len(v.scenes), "objects": len(v.gt["annotations"])} for k, v in sets.items()},
            "capacity_trend": T.capacity_trend(tables["capacity"], cfg.capacity_trend, cfg.ci_level),
            "gate": G.gate_status(tables["controls"], cfg),
            "design": _design_meta(tables["fields"], cfg)}
    paths = {}
    for name, df in tables.items():
        paths[name] = write_results(out_dir / f"experiments_{name}.json", f"experiments.{name}", df,
                                    config=cfg.to_dict(), meta=meta, command=command)
    return paths


def field_rows(records: Sequence[dict], cfg: ExperimentConfig) -> pd.DataFrame:
    """The grid-only model's receptive fields on the validation canvas: random weights (the declared
    design check, recomputed here) and every trained grid-only run's weights (``record["fields"]``)."""
    from hsgprof.experiments.fields import grid_fields

    docs = [("random", -1, grid_fields(cfg, grow=False))]
    docs += [("trained", r["spec"]["seed"], r["fields"]) for r in records
             if r["spec"]["tag"] == "main" and r["spec"]["variant"] == "grid-only" and r.get("fields")]
    rows = []
    for weights, seed, doc in docs:
        for lv in doc["levels"]:
            rows.append({"weights": weights, "seed": seed, "level": lv["name"], "stride": lv["stride"],
                         "theoretical_rf": lv["theoretical_rf"], "theoretical_clipped": lv["theoretical_clipped"],
                         "effective_rf": lv["effective_rf"], "effective_radius": lv["effective_radius"],
                         "share": lv["share"], "key_gap": doc["key_gap"],
                         "key_outside": bool(doc["key_gap"] > lv["effective_radius"]), "input": doc["input"]})
    return pd.DataFrame(rows)


def _design_meta(fields: pd.DataFrame, cfg: ExperimentConfig) -> dict[str, Any]:
    """The design check in one place: key gap vs the largest effective radius, random and trained."""
    out: dict[str, Any] = {"key_gap": cfg.val_scene.key_gap, "share": cfg.design.share,
                           "canvas": [cfg.val_scene.height, cfg.val_scene.width]}
    for weights, d in fields.groupby("weights") if len(fields) else ():
        worst = d.loc[d.effective_radius.idxmax()]
        out[weights] = {"max_effective_radius": float(worst.effective_radius), "level": worst.level,
                        "key_outside_effective_field": bool(cfg.val_scene.key_gap > worst.effective_radius),
                        "n_models": int(d.seed.nunique())}
    return out


def load_tables(out_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Read the tables :func:`write_all` wrote (for notebooks and the report)."""
    from hsgprof.results import read_results

    out_dir = Path(out_dir)
    tables = {}
    for p in sorted(out_dir.glob("experiments_*.json")):
        doc = read_results(p)
        tables[p.stem.removeprefix("experiments_")] = pd.DataFrame(doc["rows"])
    return tables
