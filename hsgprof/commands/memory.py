"""``hsgprof memory TARGET``: predicted memory of one inference or training step (no GPU needed)."""

from __future__ import annotations

import argparse
import json

from hsgprof.errors import HsgprofError
from hsgprof.memory.budget import CARD_TOTAL_BYTES, DEFAULT_CARD, MiB, card, predict_max_batch
from hsgprof.memory.estimate import DEVICES, estimate_memory
from hsgprof.memory.report import component_table, headline_table, phase_table, tidy_rows
from hsgprof.memory.steps import MODES, OPTIMIZERS, PRECISIONS
from hsgprof.results import _jsonable, render_table, write_results
from hsgprof.targets import load_target, parse_input

FORMATS = ("md", "csv", "json", "latex")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("memory", help="estimate one step's memory (params, grads, optimizer, activations, peak)",
                       description="Predict the memory of one inference or training step on fake tensors "
                                   "(no GPU, no real compute). Units: binary (MiB = 2^20 bytes).")
    p.add_argument("target", help="HSG-Det preset (e.g. hsgdet-l) or package.module:factory")
    p.add_argument("--input", default=None, help="BxCxHxW or HxW (default: the target's own, 1x3x1080x1920 for HSG-Det)")
    p.add_argument("--batch", type=int, default=None, help="batch size (overrides the B of --input)")
    p.add_argument("--mode", default="inference", help=f"one of {', '.join(MODES)} (default inference)")
    p.add_argument("--optimizer", default="adamw", help=f"training optimizer: {', '.join(OPTIMIZERS)} (default adamw)")
    p.add_argument("--precision", default="fp32", help=f"one of {', '.join(PRECISIONS)} (default fp32)")
    p.add_argument("--device", default="cuda", help="device to predict: cuda (allocator model) or cpu (default cuda)")
    p.add_argument("--format", default="md", help=f"one of {', '.join(FORMATS)} (default md)")
    p.add_argument("--max-batch", type=int, default=None, metavar="N",
                   help="also predict the largest batch (up to N) that fits the card below")
    p.add_argument("--card", default=DEFAULT_CARD, help=f"card for --max-batch: {', '.join(CARD_TOTAL_BYTES)}")
    p.add_argument("--context-mib", type=float, default=None,
                   help="memory the CUDA context takes on that card, MiB (default 512)")
    p.add_argument("--out", default=None, help="also write a tidy results file (JSON with provenance)")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> tuple[int, int, int, int]:
    if args.format not in FORMATS:
        raise HsgprofError(f"--format {args.format!r} is not accepted; choose one of {', '.join(FORMATS)}")
    if args.mode not in MODES:
        raise HsgprofError(f"--mode {args.mode!r} is not accepted; choose one of {', '.join(MODES)}")
    if args.precision not in PRECISIONS:
        raise HsgprofError(f"--precision {args.precision!r} is not accepted; choose one of {', '.join(PRECISIONS)}")
    if args.optimizer not in OPTIMIZERS:
        raise HsgprofError(f"--optimizer {args.optimizer!r} is not accepted; choose one of {', '.join(OPTIMIZERS)}")
    if args.device not in DEVICES:
        raise HsgprofError(f"--device {args.device!r} is not accepted; choose one of {', '.join(DEVICES)}")
    if args.batch is not None and args.batch <= 0:
        raise HsgprofError(f"--batch {args.batch} is not accepted; the batch must be >= 1")
    if args.max_batch is not None and args.max_batch <= 0:
        raise HsgprofError(f"--max-batch {args.max_batch} is not accepted; it must be >= 1")
    if args.context_mib is not None and args.context_mib < 0:
        raise HsgprofError(f"--context-mib {args.context_mib} is not accepted; it must be >= 0")
    default = load_target(args.target, device="meta").default_input
    shape = parse_input(args.input, default) if args.input else default
    if args.batch is not None:
        shape = (args.batch, *shape[1:])
    return shape


def run(args: argparse.Namespace) -> int:
    shape = _check(args)
    est = estimate_memory(args.target, shape, mode=args.mode, optimizer=args.optimizer,
                          precision=args.precision, device=args.device)
    summary = est.summary()
    budget = None
    if args.max_batch is not None:
        c = card(args.card, None if args.context_mib is None else int(args.context_mib * MiB))
        res, _ = predict_max_batch(args.target, shape[2:], args.mode, args.precision, c.usable_bytes,
                                   args.optimizer, args.max_batch)
        budget = {**c.describe(), **res.row(), "input_hw": f"{shape[2]}x{shape[3]}"}
        summary["max_batch"] = budget
    if args.out:
        rows = tidy_rows(est)
        if budget:
            rows.append({"section": "budget", "name": "max_batch", **{k: v for k, v in budget.items()}})
        write_results(args.out, "memory-estimate", rows, config={k: v for k, v in vars(args).items() if k != "func"})
    if args.format == "json":
        print(json.dumps(_jsonable(summary), indent=2))
        return 0
    if args.format in ("csv", "latex"):
        import pandas as pd

        print(render_table(pd.DataFrame(tidy_rows(est)), args.format))
        return 0
    desc = (f"{est.target} {est.mode} ({'optimizer ' + str(est.optimizer) + ', ' if est.mode == 'train' else ''}"
            f"{est.precision}), input {'x'.join(map(str, est.input_shape))}, predicted for {est.device}; "
            f"memory in binary units (1 MiB = 2^20 B); estimate took {est.elapsed_s:.1f} s")
    print(desc)
    print()
    print(render_table(headline_table(est), "md"))
    print()
    print("Per phase (peaks are of a step after warm-up):")
    print(render_table(phase_table(est), "md"))
    print()
    print("Per component:")
    print(render_table(component_table(est), "md"))
    if budget:
        print()
        print(f"Largest batch predicted to fit {budget['card']} ({budget['usable_GiB']} GiB usable after "
              f"{budget['context_bytes'] / MiB:.0f} MiB context) at {budget['input_hw']}: "
              f"{budget['max_batch']}{' (search cap)' if budget['capped'] else ''}; "
              f"first batch predicted not to fit: {budget['first_failing_batch']}")
    for note in est.notes:
        print(f"note: {note}")
    return 0
