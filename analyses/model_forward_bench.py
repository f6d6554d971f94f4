"""Wall time of real CPU forwards of presets at one size, side by side (median of repeats).

Usage: python analyses/model_forward_bench.py [--presets hsgdet-l,yolov8l-ref] [--input 1x3x1080x1920]
       [--repeats 3] [--out reports/benchmarks/model_forward_bench.json]
Each round times one eval-mode raw forward (no grad) of every preset in turn, after one untimed
warm-up each, so the ratio to the last preset is measured under the same machine load. Writes a
results file (kind ``model.forward_bench``; ``--out ''`` writes nothing) and prints the medians.
Timings on a shared 2-core box are noisy: read the ratio, and the load average in the rows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from hsgprof.errors import HsgprofError
from hsgprof.results import write_results
from hsgprof.targets import load_target, parse_input


def forward_times(presets: list[str], shape: tuple[int, int, int, int], repeats: int,
                  seed: int = 0) -> dict[str, list[float]]:
    """Seconds per eval-mode raw forward (no grad) per preset, rounds interleaved."""
    targets = {p: load_target(p) for p in presets}
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(seed))
    times: dict[str, list[float]] = {p: [] for p in presets}
    with torch.inference_mode():
        for t in targets.values():
            t.forward(t.model.eval(), x)                               # warm-up
        for _ in range(repeats):
            for p, t in targets.items():
                t0 = time.perf_counter()
                t.forward(t.model, x)
                times[p].append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", default="hsgdet-l,yolov8l-ref", help="comma-separated; ratios to the last")
    ap.add_argument("--input", default="1x3x1080x1920")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="reports/benchmarks/model_forward_bench.json")
    args = ap.parse_args(argv)
    presets = [p for p in args.presets.split(",") if p]
    if args.repeats < 1 or not presets:
        sys.exit(f"model_forward_bench: --repeats {args.repeats} and --presets {args.presets!r}: "
                 "need at least one repeat and one preset")
    try:
        shape = parse_input(args.input, (1, 3, 1080, 1920))
        load0 = os.getloadavg()[0]
        times = forward_times(presets, shape, args.repeats)
    except HsgprofError as exc:                        # unknown preset, bad size: one line, exit 1
        sys.exit(f"model_forward_bench: {exc}")
    ref = presets[-1]
    rows = []
    for p in presets:
        med = statistics.median(times[p])
        ratio = statistics.median(a / b for a, b in zip(times[p], times[ref]))
        rows.append({"preset": p, "input": "x".join(map(str, shape)), "device": "cpu",
                     "torch_threads": torch.get_num_threads(), "median_s": med, "runs_s": times[p],
                     f"ratio_to_{ref}": ratio, "load_avg_1m_before": load0, "load_avg_1m_after": os.getloadavg()[0]})
        print(f"{p} {'x'.join(map(str, shape))} on CPU ({torch.get_num_threads()} threads): median {med:.2f} s "
              f"({', '.join(f'{t:.2f}' for t in times[p])}); ratio to {ref} {ratio:.2f}")
    if args.out:
        path = write_results(args.out, "model.forward_bench", rows, config=vars(args),
                             command=" ".join(["python", *sys.argv]))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
