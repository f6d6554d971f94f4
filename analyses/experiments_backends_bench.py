"""Wall time of one experiment preset on the local pool and on a local Ray instance, side by side.

Each backend trains the preset from an empty cache (same seeds, same number of CPUs: ``--cpus``
pool workers, or a Ray instance of ``--cpus`` CPUs started for it), then the two sets of results
tables are compared row for row. The load average is recorded beside every timing (the machine
may be shared). Writes ``reports/benchmarks/experiments_backends.json``.

Usage: python analyses/experiments_backends_bench.py [--preset smoke] [--cpus 2] [--order local,ray]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from hsgprof.experiments import get_preset, run_experiment
from hsgprof.experiments.executors import RayExecutor
from hsgprof.results import write_results

TIMING_META = ("wall_s_this_invocation", "train_wall_s_sum", "eval_wall_s_sum", "training_invocation")


def tables(folder: Path) -> dict:
    out = {}
    for p in sorted(folder.glob("experiments_*.json")):
        doc = json.loads(p.read_text())
        out[p.name] = (doc["rows"], {k: v for k, v in doc["meta"].items() if k not in TIMING_META})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="smoke")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--order", default="local,ray")
    ap.add_argument("--out", default="reports/benchmarks/experiments_backends.json")
    args = ap.parse_args()
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")          # the Ray instance on loopback
    cfg = get_preset(args.preset)
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for backend in args.order.split(","):
            load_before = os.getloadavg()
            t0 = time.perf_counter()
            if backend == "ray":
                with RayExecutor(local_cpus=args.cpus) as ex:
                    started = time.perf_counter() - t0
                    run_experiment(cfg, Path(d) / backend / "out", Path(d) / backend / "cache", progress=False,
                                   backend=ex)
            else:
                started = 0.0
                run_experiment(cfg, Path(d) / backend / "out", Path(d) / backend / "cache", progress=False,
                               workers=args.cpus)
            wall = time.perf_counter() - t0
            rows.append({"backend": backend, "preset": args.preset, "cpus": args.cpus, "wall_s": wall,
                         "ray_start_s": started, "load_before": list(load_before), "load_after": list(os.getloadavg())})
            print(rows[-1], flush=True)
        a, b = (tables(Path(d) / k / "out") for k in args.order.split(","))
        equal = a == b and len(a) > 0
    by = {r["backend"]: r["wall_s"] for r in rows}
    meta = {"ray_over_local": by["ray"] / by["local"], "tables_equal": equal, "n_tables": len(a),
            "cpu_count": os.cpu_count(), "note": "one run of each, in the order given; the machine may be shared "
                                                "(see load_before / load_after)"}
    write_results(args.out, "benchmark.experiments_backends", rows, config={"preset": args.preset, "cpus": args.cpus,
                                                                          "config_key": cfg.key()}, meta=meta)
    print(json.dumps(meta))


if __name__ == "__main__":
    main()
