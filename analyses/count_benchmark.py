"""How long the referee takes to count hsgdet-l at 1080×1920, against one real CPU forward, in one run.

    python analyses/count_benchmark.py [--repeats 5] [--forwards 2]

Target (issue 4): the referee ≥ 20× faster than a real CPU forward and under 5 s. Both are timed
in this one process on this machine, on built models (building is timed and reported apart):
the referee counts the meta-device model (closed-form formulas plus the inline FlopCounterMode
check); the real forward runs the CPU model under ``torch.no_grad()`` after one small warm-up.
Times are medians. Writes ``reports/benchmarks/count_benchmark.json`` with the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from hsgprof.counting import count, timed_referee  # noqa: E402
from hsgprof.results import write_results  # noqa: E402
from hsgprof.targets import load_target  # noqa: E402

PRESET, SHAPE = "hsgdet-l", (1, 3, 1080, 1920)
TARGET_RATIO, TARGET_SECONDS = 20.0, 5.0


def benchmark(repeats: int = 5, forwards: int = 2) -> dict:
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    meta = load_target(PRESET, device="meta")
    meta.model.eval()
    build_meta = time.perf_counter() - t0
    t0 = time.perf_counter()
    cpu = load_target(PRESET, device="cpu")
    cpu.model.eval()
    build_cpu = time.perf_counter() - t0

    referee = []
    for _ in range(repeats):
        seconds, macs = timed_referee(meta.model, meta.forward, SHAPE)
        referee.append(seconds)

    x = torch.rand(SHAPE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        cpu.forward(cpu.model, torch.rand(1, 3, 320, 320))           # warm-up (allocator, kernels)
        real = []
        for _ in range(forwards):
            t0 = time.perf_counter()
            cpu.forward(cpu.model, x)
            real.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    count(PRESET, "x".join(map(str, SHAPE)), "native", "analytic")      # the API end to end, build included
    api = time.perf_counter() - t0

    ref_med, real_med = statistics.median(referee), statistics.median(real)
    return {"preset": PRESET, "input": "x".join(map(str, SHAPE)), "referee_macs": macs,
            "referee_seconds_median": ref_med, "referee_seconds": referee, "real_forward_seconds_median": real_med,
            "real_forward_seconds": real, "ratio": real_med / ref_med, "count_api_seconds": api,
            "build_meta_seconds": build_meta, "build_cpu_seconds": build_cpu, "torch_threads": torch.get_num_threads(),
            "target_ratio": TARGET_RATIO, "target_seconds": TARGET_SECONDS,
            "meets_ratio": real_med / ref_med >= TARGET_RATIO, "meets_seconds": ref_med < TARGET_SECONDS,
            "load_avg_1m_before": load0, "load_avg_1m_after": os.getloadavg()[0]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5, help="referee counts to time (median)")
    p.add_argument("--forwards", type=int, default=2, help="real CPU forwards to time (median)")
    p.add_argument("--out", default=str(REPO / "reports" / "benchmarks" / "count_benchmark.json"))
    args = p.parse_args(argv)
    r = benchmark(args.repeats, args.forwards)
    write_results(args.out, "count.benchmark", [r], {"repeats": args.repeats, "forwards": args.forwards},
                  command="python analyses/count_benchmark.py " + " ".join(argv or sys.argv[1:]))
    print(f"referee count of {r['preset']} at {r['input']}: {r['referee_seconds_median']:.3f} s (median of "
          f"{args.repeats}; {r['referee_macs'] / 1e9:.1f} GMACs)")
    print(f"one real CPU forward ({r['torch_threads']} threads): {r['real_forward_seconds_median']:.2f} s "
          f"(median of {args.forwards})")
    print(f"ratio: {r['ratio']:.1f}x (target >= {TARGET_RATIO:g}x: {'met' if r['meets_ratio'] else 'NOT met'}); "
          f"under {TARGET_SECONDS:g} s: {'met' if r['meets_seconds'] else 'NOT met'}")
    print(f"count() end to end incl. building on meta: {r['count_api_seconds']:.2f} s; builds: meta "
          f"{r['build_meta_seconds']:.2f} s, cpu {r['build_cpu_seconds']:.2f} s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
