"""``hsgprof info``: list the MI / entropy estimators and run their validation suite."""

from __future__ import annotations

import argparse
import sys

from hsgprof.errors import HsgprofError
from hsgprof.results import check_writable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="mutual-information and entropy estimators: list methods, run validation")
    isub = p.add_subparsers(dest="info_command", metavar="ACTION")
    m = isub.add_parser("methods", help="list the estimators, what they estimate and their options")
    m.set_defaults(func=run_methods)
    v = isub.add_parser("validate", help="validate every estimator against closed-form truths (writes JSON + figures)")
    v.add_argument("--quick", action="store_true", help="the quick plan (a few minutes); default: full (about an hour)")
    v.add_argument("--stages", nargs="+", metavar="STAGE",
                   help="only these stages: bias, high_mi, coverage, crosscheck, pitfalls, sweep")
    v.add_argument("--out", default=None, help="results file (default reports/results/info_validation.json)")
    v.add_argument("--figures", default=None, help="figure folder (default: <out folder>/figures)")
    v.set_defaults(func=run_validate)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def run_methods(args: argparse.Namespace) -> int:
    from hsgprof.info import METHODS

    for spec in METHODS.values():
        opts = ", ".join(f"{k}={v!r}" for k, v in spec.defaults.items()) or "-"
        print(f"{spec.name:<13} {'/'.join(spec.quantities):<16} {spec.family:<10} {spec.summary}  [{opts}]")
    return 0


def run_validate(args: argparse.Namespace) -> int:
    from hsgprof.info import validation as V

    if args.stages:
        bad = [s for s in args.stages if s not in V.STAGES]
        if bad:
            raise HsgprofError(f"unknown validation stage {bad[0]!r}; accepted: {', '.join(V.STAGES)}")
    out = check_writable(args.out or V.DEFAULT_OUT, "--out")          # both outputs, before any estimator runs
    check_writable(args.figures or out.parent / "figures", "--figures", folder=True)
    res = V.run_validation("quick" if args.quick else "full", args.stages,
                           progress=lambda msg: print(msg, file=sys.stderr, flush=True))
    paths = V.write_validation(res, out, args.figures,
                               command=" ".join(["hsgprof", "info", "validate", *sys.argv[3:]]))
    table = V.bias_table(res["summary"]) if len(res["summary"]) else None
    if table is not None and len(table):
        print(table.to_string(index=False))
    pit = V.pitfall_table(res["pitfalls"])
    if len(pit):
        print(pit.to_string(index=False))
    print(f"wrote {paths['results']} and {len(paths['figures'])} figure files")
    return 0
