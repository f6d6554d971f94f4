"""HSG-Det under every reading of the seed: premise scores and the primary reading, counts, memory, and the
readings × claims matrix.

    python analyses/readings.py            # ~3-4 min on 2 cores (memory max-batch searches dominate)
    python analyses/readings.py --quick    # the same without the 16 GB max-batch search
    python analyses/readings.py --matrix-only   # re-judge the matrix from the results files already written

From Python (the report): ``from analyses.readings import run; paths = run(out_dir, quick=True)``.

Writes to ``reports/results/`` (tidy rows with provenance; a ``reading`` column where rows differ):

- ``readings_primary.json`` (``readings.primary``): each reading's facts, premise scores and total under
  the declared rule (hsgprof/claims/readings.py), and which reading is primary;
- ``readings_components.json`` (``readings.components``): per-component params and FLOPs at 1080×1920,
  native and padded, referee on the meta device, and at 640×640;
- ``readings_seed_audit.json`` (``readings.seed_audit``): the seed's arithmetic audit per reading;
- ``readings_references.json`` (``readings.references``): the reference presets against their published
  parameters and GFLOPs at 640;
- ``readings_memory.json`` (``readings.memory_estimates``) and ``readings_max_batch.json``
  (``readings.max_batch``, full run only): the memory estimator's batch-1 fp16-AMP steps and the largest
  training batch predicted to fit a 16 GB card;
- ``readings_matrix.json`` (``readings.matrix``): every parameter/FLOP/memory claim judged under every
  reading by the ledger's own measures and rules, with the per-claim summary in ``meta.headlines``;
- ``figures/readings_matrix.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hsgprof.claims.readings import (FAMILIES, PREMISES, PRIMARY_RULE, READINGS, choose_primary,  # noqa: E402
                                     premise_scores, reading_facts)
from hsgprof.claims.seed import SEED_FLOPS  # noqa: E402
from hsgprof.results import write_results  # noqa: E402

HW = SEED_FLOPS["input_hw"]
SEED_INPUT = "x".join(map(str, HW))
MiB = 1 << 20


def primary_table() -> pd.DataFrame:
    """Facts, premise scores and totals of every reading, and the rule's choice."""
    facts = {name: reading_facts(r) for name, r in READINGS.items()}
    scores = {name: premise_scores(f) for name, f in facts.items()}
    winner = choose_primary(scores)
    rows = []
    for name, f in facts.items():
        s = scores[name]
        rows.append({"reading": name, "reference": f["reference"], "reference_channels": list(f["reference_channels"]),
                     "channels": list(f["channels"]), "depths": list(f["depths"]), "neck_depth": f["neck_depth"],
                     "depths_match": f["depths_match"], "grid_flops_640": f["grid_flops_640"],
                     "grid_params": f["grid_params"], **{f"score_{k}": v for k, v in s.items()},
                     "total": sum(s.values()), "primary": name == winner,
                     "description": READINGS[name].description})
    return pd.DataFrame(rows)


def counts() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Component tables (1080p native and padded, 640²) and the seed audit, per reading (referee, meta device)."""
    from hsgprof.counting import count
    from hsgprof.counting.audit import seed_audit

    comps, audits = [], []
    refs: dict[str, tuple] = {}
    for name, r in READINGS.items():
        yolo = FAMILIES[r.family]["l"]
        if yolo not in refs:
            refs[yolo] = (count(yolo, "640x640", backends="analytic"), count(yolo, SEED_INPUT, backends="analytic"))
        native = count(r.preset, SEED_INPUT, "native", "analytic", **r.overrides)
        padded = count(r.preset, SEED_INPUT, "padded", "analytic", **r.overrides)
        h640 = count(r.preset, "640x640", "native", "analytic", **r.overrides)
        for res in (native, padded, h640):
            comps.append(res.table("component").assign(reading=name, preset=r.preset))
        audits.append(seed_audit(native, padded, h640, *refs[yolo], reference=yolo).assign(reading=name))
    return pd.concat(comps, ignore_index=True), pd.concat(audits, ignore_index=True)


def memory(quick: bool) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """Estimator rows (batch 1, fp16 AMP, inference and AdamW training) and, unless quick, the 16 GB max batch."""
    from hsgprof.memory.budget import card, predict_max_batch
    from hsgprof.memory.estimate import estimate_memory

    est, mb = [], []
    v100 = card("V100-16GB")
    for name, r in READINGS.items():
        ests = {}
        for mode in ("inference", "train"):
            e = estimate_memory(r.preset, (1, 3, *HW), mode=mode, optimizer="adamw", precision="fp16-amp",
                                device="cuda", **r.overrides)
            ests[mode] = e
            est.append({"reading": name, "target": r.preset, "mode": mode, "precision": "fp16-amp",
                        "optimizer": e.optimizer, "batch": 1, "input": f"1x3x{HW[0]}x{HW[1]}",
                        "params_MiB": round(e.params_bytes / MiB, 1), "saved_activations_MiB": round(e.saved_bytes / MiB, 1),
                        "activation_peak_MiB": round(e.activation_peak_bytes / MiB, 1),
                        "peak_allocated_MiB": round(e.peak_allocated_bytes / MiB, 1),
                        "peak_reserved_MiB": round(e.peak_reserved_bytes / MiB, 1),
                        **{k: v for k, v in e.summary().items() if k.endswith("_bytes")}})
        if not quick:
            t0 = time.perf_counter()
            res, _ = predict_max_batch(r.preset, HW, "train", "fp16-amp", v100.usable_bytes, "adamw", 32,
                                       cache={1: ests["train"]}, **r.overrides)
            mb.append({"reading": name, "target": r.preset, "mode": "train", "precision": "fp16-amp",
                       "optimizer": "adamw", "input_hw": SEED_INPUT, **v100.describe(), **res.row(),
                       "seconds": round(time.perf_counter() - t0, 1)})
    return pd.DataFrame(est), (pd.DataFrame(mb) if mb else None)


def matrix_from(paths: list[Path]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Judge the matrix from the files just written (and the committed GPU folders), as the report does."""
    from hsgprof.claims.matrix import headlines, readings_matrix
    from hsgprof.report.build import MEASUREMENTS
    from hsgprof.report.store import ResultsStore

    store = ResultsStore()
    store.add_measurements(MEASUREMENTS)
    store.add_files(paths)
    m = readings_matrix(store)
    return m, headlines(m)


def run(out_dir: str | Path = REPO / "reports" / "results", quick: bool = False,
        figures: bool = True) -> dict[str, Path]:
    out = Path(out_dir)
    command = f"python analyses/readings.py{' --quick' if quick else ''}"
    config = {"quick": quick, "input": SEED_INPUT, "readings": {n: {"preset": r.preset, "overrides": r.overrides}
                                                                for n, r in READINGS.items()}}
    t0, load0 = time.perf_counter(), os.getloadavg()[0]
    primary = primary_table()
    meta = {"rule": PRIMARY_RULE, "premises": [p.__dict__ for p in PREMISES],
            "primary": primary.loc[primary["primary"], "reading"].iloc[0]}
    paths = {"primary": write_results(out / "readings_primary.json", "readings.primary", primary, config, meta, command)}
    comps, audit = counts()
    from hsgprof.adapters.hsgdet import GLOBAL_REASONING

    cmeta = {"convention": "FLOPs = 2 x MACs; referee_gemm_flops is the headline",
             "global_reasoning": list(GLOBAL_REASONING)}
    paths["components"] = write_results(out / "readings_components.json", "readings.components", comps, config,
                                        cmeta, command)
    paths["audit"] = write_results(out / "readings_seed_audit.json", "readings.seed_audit", audit, config, {}, command)
    from hsgprof.counting.audit import reference_validation

    paths["references"] = write_results(out / "readings_references.json", "readings.references", reference_validation(),
                                        config, {}, command)
    est, mb = memory(quick)
    units = {"units": "MiB = 2^20 bytes", "device_predicted": "cuda"}
    paths["memory"] = write_results(out / "readings_memory.json", "readings.memory_estimates", est, config, units,
                                    command)
    if mb is not None:
        paths["max_batch"] = write_results(out / "readings_max_batch.json", "readings.max_batch", mb, config, units,
                                           command)
    paths.update(write_matrix(out, list(paths.values()), config, command, figures,
                              {"seconds": round(time.perf_counter() - t0, 1),
                               "load_avg_1m": [round(load0, 2), round(os.getloadavg()[0], 2)]}))
    return paths


MEASURED = ("readings_primary.json", "readings_components.json", "readings_seed_audit.json",
            "readings_references.json", "readings_memory.json", "readings_max_batch.json")


def write_matrix(out: Path, files: list[Path], config: dict[str, Any], command: str, figures: bool = True,
                 extra: dict[str, Any] | None = None) -> dict[str, Path]:
    """Judge the matrix from the readings' results files and write it (and its figure)."""
    m, heads = matrix_from(files)
    paths = {"matrix": write_results(out / "readings_matrix.json", "readings.matrix", m, config,
                                     {"headlines": heads.to_dict(orient="records"), **(extra or {})}, command)}
    if figures:
        import matplotlib.pyplot as plt

        from hsgprof.claims.matrix import matrix_figure

        (out / "figures").mkdir(parents=True, exist_ok=True)
        fig = matrix_figure(m)
        paths["figure"] = out / "figures" / "readings_matrix.png"
        fig.savefig(paths["figure"], dpi=130)
        plt.close(fig)
    return paths


def matrix_only(out_dir: str | Path, figures: bool = True) -> dict[str, Path]:
    """Re-judge the matrix from the readings' results already in ``out_dir`` (no measurement is rerun)."""
    out = Path(out_dir)
    files = [out / f for f in MEASURED if (out / f).is_file()]
    if not files:
        from hsgprof.errors import HsgprofError

        raise HsgprofError(f"no readings results in {str(out)!r}; run python analyses/readings.py first")
    return write_matrix(out, files, {"from_files": [f.name for f in files]},
                        "python analyses/readings.py --matrix-only", figures)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="skip the 16 GB max-batch search")
    p.add_argument("--out", default=str(REPO / "reports" / "results"))
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--matrix-only", action="store_true",
                   help="re-judge the matrix from the readings results already in --out (measures nothing)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    paths = matrix_only(args.out, not args.no_figures) if args.matrix_only else \
        run(args.out, args.quick, not args.no_figures)
    for k, v in paths.items():
        print(f"{k}: {v}")
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
