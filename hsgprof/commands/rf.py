"""``hsgprof rf TARGET``: theoretical and effective receptive field of every output level."""

from __future__ import annotations

import argparse
import json
import sys

from hsgprof.errors import HsgprofError

FORMATS = ("text", "md", "json")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "rf", help="receptive fields per output level: stride, exact theoretical field, effective field",
        description="Receptive field of the centre cell of every output level of TARGET, in input pixels: the exact "
                    "theoretical field (every path through convs, pools, up-sampling and concatenation) and the "
                    "effective field (side 2r+1 of the smallest square around the field's centre holding --share of "
                    "the mean |gradient| of the cell over random [0,1] inputs, eval mode).")
    p.add_argument("target", help="HSG-Det preset (hsgdet-tiny, yolov8l-ref, ...) or package.module:factory "
                                  "(e.g. torchvision.models:vgg16)")
    p.add_argument("--input", default=None,
                   help="BxCxHxW or HxW (default: 1x3x640x640 for HSG-Det presets, else 1x3x224x224)")
    p.add_argument("--share", type=float, default=0.95, help="share of the gradient mass in the effective field "
                                                              "(default 0.95)")
    p.add_argument("--samples", type=int, default=8, help="random inputs averaged for the effective field (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights' initialisation and the inputs (default 0)")
    p.add_argument("--weights", default=None, help="trained weights: a state dict, or a checkpoint with one under "
                                                    "'model' (e.g. an experiment run's checkpoint.pt)")
    p.add_argument("--format", default="text", help=f"one of {', '.join(FORMATS)} (default text)")
    p.add_argument("--out", default=None, help="write the output to FILE (atomically, after the analysis succeeded)")
    p.add_argument("--figure", default=None, help="also save the gradient maps as an image (PNG or PDF)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="HSG-Det config override, repeatable (e.g. --set variant=grid-only)")
    p.set_defaults(func=run_rf)


def render(res, fmt: str) -> str:
    """The command's output text."""
    if fmt == "json":
        return json.dumps(res.to_dict(), indent=2, default=float) + "\n"
    from hsgprof.results import render_table

    t = res.table()
    t["stride"] = t["stride"].map(lambda v: "—" if v is None or v != v else f"{v:g}")
    t["theoretical_rf"] = [("global" if g else f"≥ {v}" if c else str(v))
                           for v, c, g in zip(t.theoretical_rf, t.theoretical_clipped, t["global"])]
    shown = t[["name", "stride", "theoretical_rf", "effective_rf", "effective_radius", "mass_outside_theoretical"]]
    head = (f"{res.target}, input {'x'.join(map(str, res.input_shape))}, weights: {res.weights}; pixels; effective "
            f"field = side of the square holding {res.levels[0].share if res.levels else ''} of the gradient mass "
            f"({res.samples} random inputs)")
    if fmt == "md":
        return "### " + head + "\n\n" + render_table(shown, "md") + "\n"
    return head + "\n\n" + shown.to_string(index=False) + "\n"


def run_rf(args: argparse.Namespace) -> int:
    from hsgprof.commands.count import _parse_overrides
    from hsgprof.receptive import receptive_fields
    from hsgprof.results import atomic_write_text

    if args.format not in FORMATS:
        raise HsgprofError(f"--format {args.format!r} is not accepted; choose one of {', '.join(FORMATS)}")
    if args.figure and not args.figure.lower().endswith((".png", ".pdf")):
        raise HsgprofError(f"--figure {args.figure!r} is not accepted; give a .png or .pdf path")
    res = receptive_fields(args.target, args.input, share=args.share, samples=args.samples, seed=args.seed,
                           weights=args.weights, overrides=_parse_overrides(args.overrides))
    text = render(res, args.format)
    if args.figure:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from hsgprof.receptive.figure import plot_fields

        fig = plot_fields(res)
        import io
        from hsgprof.results import atomic_write_bytes

        buf = io.BytesIO()
        fig.savefig(buf, format=args.figure.rsplit(".", 1)[-1].lower(), dpi=110, bbox_inches="tight")
        plt.close(fig)
        atomic_write_bytes(args.figure, buf.getvalue())
        print(f"wrote {args.figure}", file=sys.stderr)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
