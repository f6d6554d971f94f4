"""``hsgprof fit``: search the seed's open choices for configurations meeting both budgets (params, FLOPs@1080p)."""

from __future__ import annotations

import argparse

TOP_FIELDS = ("family", "csp_block", "depth_mult", "neck_depth", "dense_head", "decoder_ffn", "global_dim",
              "width_mult")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "fit", help="budget fit: configurations of HSG-Det's open choices meeting 38.5M params and 570 GFLOPs@1080p",
        description="Search the choices the seed leaves open (family v8/v5, CSP block, depth multiplier, PAN depth, "
                    "dense head, decoder FFN, global width, width multiplier) for configurations within ±5% of both "
                    "the seed's parameter and FLOP budgets. Counts on the meta device (FLOPs = 2 × MACs, 1080×1920 "
                    "native), components cached where their structure and input repeat.")
    p.add_argument("--space", default="default", help="default (a few minutes), full (every value; hours) or tiny")
    p.add_argument("--seed-plan-only", action="store_true", help="keep the seed's channel plan (width_mult 1.0)")
    p.add_argument("--workers", default="1", help="processes to map the configurations over (default 1)")
    p.add_argument("--top", default="5", help="how many closest configurations to print (default 5)")
    p.add_argument("--out", default=None, help="write every row (JSON results file with provenance) to FILE")
    p.add_argument("--figure", default=None, help="write the Pareto figure (PNG) to FILE")
    p.set_defaults(func=run_fit)


def _at_least_one(flag: str, value: str) -> int:
    from hsgprof.errors import HsgprofError

    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise HsgprofError(f"{flag} {value!r} is not accepted; give a whole number >= 1")
    return n


def run_fit(args: argparse.Namespace) -> int:
    import os
    import sys

    import pandas as pd

    from hsgprof import fit
    from hsgprof.errors import HsgprofError
    from hsgprof.results import atomic_write_bytes, render_table, write_results

    if args.space not in fit.SPACES:
        raise HsgprofError(f"--space {args.space!r} is not accepted; choose one of {', '.join(fit.SPACES)}")
    top, workers = _at_least_one("--top", args.top), _at_least_one("--workers", args.workers)
    for flag, path in (("--out", args.out), ("--figure", args.figure)):
        if path is not None and (path.endswith("/") or os.path.isdir(path)):
            raise HsgprofError(f"{flag} {path!r} is a folder; give a file path")

    def progress(i: int, n: int) -> None:
        if i % 25 == 0 or i == n:
            print(f"\r{i}/{n} configurations", end="" if i < n else "\n", file=sys.stderr, flush=True)

    df, stats = fit.search(args.space, free=not args.seed_plan_only, progress=progress, workers=workers)
    s = fit.summary(df, top)
    print(f"Budget fit ({args.space} space, {stats['configurations']} configurations, {stats['seconds']} s; "
          f"components counted {stats['components_counted']}, recalled from the cache {stats['components_recalled']})")
    print(f"Budgets: {fit.PARAMS_BUDGET / 1e6:g}M params and {fit.FLOPS_BUDGET / 1e9:g} GFLOPs at 1080×1920 "
          f"(native, FLOPs = 2 × MACs), each within ±{fit.TOLERANCE:.0%}.")
    print(f"Answer: {s['answer']}.")
    for key in ("seed_plan_anchor_free", "seed_plan_any_head", "free_plan_anchor_free", "free_plan_any_head"):
        part = s[key]
        if not part["configurations"]:
            continue
        print(f"\n{key.replace('_', ' ')}: {part['configurations']} configurations; meet params {part['meet_params']}, "
              f"meet FLOPs {part['meet_flops']}, meet both {part['meet_both']}. Closest:")
        close = pd.DataFrame(part["closest"])
        close["params [M]"] = (close.pop("params") / 1e6).round(2)
        close["GFLOPs"] = (close.pop("flops") / 1e9).round(1)
        for c in ("params_dev", "flops_dev", "distance"):
            close[c] = (close[c] * 100).round(1).astype(str) + "%"
        print(render_table(close, "md"))
    if args.out:
        write_results(args.out, "fit.hsgdet", list(fit.as_rows(df)), {"space": fit.SPACES[args.space],
                      "tolerance": fit.TOLERANCE, "seed_plan_only": args.seed_plan_only},
                      {"summary": s, "search": stats}, "hsgprof fit " + " ".join(sys.argv[2:]))
        print(f"\nrows: {args.out}")
    if args.figure:
        import io

        import matplotlib.pyplot as plt

        fig = fit.pareto_figure(df)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=130)
        plt.close(fig)
        atomic_write_bytes(args.figure, buf.getvalue())
        print(f"figure: {args.figure}")
    return 0
