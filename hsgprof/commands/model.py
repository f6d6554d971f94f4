"""``hsgprof model summary TARGET``: module tree and per-component parameter counts."""

from __future__ import annotations

import argparse

from hsgprof.errors import HsgprofError
from hsgprof.results import render_table

FORMATS = ("text", "md", "csv", "json", "latex")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("model", help="inspect a model (module tree, parameters per component)")
    msub = p.add_subparsers(dest="model_command", metavar="ACTION")
    s = msub.add_parser("summary", help="module tree with parameters, and the per-component table")
    s.add_argument("target", help="HSG-Det preset (e.g. hsgdet-l, yolov8l-ref) or package.module:factory")
    s.add_argument("--depth", type=int, default=2, help="module tree depth (default 2)")
    s.add_argument("--format", default="text", help=f"one of {', '.join(FORMATS)} (default text)")
    s.set_defaults(func=run_summary)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run_summary(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise HsgprofError(f"--format {args.format!r} is not accepted; choose one of {', '.join(FORMATS)}")
    from hsgprof.components import module_tree, params_by_component      # heavy (torch, pandas)
    from hsgprof.targets import load_target

    target = load_target(args.target, device="meta")      # parameters are counted without allocating
    tree = module_tree(target.model, args.depth)
    comps = params_by_component(target.model, target.components) if target.components else None
    if args.format == "text":
        print(f"{target.name}: {int(tree.params.iloc[0]):,} parameters "
              "(all parameters, shared tensors once; SI: M = 1e6)")
        for r in tree.itertuples():
            print(f"{'  ' * r.depth}{r.path:<{48 - 2 * r.depth}} {r.type:<22} {r.params:>14,}")
        if comps is not None:
            print()
            print(render_table(comps.assign(params_M=(comps.params / 1e6).round(3)), "md"))
        return 0
    print(render_table(comps if comps is not None else tree, args.format))
    return 0
