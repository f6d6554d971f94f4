"""Wall time of one real CPU forward of a preset at a given size (median of repeats).

Usage: python analyses/model_forward_bench.py [--preset hsgdet-l] [--input 1x3x1080x1920] [--repeats 3]
Prints the median and every run; writes nothing (a benchmark for closing notes, not a result
the report reads). Run on a quiet machine: timings on a shared 2-core box are noisy.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from hsgprof.targets import load_target, parse_input


def forward_times(preset: str, shape: tuple[int, int, int, int], repeats: int, seed: int = 0) -> list[float]:
    """Seconds per eval-mode raw forward (no grad), after one untimed warm-up."""
    target = load_target(preset)
    model = target.model.eval()
    x = torch.rand(*shape, generator=torch.Generator().manual_seed(seed))
    times = []
    with torch.inference_mode():
        target.forward(model, x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            target.forward(model, x)
            times.append(time.perf_counter() - t0)
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="hsgdet-l")
    ap.add_argument("--input", default="1x3x1080x1920")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    shape = parse_input(args.input, (1, 3, 1080, 1920))
    times = forward_times(args.preset, shape, args.repeats)
    print(f"{args.preset} {'x'.join(map(str, shape))} on CPU ({torch.get_num_threads()} threads): "
          f"median {statistics.median(times):.2f} s over {len(times)} runs "
          f"({', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
