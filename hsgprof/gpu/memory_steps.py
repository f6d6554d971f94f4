"""The suite's memory sections: measured peaks beside the estimate, an allocator snapshot, 16 GB max batch.

- ``memory``   per-phase ``max_memory_allocated`` / ``max_memory_reserved`` of hsgdet-l steps after
               warm-up, beside the estimator's prediction -> ``memory.json``
- ``snapshot`` allocator history of one hsgdet-l inference step (batch 1, fp32), a pickle that
               https://pytorch.org/memory_viz opens -> ``snapshot_hsgdet-l_inference_b1.pickle``
- ``maxbatch`` a 16 GB card emulated with ``set_per_process_memory_fraction``; the largest batch at
               the input size for inference and training, fp32 and fp16 AMP, searched on the GPU
               (OOM-safe) and predicted by the estimator -> ``max_batch.json``
"""

from __future__ import annotations

import time
from typing import Any

MiB = 1 << 20
GiB = 1 << 30


def memory_configs(quick: bool) -> list[tuple[str, str, str, int]]:
    cfg = [("hsgdet-l", "inference", "fp32", 1), ("hsgdet-l", "inference", "fp16-amp", 1),
           ("hsgdet-l", "train", "fp32", 1), ("hsgdet-l", "train", "fp16-amp", 1)]
    if not quick:
        cfg += [("hsgdet-l", "inference", "fp32", 4), ("hsgdet-l", "train", "fp16-amp", 2),
                ("hsgdet-l", "train", "bf16", 1), ("yolov8l-ref", "train", "fp16-amp", 1)]
    return cfg


def maxbatch_configs() -> list[tuple[str, str, int]]:
    return [("inference", "fp32", 64), ("inference", "fp16-amp", 64), ("train", "fp32", 32),
            ("train", "fp16-amp", 32)]


def submit_estimates(suite: Any) -> None:
    """Queue the estimator jobs the memory sections read (in worker processes)."""
    from hsgprof.gpu import estimates

    h, w = suite.hw
    if "memory" in suite.sections:
        for target, mode, prec, b in memory_configs(suite.quick):
            suite.futures[("est", target, mode, prec, b)] = suite.pool.submit(
                estimates.job_estimate, target, (b, 3, h, w), mode, prec, "adamw")
    if "maxbatch" in suite.sections:
        for mode, prec, cap in maxbatch_configs():
            suite.futures[("maxb", mode, prec)] = suite.pool.submit(
                estimates.job_predict_max_batch, "hsgdet-l", suite.hw, mode, prec, suite.card.usable_bytes,
                "adamw", cap)


def fmt_mib(v: Any) -> str:
    return "n/a" if v is None else f"{v / MiB:.0f} MiB"


def section_memory(suite: Any, budget: float) -> None:
    from hsgprof.memory import cuda as cuda_mem

    end = time.monotonic() + budget
    h, w = suite.hw
    configs = memory_configs(suite.quick)
    for i, (target, mode, prec, b) in enumerate(configs):
        if time.monotonic() > end:
            suite.log(f"memory: skipping {len(configs) - i} configurations (time budget)")
            for t2, m2, p2, b2 in configs[i:]:
                suite.rows["memory"].append({"target": t2, "mode": m2, "precision": p2, "batch": b2,
                                             "phase": "step", "status": "skipped: time budget"})
            break
        label = f"{target} {mode} {prec} b{b}"
        suite.log(f"memory: {label}")
        meas = suite.guarded(f"memory {label}", lambda: cuda_mem.measure_step_memory(
            target, (b, 3, h, w), mode, prec, "adamw", warmup=2))
        pred = suite.result(("est", target, mode, prec, b), end - time.monotonic())
        rows = memory_rows(target, mode, prec, b, suite.hw, meas, pred)
        suite.rows["memory"].extend(rows)
        suite.write("memory")
        r = next(r for r in rows if r["phase"] == "step")
        suite.log(f"  measured peak allocated {fmt_mib(r.get('measured_peak_allocated_bytes'))}, "
                  f"predicted {fmt_mib(r.get('predicted_peak_allocated_bytes'))}, ratio {r.get('allocated_ratio')}")


def section_snapshot(suite: Any, budget: float) -> None:
    from hsgprof.memory import cuda as cuda_mem

    h, w = suite.hw
    path = suite.out / "snapshot_hsgdet-l_inference_b1.pickle"
    res = suite.guarded("snapshot", lambda: cuda_mem.record_snapshot("hsgdet-l", (1, 3, h, w), path,
                                                                      mode="inference", precision="fp32"))
    if isinstance(res, dict):
        suite.meta["memory"]["snapshot"] = {**res, "path": path.name, "open_with": "https://pytorch.org/memory_viz"}
        suite.log(f"snapshot: {path.name}, {res['bytes'] / MiB:.1f} MiB, {res['events']} events")
        if res["bytes"] > 16 * MiB:
            suite.log("snapshot: larger than 16 MiB (may not be copied back from the GPU host)")
        suite.write("memory")


def section_maxbatch(suite: Any, budget: float) -> None:
    from hsgprof.memory import cuda as cuda_mem

    end = time.monotonic() + budget
    configs = maxbatch_configs()
    suite.meta["maxbatch"].update(card=suite.card.describe(), fraction=suite.info["fraction"],
                                  target="hsgdet-l", input_hw=list(suite.hw), optimizer="adamw",
                                  note="training trials run two full steps; reserved memory is what the "
                                       "limit applies to; only batches that ran are reported as fitting")
    for i, (mode, prec, cap) in enumerate(configs):
        left = end - time.monotonic()
        if left < 5:
            suite.log(f"maxbatch: skipping {len(configs) - i} searches (time budget)")
            for m2, p2, _ in configs[i:]:
                suite.rows["maxbatch"].append({"mode": m2, "precision": p2, "status": "skipped: time budget"})
            break
        per = left / (len(configs) - i)
        suite.log(f"maxbatch: {mode} {prec} (cap {cap}, {per:.0f} s)")
        meas = suite.guarded(f"maxbatch {mode} {prec}", lambda: cuda_mem.search_cuda_max_batch(
            "hsgdet-l", suite.hw, mode, prec, suite.card.usable_bytes, "adamw", cap, time_budget_s=per * 0.85))
        pred = suite.result(("maxb", mode, prec), end - time.monotonic())
        row = maxbatch_row(mode, prec, cap, suite.hw, suite.card, suite.info["fraction"], meas, pred)
        suite.rows["maxbatch"].append(row)
        suite.meta["maxbatch"].setdefault("trials", []).append({
            "mode": mode, "precision": prec,
            "measured": [{"batch": t.batch, "ok": t.ok, "seconds": round(t.seconds, 2), **t.info}
                         for t in getattr(meas, "trials", [])],
            "predicted": (pred or {}).get("trial_list", [])})
        suite.write("maxbatch")
        suite.log(f"  measured max batch {row.get('measured_max_batch')} (first fail "
                  f"{row.get('measured_first_failing_batch')}), predicted {row.get('predicted_max_batch')}")


def _ratio(pred: Any, meas: Any) -> float | None:
    if pred is None or not meas:
        return None
    return round(pred / meas, 4)


def memory_rows(target: str, mode: str, prec: str, batch: int, hw: tuple[int, int], meas: Any,
                pred: dict[str, Any] | None) -> list[dict[str, Any]]:
    """Predicted vs measured, one row per phase plus the whole step and the static baseline."""
    base = {"target": target, "mode": mode, "precision": prec, "batch": batch, "input": f"{batch}x3x{hw[0]}x{hw[1]}",
            "optimizer": "adamw" if mode == "train" else None}
    meas_ok = isinstance(meas, dict)
    status = "ok" if meas_ok else f"measurement failed: {type(meas).__name__}: {meas}"[:300]
    pphase = {r["phase"]: r for r in (pred or {}).get("per_phase", [])}
    rows = []
    phases = list(meas["phases"]) if meas_ok else list(pphase) or ["forward"]
    for ph in phases + ["step"]:
        if ph == "step":
            ma = meas["peak_allocated_bytes"] if meas_ok else None
            mr = meas["peak_reserved_bytes"] if meas_ok else None
            pa = pred.get("peak_bytes") if pred else None
            pr = pred.get("peak_reserved_bytes") if pred else None
        else:
            ma = meas["phases"][ph]["peak_allocated_bytes"] if meas_ok else None
            mr = meas["phases"][ph]["peak_reserved_bytes"] if meas_ok else None
            pa = pphase.get(ph, {}).get("peak_allocated_bytes")
            pr = pphase.get(ph, {}).get("peak_reserved_bytes")
        ra = _ratio(pa, ma)
        rows.append({**base, "phase": ph, "measured_peak_allocated_bytes": ma, "measured_peak_reserved_bytes": mr,
                     "predicted_peak_allocated_bytes": pa, "predicted_peak_reserved_bytes": pr,
                     "allocated_ratio": ra, "reserved_ratio": _ratio(pr, mr),
                     "within_10pct_allocated": None if ra is None else abs(ra - 1) <= 0.10,
                     "measured_peak_allocated_MiB": None if ma is None else round(ma / MiB, 1),
                     "predicted_peak_allocated_MiB": None if pa is None else round(pa / MiB, 1),
                     "measured_peak_reserved_MiB": None if mr is None else round(mr / MiB, 1),
                     "predicted_peak_reserved_MiB": None if pr is None else round(pr / MiB, 1),
                     "status": status if pred else f"{status}; no prediction"})
    mb = meas.get("baseline_allocated_bytes") if meas_ok else None
    pb = pred.get("static_bytes") if pred else None
    rows.append({**base, "phase": "baseline (static: params, buffers, optimizer state, input)",
                 "measured_peak_allocated_bytes": mb, "predicted_peak_allocated_bytes": pb,
                 "allocated_ratio": _ratio(pb, mb),
                 "unmodelled_persistent_bytes": None if mb is None or pb is None else mb - pb,
                 "status": status})
    if pred:
        for k in ("params_bytes", "grads_bytes", "optimizer_bytes", "saved_bytes", "activations_bytes",
                  "estimator_seconds"):
            rows[-1][f"predicted_{k}"] = pred.get(k)
    return rows


def maxbatch_row(mode: str, prec: str, cap: int, hw: tuple[int, int], card: Any, fraction: float, meas: Any,
                 pred: dict[str, Any] | None) -> dict[str, Any]:
    row: dict[str, Any] = {"target": "hsgdet-l", "mode": mode, "precision": prec, "input_hw": f"{hw[0]}x{hw[1]}",
                           "optimizer": "adamw" if mode == "train" else None, "search_cap": cap,
                           "card": card.name, "usable_bytes": card.usable_bytes,
                           "usable_GiB": round(card.usable_bytes / GiB, 3), "fraction": round(fraction, 5)}
    if hasattr(meas, "row"):
        r = meas.row()
        row.update({f"measured_{k}": v for k, v in r.items()})
        row["status"] = "ok"
    else:
        row["status"] = f"measurement failed: {type(meas).__name__}: {meas}"[:300]
    if pred:
        row.update({f"predicted_{k}": v for k, v in pred.items() if k != "trial_list"})
    if hasattr(meas, "row") and pred:
        row["agree"] = row["measured_max_batch"] == row["predicted_max_batch"]
    return row
