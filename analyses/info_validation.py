"""Validate hsgprof's MI / CMI / entropy estimators against closed-form truths.

    python analyses/info_validation.py --quick          # a few minutes
    python analyses/info_validation.py                  # full plan (about an hour on 2 cores)
    python analyses/info_validation.py --stages bias    # only the N = 10,000 bias table

Writes ``reports/results/info_validation.json`` (tidy rows + provenance; summary, pitfalls and
cross-check tables under ``meta``) and figures (PNG + PDF) under ``reports/results/figures/``,
and prints the tables.  The report can call :func:`main` or
:func:`hsgprof.info.validation.run_validation` directly.
"""

from __future__ import annotations

import argparse
import sys
import time

import pandas as pd

from hsgprof.info import validation as V


def print_tables(result: dict, file=sys.stdout) -> None:
    """Print the bias table at N = 10,000, coverage, high-MI, cross-check and pitfall tables."""
    pd.set_option("display.width", 250)
    pd.set_option("display.max_columns", 40)
    pd.set_option("display.max_rows", 500)
    s = result["summary"]

    def show(title, df):
        if df is not None and len(df):
            print(f"\n## {title}\n", file=file)
            print(df.to_string(index=False), file=file)

    if len(s):
        show("Bias (mean error, nats) at N = 10,000 [stage bias]", V.bias_table(s, 10_000))
        show("Bias at N = 10,000: sd of the error", _pivot(s, "sd"))
        h = s[s["stage"] == "high_mi"][["case", "truth", "method", "reps", "bias", "sd", "rmse"]]
        show("High MI (d = 4 per variable, N = 10,000)", h.round(4))
        c = s[s["stage"] == "coverage"][["case", "method", "n", "reps", "bias", "sd", "coverage"]]
        show("Coverage of 95 % subsample intervals", c.round(4))
        w = s[s["stage"] == "sweep"][["case", "method", "n", "d", "rho", "truth", "reps", "bias", "sd", "seconds"]]
        show("Sweep over N and d", w.round(4))
    show("Cross-check against ennemi and scikit-learn (mean estimates, nats)", result["crosscheck"].round(4)
         if len(result["crosscheck"]) else None)
    show("Pitfalls", V.pitfall_table(result["pitfalls"]))
    print(f"\nstage seconds: { {k: round(v, 1) for k, v in result['stage_seconds'].items()} }", file=file)


def _pivot(s: pd.DataFrame, col: str) -> pd.DataFrame:
    b = s[(s["stage"] == "bias") & (s["n"] == 10_000)]
    if b.empty:
        return b
    return b.pivot_table(index="case", columns="method", values=col, aggfunc="first").round(4).reset_index()


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the quick plan (a few minutes)")
    ap.add_argument("--stages", nargs="+", choices=list(V.STAGES), help="run only these stages")
    ap.add_argument("--out", default=str(V.DEFAULT_OUT), help="results file (JSON)")
    ap.add_argument("--figures", default=None, help="figure folder (default: <out folder>/figures)")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    command = " ".join(["python", *sys.argv])
    res = V.run_validation("quick" if args.quick else "full", args.stages,
                           progress=lambda m: print(f"[{time.perf_counter() - t0:7.1f}s] {m}", flush=True),
                           on_stage=lambda partial: V.write_validation(partial, args.out, command=command, figures=False))
    paths = V.write_validation(res, args.out, args.figures, command=command)
    print_tables(res)
    print(f"\nwrote {paths['results']} and {len(paths['figures'])} figure files", flush=True)
    return res


if __name__ == "__main__":
    main()
