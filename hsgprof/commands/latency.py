"""``hsgprof latency TARGET [TARGET ...]``: end-to-end and per-component latency on CPU or CUDA."""

from __future__ import annotations

import argparse

from hsgprof.errors import HsgprofError
from hsgprof.memory.choices import PRECISIONS
from hsgprof.results import check_writable, render_table, write_results

FORMATS = ("md", "csv", "json", "latex")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latency", help="time inference end to end and per component (median, IQR)",
                       description="Time the network's inference call (no post-processing) on CPU or CUDA: "
                                   "median and IQR over repeated runs after warm-up; several targets are timed "
                                   "side by side in interleaved rounds.")
    p.add_argument("targets", nargs="+", help="HSG-Det presets (hsgdet-l, hsgdet-l-grid, yolov8l-ref, ...) "
                                              "or package.module:factory")
    p.add_argument("--input", default=None, help="BxCxHxW or HxW (default: the first target's own)")
    p.add_argument("--batch", type=int, default=None, help="batch size (overrides the B of --input)")
    p.add_argument("--precision", default="fp32", help=f"one of {', '.join(PRECISIONS)} (default fp32)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up runs per target (default 3 cpu, 10 cuda)")
    p.add_argument("--repeat", type=int, default=None, help="timed runs per target (default 10 cpu, 30 cuda)")
    p.add_argument("--reference", default=None, help="target the others are divided by (default: the last one "
                                                     "when several are given)")
    p.add_argument("--no-components", action="store_true", help="skip the per-component pass")
    p.add_argument("--format", default="md", help=f"one of {', '.join(FORMATS)} (default md)")
    p.add_argument("--out", default=None, help="also write a tidy results file (JSON with provenance)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.format not in FORMATS:
        raise HsgprofError(f"--format {args.format!r} is not accepted; choose one of {', '.join(FORMATS)}")
    if args.precision not in PRECISIONS:
        raise HsgprofError(f"--precision {args.precision!r} is not accepted; choose one of {', '.join(PRECISIONS)}")
    if args.device not in ("cpu", "cuda"):
        raise HsgprofError(f"--device {args.device!r} is not accepted; choose cpu or cuda")
    if args.batch is not None and args.batch <= 0:
        raise HsgprofError(f"--batch {args.batch} is not accepted; the batch must be >= 1")
    cuda = args.device == "cuda"
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 3)
    repeat = args.repeat if args.repeat is not None else (30 if cuda else 10)
    if warmup < 0 or repeat < 1:
        raise HsgprofError(f"--warmup {warmup} must be >= 0 and --repeat {repeat} >= 1")
    if len(set(args.targets)) != len(args.targets):
        raise HsgprofError("each target may be given once")
    reference = args.reference or (args.targets[-1] if len(args.targets) > 1 else None)
    if reference is not None and reference not in args.targets:
        raise HsgprofError(f"--reference {reference!r} is not one of the targets {args.targets}")
    if args.out:
        check_writable(args.out)
    import pandas as pd                             # heavy (torch, pandas): imported when the command runs
    import torch

    from hsgprof.adapters.hsgdet import GLOBAL_REASONING
    from hsgprof.memory.steps import step_functions
    from hsgprof.targets import load_target, parse_input
    from hsgprof.timing.latency import latency_rows

    first = load_target(args.targets[0], device="meta")
    shape = parse_input(args.input, first.default_input) if args.input else first.default_input
    if args.batch is not None:
        shape = (args.batch, *shape[1:])
    for t in args.targets:                 # a size a model rejects is a one-line error, before any timing
        tg = first if t == args.targets[0] else load_target(t, device="meta")
        step_functions(tg).check_input(tg.model, shape, torch.float32)
    rows = latency_rows(args.targets, shape, args.precision, args.device, warmup, repeat,
                        components=not args.no_components, reference=reference,
                        global_components=GLOBAL_REASONING)
    if args.out:
        write_results(args.out, "latency", rows, config={k: v for k, v in vars(args).items() if k != "func"})
    df = pd.DataFrame(rows)
    if args.format != "md":
        print(render_table(df, args.format))
        return 0
    print(f"{', '.join(args.targets)}: input {'x'.join(map(str, shape))}, {args.precision}, {df.device.iloc[0]}; "
          f"{warmup} warm-up + {repeat} timed runs; times in ms (median, IQR)")
    e2e = df[df.kind == "end_to_end"][["target", "median_ms", "iqr_ms", "throughput_img_s"]]
    print()
    print(render_table(e2e, "md"))
    ratios = df[df.kind == "ratio"]
    if len(ratios):
        print()
        print(render_table(ratios[["target", "component", "ratio_median_of_rounds", "ratio_q1", "ratio_q3",
                                   "ratio_of_medians"]], "md"))
    comp = df[df.kind.isin(["hooked_total", "component", "global_share"])]
    if len(comp):
        print()
        print(render_table(comp[["target", "component", "median_ms", "iqr_ms", "time_share", "flops_share"]], "md"))
        src = comp.flops_source.dropna()
        if len(src):
            print(f"\nFLOPs: {src.iloc[0]}")
    return 0
