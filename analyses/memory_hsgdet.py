"""HSG-Det memory without a GPU: estimated steps at 1080×1920, the seed's section 7, 16 GB max batches.

Writes three results files (memory in binary units, MiB = 2^20 bytes; the seed's MB/GB are decimal
and are converted, never rounded into agreement):

- ``memory_hsgdet_estimates.json`` (kind ``memory.hsgdet.estimates``): hsgdet-l at batch 1,
  inference and training (AdamW), fp32 and fp16 AMP: parameters, gradients, optimizer state,
  activations, peak allocated / reserved as a CUDA step would have them;
- ``memory_hsgdet_seed.json`` (kind ``memory.hsgdet.seed``): each figure of the seed's "Memory
  Footprint (FP16)" beside the estimate it claims;
- ``memory_hsgdet_max_batch.json`` (kind ``memory.hsgdet.max_batch``): the largest batch
  predicted to fit a 16 GB card (V100-16GB: its total and the source of that figure are in
  ``hsgprof/memory/cards.py``; 512 MiB assumed for the CUDA context) at 1080×1920, inference and training, fp32 and fp16 AMP.

Profiles: ``quick`` (the above, about a minute on one CPU core) and ``full`` (adds bf16, the
grid-only variant and yolov8l-ref, and the T4 card).
Usage: python analyses/memory_hsgdet.py [--profile quick|full] [--out reports/results]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import pandas as pd

from hsgprof.claims.seed import SEED_MEMORY
from hsgprof.components import param_count
from hsgprof.memory.budget import card, predict_max_batch
from hsgprof.memory.estimate import MemoryEstimate, estimate_memory
from hsgprof.results import render_table, write_results
from hsgprof.targets import load_target

MiB = 1 << 20
GiB = 1 << 30
HW = (1080, 1920)
SEED_SECTION = "7 Memory Footprint (FP16)"


def _mib(b: Any) -> float | None:
    return None if b is None else round(b / MiB, 1)


def estimates(profile: str = "quick") -> dict[tuple, MemoryEstimate]:
    """(target, mode, precision) -> estimate at batch 1, 1080×1920, predicted for CUDA."""
    plan = [("hsgdet-l", m, p) for m in ("inference", "train") for p in ("fp32", "fp16-amp")]
    if profile == "full":
        plan += [("hsgdet-l", m, "bf16") for m in ("inference", "train")]
        plan += [(t, m, "fp16-amp") for t in ("hsgdet-l-grid", "yolov8l-ref") for m in ("inference", "train")]
    return {(t, m, p): estimate_memory(t, (1, 3, *HW), mode=m, optimizer="adamw", precision=p, device="cuda")
            for t, m, p in plan}


def estimate_table(ests: dict[tuple, MemoryEstimate]) -> pd.DataFrame:
    rows = []
    for (t, m, p), e in ests.items():
        rows.append({"target": t, "mode": m, "precision": p, "optimizer": e.optimizer, "batch": 1,
                     "input": f"1x3x{HW[0]}x{HW[1]}", "params_MiB": _mib(e.params_bytes),
                     "grads_MiB": _mib(e.grads_bytes), "optimizer_MiB": _mib(e.optimizer_bytes),
                     "saved_activations_MiB": _mib(e.saved_bytes),
                     "saved_weight_casts_MiB": _mib(e.saved_weight_casts_bytes),
                     "activation_peak_MiB": _mib(e.activation_peak_bytes),
                     "peak_allocated_MiB": _mib(e.peak_allocated_bytes),
                     "peak_reserved_MiB": _mib(e.peak_reserved_bytes),
                     "estimator_s": round(e.elapsed_s, 2),
                     **{k: v for k, v in e.summary().items() if k.endswith("_bytes")}})
    return pd.DataFrame(rows)


def seed_table(ests: dict[tuple, MemoryEstimate], max_batch: pd.DataFrame) -> pd.DataFrame:
    """The seed's section 7, figure by figure, beside the estimate (seed MB/GB are decimal)."""
    n_params = param_count(load_target("hsgdet-l", device="meta").model)
    inf, tr = ests[("hsgdet-l", "inference", "fp16-amp")], ests[("hsgdet-l", "train", "fp16-amp")]
    lo_t, hi_t = SEED_MEMORY["train_activation_bytes"]
    lo_i, hi_i = SEED_MEMORY["inference_activation_bytes"]
    fits = max_batch[(max_batch["mode"] == "train") & (max_batch["precision"] == "fp16-amp")
                     & (max_batch["card"] == "V100-16GB")]
    mb = int(fits["max_batch"].iloc[0]) if len(fits) else None
    rows = [
        {"claim": "FP16 params ≈ 77 MB", "seed_low_MiB": _mib(SEED_MEMORY["fp16_params_bytes"]),
         "seed_high_MiB": _mib(SEED_MEMORY["fp16_params_bytes"]), "estimate_MiB": _mib(2 * n_params),
         "estimate_is": f"2 bytes × {n_params:,} parameters of hsgdet-l"},
        {"claim": "activations ≈ 1.2–1.5 GB training", "seed_low_MiB": _mib(lo_t), "seed_high_MiB": _mib(hi_t),
         "estimate_MiB": _mib(tr.saved_bytes),
         "estimate_is": "activations saved for backward, fp16 AMP, batch 1 (weight copies apart)"},
        {"claim": "activations ≈ 1.2–1.5 GB training (peak)", "seed_low_MiB": _mib(lo_t), "seed_high_MiB": _mib(hi_t),
         "estimate_MiB": _mib(tr.peak_allocated_bytes - tr.static_bytes),
         "estimate_is": "peak allocated above parameters, optimizer state and input (fp16 AMP, batch 1)"},
        {"claim": "activations ≈ 400–600 MB inference", "seed_low_MiB": _mib(lo_i), "seed_high_MiB": _mib(hi_i),
         "estimate_MiB": _mib(inf.activation_peak_bytes),
         "estimate_is": "peak live bytes above parameters and input, fp16 AMP, batch 1"},
        {"claim": "suitable for 16 GB GPU", "seed_low_MiB": None, "seed_high_MiB": None,
         "estimate_MiB": _mib(tr.peak_reserved_bytes),
         "estimate_is": f"training step peak reserved at batch 1 (fp16 AMP, AdamW); largest batch predicted "
                        f"to fit a V100-16GB: {mb}"},
    ]
    for r in rows:
        lo, hi, est = r["seed_low_MiB"], r["seed_high_MiB"], r["estimate_MiB"]
        r["section"] = SEED_SECTION
        r["within_seed_range"] = None if lo is None else bool(lo <= est <= hi)
        r["estimate_over_seed_high"] = None if hi is None else round(est / hi, 2)
    return pd.DataFrame(rows)


def max_batch_table(ests: dict[tuple, MemoryEstimate], profile: str = "quick") -> pd.DataFrame:
    cards = [card("V100-16GB")] + ([card("T4")] if profile == "full" else [])
    rows = []
    for c in cards:
        for mode, cap in (("inference", 64), ("train", 32)):
            for prec in ("fp32", "fp16-amp"):
                cache = {1: ests[("hsgdet-l", mode, prec)]} if ("hsgdet-l", mode, prec) in ests else None
                t0 = time.perf_counter()
                res, _ = predict_max_batch("hsgdet-l", HW, mode, prec, c.usable_bytes, "adamw", cap, cache=cache)
                rows.append({"target": "hsgdet-l", "mode": mode, "precision": prec,
                             "optimizer": "adamw" if mode == "train" else None, "input_hw": f"{HW[0]}x{HW[1]}",
                             **c.describe(), **res.row(), "seconds": round(time.perf_counter() - t0, 1)})
    return pd.DataFrame(rows)


def memory_tables(profile: str = "quick") -> dict[str, pd.DataFrame]:
    """The three tables as DataFrames (what the project report calls)."""
    if profile not in ("quick", "full"):
        raise ValueError(f"profile {profile!r} is not accepted; choose quick or full")
    ests = estimates(profile)
    mb = max_batch_table(ests, profile)
    return {"estimates": estimate_table(ests), "seed": seed_table(ests, mb), "max_batch": mb}


def run(out_dir: Path, profile: str = "quick") -> list[Path]:
    tables = memory_tables(profile)
    cfg = {"profile": profile, "input_hw": list(HW), "device_predicted": "cuda", "units": "MiB = 2^20 bytes"}
    out = Path(out_dir)
    return [write_results(out / "memory_hsgdet_estimates.json", "memory.hsgdet.estimates", tables["estimates"], cfg),
            write_results(out / "memory_hsgdet_seed.json", "memory.hsgdet.seed", tables["seed"], cfg,
                          meta={"seed_section": SEED_SECTION, "seed_units": "decimal MB/GB, converted to MiB"}),
            write_results(out / "memory_hsgdet_max_batch.json", "memory.hsgdet.max_batch", tables["max_batch"], cfg)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick", choices=("quick", "full"))
    ap.add_argument("--quick", action="store_const", const="quick", dest="profile", help="same as --profile quick")
    ap.add_argument("--out", type=Path, default=Path("reports/results"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    paths = run(args.out, args.profile)
    from hsgprof.results import results_frame

    for p in paths:
        df = results_frame(p)
        cols = [c for c in df.columns if not c.endswith("_bytes")]
        print(f"\n{p}\n")
        print(render_table(df[cols], "md"))
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
