"""``hsgprof memory TARGET``: predicted memory of one inference or training step (no GPU needed)."""

from __future__ import annotations

import argparse
import json

from hsgprof.errors import HsgprofError
from hsgprof.memory.cards import CARDS, DEFAULT_CARD, DEFAULT_CONTEXT_BYTES, MiB, card, card_table
from hsgprof.memory.choices import DEVICES, MODES, OPTIMIZERS, PRECISIONS
from hsgprof.results import _jsonable, check_writable, render_table

FORMATS = ("md", "csv", "json", "latex")
SEARCH_CAP = 64          # the largest batch tried when --card / --context-mib come without --max-batch


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("memory", help="estimate one step's memory (params, grads, optimizer, activations, peak)",
                       description="Predict the memory of one inference or training step on fake tensors "
                                   "(no GPU, no real compute). Units: binary (MiB = 2^20 bytes). Per-component "
                                   "rows are the target's components, or its top-level modules for a model "
                                   "without an adapter.")
    p.add_argument("target", nargs="?", help="HSG-Det preset (e.g. hsgdet-l) or package.module:factory")
    p.add_argument("--input", default=None, help="BxCxHxW or HxW (default: the target's own, 1x3x1080x1920 for HSG-Det)")
    p.add_argument("--batch", type=int, default=None, help="batch size (overrides the B of --input)")
    p.add_argument("--mode", default="inference", help=f"one of {', '.join(MODES)} (default inference)")
    p.add_argument("--optimizer", default="adamw", help=f"training optimizer: {', '.join(OPTIMIZERS)} (default adamw)")
    p.add_argument("--precision", default="fp32", help=f"one of {', '.join(PRECISIONS)} (default fp32)")
    p.add_argument("--device", default="cuda", help="device to predict: cuda (allocator model) or cpu (default cuda)")
    p.add_argument("--format", default="md", help=f"one of {', '.join(FORMATS)} (default md)")
    p.add_argument("--max-batch", type=int, default=None, metavar="N",
                   help="also predict the largest batch (up to N) that fits the card")
    p.add_argument("--card", default=None,
                   help=f"card for the largest-batch prediction: {', '.join(CARDS)} (default {DEFAULT_CARD}; "
                        f"--cards lists each card's memory and its source). Given without --max-batch, the "
                        f"search runs up to batch {SEARCH_CAP}")
    p.add_argument("--context-mib", type=float, default=None,
                   help="memory the CUDA context takes on that card, MiB (default 512); like --card, it "
                        f"starts the search (up to batch {SEARCH_CAP}) when given without --max-batch")
    p.add_argument("--cards", action="store_true", help="list the cards (memory, kind of figure, driver, source) "
                                                         "and exit; no TARGET needed")
    p.add_argument("--out", default=None, help="also write a tidy results file (JSON with provenance)")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> None:
    """Every flag checked (and the output path probed) before any model is built."""
    if args.target is None:
        raise HsgprofError("give a TARGET (an HSG-Det preset such as hsgdet-l, or package.module:factory), "
                           "or --cards to list the cards")
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
    if args.card is not None and args.card not in CARDS:
        raise HsgprofError(f"--card {args.card!r} is not accepted; choose one of {', '.join(CARDS)}")
    if args.out:
        check_writable(args.out)


def _budget_requested(args: argparse.Namespace) -> int | None:
    """The search cap: --max-batch, else SEARCH_CAP when --card or --context-mib asks for a card budget."""
    if args.max_batch is not None:
        return args.max_batch
    return SEARCH_CAP if (args.card is not None or args.context_mib is not None) else None


def _print_cards(fmt: str) -> int:
    if fmt not in FORMATS:
        raise HsgprofError(f"--format {fmt!r} is not accepted; choose one of {', '.join(FORMATS)}")
    import pandas as pd

    if fmt == "md":
        print("Cards: total memory as one published reading (kind cuda: cudaDeviceProp.totalGlobalMem, what "
              "torch's total_memory returns; nvidia-smi: larger than that; torch-oom: GiB with 2 decimals). "
              f"The allocator budget is total - context ({DEFAULT_CONTEXT_BYTES // MiB} MiB unless --context-mib).")
    print(render_table(pd.DataFrame(card_table()), fmt))
    return 0


def run(args: argparse.Namespace) -> int:
    if args.cards:
        return _print_cards(args.format)
    _check(args)
    cap = _budget_requested(args)
    c = card(args.card or DEFAULT_CARD, None if args.context_mib is None else int(args.context_mib * MiB)) \
        if cap is not None else None

    from hsgprof.memory.budget import predict_max_batch          # heavy (torch): imported when the command runs
    from hsgprof.memory.estimate import estimate_memory
    from hsgprof.memory.report import component_table, headline_table, phase_table, tidy_rows
    from hsgprof.results import write_results
    from hsgprof.targets import load_target, parse_input

    default = load_target(args.target, device="meta").default_input
    shape = parse_input(args.input, default) if args.input else default
    if args.batch is not None:
        shape = (args.batch, *shape[1:])
    est = estimate_memory(args.target, shape, mode=args.mode, optimizer=args.optimizer,
                          precision=args.precision, device=args.device)
    summary = est.summary()
    budget = None
    if c is not None:
        res, _ = predict_max_batch(args.target, shape[2:], args.mode, args.precision, c.usable_bytes,
                                   args.optimizer, cap)
        budget = {**c.describe(), **res.row(), "input_hw": f"{shape[2]}x{shape[3]}", "search_cap": cap,
                  "search_cap_from": "--max-batch" if args.max_batch is not None else "default"}
        summary["max_batch"] = budget
    if args.out:
        rows = tidy_rows(est)
        if budget:
            rows.append({"section": "budget", "name": "max_batch", **budget})
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
    print("Per component (the target's components, or its top-level modules):")
    print(render_table(component_table(est), "md"))
    if budget:
        spec = CARDS[budget["card"]]
        print()
        print(f"Largest batch predicted to fit {budget['card']} ({budget['usable_GiB']} GiB usable = "
              f"{budget['card_total_bytes']:,} B total - {budget['context_bytes'] / MiB:.0f} MiB context) at "
              f"{budget['input_hw']}: {budget['max_batch']}{' (search cap)' if budget['capped'] else ''}; "
              f"first batch predicted not to fit: {budget['first_failing_batch']}"
              + ("" if args.max_batch is not None else f" (searched up to batch {cap}; --max-batch N changes it)"))
        print(f"card total: {spec.reported} ({spec.kind}, {spec.device}, driver {spec.driver or 'not stated'}); "
              f"source: {spec.source}")
    for note in est.notes:
        print(f"note: {note}")
    return 0
