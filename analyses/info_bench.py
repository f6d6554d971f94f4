"""Speed of hsgprof's k-NN MI estimator, measured side by side with ennemi in one run.

    python analyses/info_bench.py            # default: 7 repeats at d = 1, 3 at d = 16
    python analyses/info_bench.py --repeats 11 --out reports/benchmarks/info_bench.json

Measures (medians of repeats, calls interleaved so both tools see the same machine load):

1. N = 10,000, d = 1 per variable: ``hsgprof.info.mi(x, y, "ksg1")`` versus
   ``ennemi.estimate_mi(y, x, k=3)`` (both standardise the data; estimates must agree) and
   scikit-learn's ``mutual_info_regression`` for reference.  Target: ratio ennemi / ours >= 1.
2. N = 10,000, d = 16 per variable (joint dimension 32): ours (auto back end = brute force)
   versus the plain cKDTree implementation (ennemi's internal estimator, which accepts
   multi-dimensional x and y) and ours forced onto the tree back end.  Target: ours < 3 s.

Prints the machine load (other processes share the two cores) and writes a results file.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np

from hsgprof.info import cases as C
from hsgprof.info import mi


def _time(fn, repeats: int) -> tuple[float, list[float], object]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times, out


CPU_TIMES: dict[str, list[float]] = {}


def _interleaved(fns: dict, repeats: int) -> dict:
    """Run each function once per round, ``repeats`` rounds; returns name -> (median, times, value).

    Also records the process CPU time of every call in ``CPU_TIMES``: on a machine that other
    jobs share, CPU time / cores is the wall time the call would take with the cores to itself.
    """
    times = {k: [] for k in fns}
    vals = {}
    for _ in range(repeats):
        for k, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            vals[k] = fn()
            times[k].append(time.perf_counter() - t0)
            CPU_TIMES.setdefault(k, []).append(time.process_time() - c0)
    return {k: (statistics.median(v), v, vals[k]) for k, v in times.items()}


def bench(repeats_small: int = 7, repeats_large: int = 3, n: int = 10_000, d_large: int = 16,
          skip_plain: bool = False) -> list[dict]:
    import ennemi
    from ennemi._entropy_estimators import _estimate_single_mi
    from sklearn.feature_selection import mutual_info_regression

    import torch

    rows = []
    load0 = os.getloadavg()
    x, y = C.correlated_gaussian(1, 0.9).sample(n, np.random.default_rng(0))
    mi(x, y, "ksg1", seed=0)  # warm-up: imports, thread pools
    ennemi.estimate_mi(y[:, 0], x[:, 0], k=3)
    r = _interleaved({
        "hsgprof ksg1": lambda: mi(x, y, "ksg1", seed=0).value,
        "ennemi estimate_mi": lambda: float(np.asarray(ennemi.estimate_mi(y[:, 0], x[:, 0], k=3)).ravel()[0]),
        "sklearn mutual_info_regression": lambda: float(mutual_info_regression(x, y[:, 0], n_neighbors=3,
                                                                               random_state=0)[0]),
    }, repeats_small)
    base = r["hsgprof ksg1"][0]
    for name, (med, ts, val) in r.items():
        rows.append({"case": f"N={n}, d=1", "impl": name, "median_s": med, "times_s": ts, "estimate": val,
                     "ratio_vs_hsgprof": med / base, "repeats": repeats_small})

    xl, yl = C.correlated_gaussian(d_large, 0.9).sample(n, np.random.default_rng(1))
    fns = {"hsgprof ksg1 (auto: brute)": lambda: mi(xl, yl, "ksg1", seed=0).value}
    mi(xl[:500], yl[:500], "ksg1", seed=0, backend="brute")  # warm-up torch
    r2 = _interleaved(fns, repeats_large)
    rows.append({"case": f"N={n}, d={d_large}/var", "impl": "hsgprof ksg1 (auto: brute)", "median_s": r2[
        "hsgprof ksg1 (auto: brute)"][0], "times_s": r2["hsgprof ksg1 (auto: brute)"][1],
        "estimate": r2["hsgprof ksg1 (auto: brute)"][2], "ratio_vs_hsgprof": 1.0, "repeats": repeats_large})
    if not skip_plain:
        xs = (xl - xl.mean(0)) / xl.std(0)
        ys = (yl - yl.mean(0)) / yl.std(0)
        for name, fn in {"plain cKDTree (ennemi internals)": lambda: float(_estimate_single_mi(xs, ys, 3)),
                         "hsgprof ksg1 (tree back end)": lambda: mi(xl, yl, "ksg1", seed=0, backend="tree").value}.items():
            med, ts, val = _time(fn, 1)
            rows.append({"case": f"N={n}, d={d_large}/var", "impl": name, "median_s": med, "times_s": ts,
                         "estimate": val, "ratio_vs_hsgprof": med / r2["hsgprof ksg1 (auto: brute)"][0],
                         "repeats": 1})
    load1 = os.getloadavg()
    for row in rows:
        cpu = CPU_TIMES.get(row["impl"])
        row["median_cpu_s"] = statistics.median(cpu) if cpu else None
        row.update(load_before=load0[0], load_after=load1[0], cpu_count=os.cpu_count(),
                   torch_threads=torch.get_num_threads())
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7, help="repeats at d = 1 (median reported)")
    ap.add_argument("--repeats-large", type=int, default=3, help="repeats at d = 16 (median reported)")
    ap.add_argument("--skip-plain", action="store_true", help="skip the slow plain-cKDTree reference at d = 16")
    ap.add_argument("--out", default="reports/benchmarks/info_bench.json")
    args = ap.parse_args(argv)
    rows = bench(args.repeats, args.repeats_large, skip_plain=args.skip_plain)
    print(f"load average before/after: {rows[0]['load_before']:.2f} / {rows[0]['load_after']:.2f} "
          f"on {rows[0]['cpu_count']} cores (torch threads {rows[0]['torch_threads']})")
    for r in rows:
        cpu = f"cpu {r['median_cpu_s']:8.3f} s" if r.get("median_cpu_s") is not None else " " * 14
        print(f"{r['case']:>18} | {r['impl']:<34} | median {r['median_s']:8.4f} s | {cpu} | "
              f"x{r['ratio_vs_hsgprof']:6.2f} of hsgprof | estimate {r['estimate']:.4f}")
    small = {r["impl"]: r for r in rows if r["case"].endswith("d=1")}
    ratio = small["ennemi estimate_mi"]["median_s"] / small["hsgprof ksg1"]["median_s"]
    large = next(r for r in rows if r["impl"].startswith("hsgprof ksg1 (auto"))
    print(f"\nspeed vs ennemi at N=10^4, d=1: ennemi/hsgprof = {ratio:.2f} (target >= 1: "
          f"{'met' if ratio >= 1 else 'NOT met'})")
    print(f"N=10^4, d=16/var: {large['median_s']:.2f} s wall (target < 3 s: {'met' if large['median_s'] < 3 else 'NOT met'}); "
          f"process CPU {large['median_cpu_s']:.2f} s over {large['torch_threads']} threads "
          f"(= {large['median_cpu_s'] / large['torch_threads']:.2f} s with the cores to itself)")
    if args.out:
        from hsgprof.results import write_results
        p = write_results(args.out, "info_bench", rows, config=vars(args), command=" ".join(["python", *sys.argv]))
        print(f"wrote {p}")
    return rows


if __name__ == "__main__":
    main()
