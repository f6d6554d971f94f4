"""Budget fit: does any reading of the seed's open choices meet both its budgets (38.5M params, 570 GFLOPs
at 1080×1920, each within ±5%)?

    python analyses/fit_hsgdet.py                  # the default space (~3-5 min on 2 cores)
    python analyses/fit_hsgdet.py --space full     # every value of every open choice (hours on 2 cores)

Also ``hsgprof fit`` (same search, prints the answer). Writes ``reports/results/fit_hsgdet.json`` (kind
``fit.hsgdet``: one row per configuration; ``meta``: the answer, the closest configurations, every reading's
point, and what the component cache bought) and ``reports/results/figures/fit_pareto.png``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def run(out_dir: str | Path = REPO / "reports" / "results", space: str = "default", figures: bool = True,
        command: str | None = None, cache_check: bool = True, workers: int = 1) -> dict[str, Any]:
    """Run the search; returns the paths written and the summary."""
    from hsgprof import fit
    from hsgprof.results import write_results

    out = Path(out_dir)
    load0 = os.getloadavg()[0]
    df, stats = fit.search(space, workers=workers)
    if cache_check:
        stats["uncached_sample"] = uncached_sample(df, fit.SPACES[space] if space in fit.SPACES else space)
    stats["load_avg_1m"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    points = fit.readings_points()
    summary = fit.summary(df)
    meta = {"summary": summary, "search": stats, "readings": points.to_dict(orient="records"),
            "pareto": fit.pareto(df)[[*fit.FIELDS, "params", "flops"]].to_dict(orient="records"),
            "convention": "flops = GEMM FLOPs (2 × MACs), referee on the meta device, 1x3x1080x1920 native; "
                          "params of the whole model (eval, no post-processing)"}
    config = {"space": fit.SPACES.get(space, space), "tolerance": fit.TOLERANCE, "base": fit.BASE,
              "input": list(fit.INPUT)}
    paths: dict[str, Any] = {"results": write_results(out / "fit_hsgdet.json", "fit.hsgdet", list(fit.as_rows(df)),
                                                      config, meta, command or f"python analyses/fit_hsgdet.py "
                                                                               f"--space {space}")}
    if figures:
        import matplotlib.pyplot as plt

        (out / "figures").mkdir(parents=True, exist_ok=True)
        fig = fit.pareto_figure(df, points)
        paths["figure"] = out / "figures" / "fit_pareto.png"
        fig.savefig(paths["figure"], dpi=130)
        plt.close(fig)
    paths["summary"] = summary
    return paths


def uncached_sample(df, space, n: int = 3) -> dict[str, Any]:
    """What the cache buys: ``n`` configurations timed without a cache, beside the cached search's mean."""
    from hsgprof import fit

    sample = df.sample(n=min(n, len(df)), random_state=0)
    t0 = time.perf_counter()
    for row in sample.to_dict(orient="records"):
        fit.evaluate({k: row[k] for k in fit.FIELDS})
    per = (time.perf_counter() - t0) / len(sample)
    return {"configurations": int(len(sample)), "seconds_per_configuration_uncached": round(per, 3),
            "load_avg_1m": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="default", help="default, full or tiny")
    p.add_argument("--out", default=str(REPO / "reports" / "results"))
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--workers", type=int, default=1, help="processes to map the configurations over (default 1)")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    paths = run(args.out, args.space, not args.no_figures,
                command=f"python analyses/fit_hsgdet.py --space {args.space} --workers {args.workers}",
                workers=args.workers)
    print(paths.pop("summary")["answer"])
    for k, v in paths.items():
        print(f"{k}: {v}")
    print(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
