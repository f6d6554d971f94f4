"""CPU validation of the memory estimate: saved activations vs a real CPU step's saved tensors.

For each model and (reduced) input size: the bytes autograd saves for backward in a real CPU
training forward (saved-tensor hooks, one count per storage, parameters and buffers left out)
beside the estimate's, made on fake CPU tensors; plus the estimate's backward-phase peak with
the Python graph walk beside PyTorch's engine (both on fake tensors). Writes
``memory_validation.json`` (kind ``memory.validation``). Target: within 5%.
Usage: python analyses/memory_validation.py [--profile quick|full] [--out reports/results]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from hsgprof.memory import estimate_memory
from hsgprof.memory.truth import saved_tensor_truth
from hsgprof.results import render_table, results_frame, write_results

MiB = 1 << 20
QUICK = [("hsgdet-tiny", (2, 3, 128, 160)), ("hsgdet-l", (1, 3, 256, 448)),
         ("torchvision.models:resnet18", (2, 3, 224, 224)), ("torchvision.models:mobilenet_v3_small", (2, 3, 224, 224))]
FULL = QUICK + [("hsgdet-l-grid", (1, 3, 256, 448)), ("yolov8l-ref", (1, 3, 256, 448)),
                ("torchvision.models:resnet50", (2, 3, 224, 224)), ("torchvision.models:vit_b_16", (1, 3, 224, 224))]


def validation_rows(cases: list[tuple[str, tuple[int, int, int, int]]]) -> list[dict]:
    rows = []
    for target, shape in cases:
        t0 = time.perf_counter()
        truth = saved_tensor_truth(target, shape)
        t1 = time.perf_counter()
        est = estimate_memory(target, shape, mode="train", precision="fp32", device="cpu")
        t2 = time.perf_counter()
        eng = estimate_memory(target, shape, mode="train", precision="fp32", device="cpu", engine_backward=True)
        walk_bwd = est.per_phase.set_index("phase").loc["backward", "peak_tensor_bytes"]
        eng_bwd = eng.per_phase.set_index("phase").loc["backward", "peak_tensor_bytes"]
        rel = est.saved_bytes / truth.saved_bytes - 1
        rows.append({"target": target, "input": "x".join(map(str, shape)), "precision": "fp32",
                     "truth_saved_bytes": truth.saved_bytes, "estimate_saved_bytes": est.saved_bytes,
                     "truth_saved_MiB": round(truth.saved_bytes / MiB, 3),
                     "estimate_saved_MiB": round(est.saved_bytes / MiB, 3),
                     "relative_error": round(rel, 5), "within_5pct": abs(rel) <= 0.05,
                     "saved_tensors_counted": truth.tensors,
                     "backward_peak_walk_MiB": round(walk_bwd / MiB, 2),
                     "backward_peak_engine_MiB": round(eng_bwd / MiB, 2),
                     "walk_vs_engine": round(walk_bwd / eng_bwd - 1, 5),
                     "truth_seconds": round(t1 - t0, 1), "estimate_seconds": round(t2 - t1, 1)})
    return rows


def run(out_dir: Path, profile: str = "quick") -> list[Path]:
    torch.set_num_threads(1)
    rows = validation_rows(FULL if profile == "full" else QUICK)
    return [write_results(Path(out_dir) / "memory_validation.json", "memory.validation", rows,
                          config={"profile": profile, "tolerance": 0.05, "units": "MiB = 2^20 bytes"})]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick", choices=("quick", "full"))
    ap.add_argument("--out", type=Path, default=Path("reports/results"))
    args = ap.parse_args()
    for p in run(args.out, args.profile):
        df = results_frame(p)
        print(p)
        print(render_table(df[[c for c in df.columns if not c.endswith("_bytes")]], "md"))


if __name__ == "__main__":
    main()
