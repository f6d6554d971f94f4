"""Benchmark: how long the memory estimate of hsgdet-l at 1080×1920 takes on this CPU (target < 10 s).

Times ``estimate_memory`` (fake tensors, no GPU) for a training step (AdamW) and an inference
call, fp32 and fp16 AMP, batch 1, predicted for CUDA; median of ``--repeat`` runs after one
warm-up run (imports, first-call caches). Writes ``memory_bench.json`` (kind ``memory.bench``).
Usage: python analyses/memory_bench.py [--repeat 3] [--threads 1] [--out reports/benchmarks]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import torch

from hsgprof.memory import estimate_memory
from hsgprof.results import render_table, write_results

TARGET_S = 10.0
CASES = [("train", "fp32"), ("train", "fp16-amp"), ("inference", "fp32"), ("inference", "fp16-amp")]


def run(out_dir: Path, profile: str = "quick", repeat: int = 3, threads: int = 1) -> list[Path]:
    torch.set_num_threads(threads)
    shape = (1, 3, 1080, 1920)
    load0 = os.getloadavg()[0]
    estimate_memory("hsgdet-l", shape, mode="train", device="cuda")          # warm-up
    rows = []
    for mode, prec in CASES:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            estimate_memory("hsgdet-l", shape, mode=mode, optimizer="adamw", precision=prec, device="cuda")
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        rows.append({"target": "hsgdet-l", "input": "1x3x1080x1920", "mode": mode, "precision": prec,
                     "median_s": round(med, 2), "min_s": round(min(times), 2), "max_s": round(max(times), 2),
                     "runs": repeat, "torch_threads": threads, "target_s": TARGET_S, "meets_target": med < TARGET_S,
                     "load_avg_1m_before": load0, "load_avg_1m_after": os.getloadavg()[0]})
    return [write_results(Path(out_dir) / "memory_bench.json", "memory.bench", rows,
                          config={"repeat": repeat, "threads": threads, "target_s": TARGET_S})]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=Path("reports/benchmarks"))
    args = ap.parse_args()
    from hsgprof.results import results_frame

    for p in run(args.out, repeat=args.repeat, threads=args.threads):
        print(p)
        print(render_table(results_frame(p), "md"))


if __name__ == "__main__":
    main()
