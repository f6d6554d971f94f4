"""``hsgprof latency TARGET [TARGET ...]``: end-to-end and per-component latency, eager and compiled, CPU or CUDA."""

from __future__ import annotations

import argparse

from hsgprof.errors import HsgprofError

FORMATS = ("md", "csv", "json", "latex")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("latency", help="time inference end to end and per component, eager and compiled (median, IQR)",
                       description="Time the network's inference call (no post-processing) on CPU or CUDA: "
                                   "median and IQR over repeated runs after warm-up; several targets (and paths: "
                                   "eager, compiled, channels-last) are timed side by side in interleaved rounds.")
    p.add_argument("targets", nargs="+", help="HSG-Det presets (hsgdet-l, hsgdet-l-grid, yolov8l-ref, ...) "
                                              "or package.module:factory")
    p.add_argument("--input", default=None, help="BxCxHxW or HxW (default: the first target's own)")
    p.add_argument("--batch", type=int, default=None, help="batch size (overrides the B of --input)")
    p.add_argument("--precision", default="fp32", help="one of fp32, bf16, fp16, fp16-amp, bf16-amp (default fp32)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--compile", default="none",
                   help="also time each target under torch.compile: none, default, reduce-overhead or "
                        "max-autotune (default none; reduce-overhead and max-autotune need CUDA)")
    p.add_argument("--channels-last", action="store_true", help="also time each target with channels-last tensors")
    p.add_argument("--profile", action="store_true",
                   help="add the per-component profiler table: kernel time, FLOPs, achieved TFLOP/s and fraction "
                        "of a matmul peak measured in the same run (with --compile: also compiled, split at "
                        "component boundaries)")
    p.add_argument("--warmup", type=int, default=None, help="warm-up runs per target (default 3 cpu, 10 cuda)")
    p.add_argument("--repeat", type=int, default=None, help="timed runs per target (default 10 cpu, 30 cuda)")
    p.add_argument("--reference", default=None, help="target the others are divided by (default: the last one "
                                                     "when several are given)")
    p.add_argument("--no-components", action="store_true", help="skip the per-component pass")
    p.add_argument("--format", default="md", help=f"one of {', '.join(FORMATS)} (default md)")
    p.add_argument("--out", default=None, help="also write a tidy results file (JSON with provenance)")
    p.set_defaults(func=run)


def _check(args: argparse.Namespace) -> tuple[int, int, str | None]:
    from hsgprof.memory.choices import PRECISIONS
    from hsgprof.results import check_writable
    from hsgprof.timing.compiled import check_compile_mode

    if args.format not in FORMATS:
        raise HsgprofError(f"--format {args.format!r} is not accepted; choose one of {', '.join(FORMATS)}")
    if args.precision not in PRECISIONS:
        raise HsgprofError(f"--precision {args.precision!r} is not accepted; choose one of {', '.join(PRECISIONS)}")
    if args.device not in ("cpu", "cuda"):
        raise HsgprofError(f"--device {args.device!r} is not accepted; choose cpu or cuda")
    check_compile_mode(args.compile, args.device)
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
    return warmup, repeat, reference


def run(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch

    from hsgprof.adapters.hsgdet import GLOBAL_REASONING
    from hsgprof.memory.steps import step_functions
    from hsgprof.results import render_table, write_results
    from hsgprof.targets import load_target, parse_input
    from hsgprof.timing.latency import latency_rows
    from hsgprof.timing.profile import profile_rows

    warmup, repeat, reference = _check(args)
    first = load_target(args.targets[0], device="meta")
    shape = parse_input(args.input, first.default_input) if args.input else first.default_input
    if args.batch is not None:
        shape = (args.batch, *shape[1:])
    for t in args.targets:                 # a size a model rejects is a one-line error, before any timing
        tg = first if t == args.targets[0] else load_target(t, device="meta")
        step_functions(tg).check_input(tg.model, shape, torch.float32)
    rows = latency_rows(args.targets, shape, args.precision, args.device, warmup, repeat,
                        components=not args.no_components, reference=reference, global_components=GLOBAL_REASONING,
                        compile=args.compile, channels_last=args.channels_last, attention=True)
    if args.profile:
        rows += profile_rows(args.targets, shape, args.precision, args.device, compile=args.compile,
                             global_components=GLOBAL_REASONING, warmup=max(warmup // 2, 1), repeat=repeat)
    if args.out:
        write_results(args.out, "latency", rows, config={k: v for k, v in vars(args).items() if k != "func"})
    df = pd.DataFrame(rows)
    if args.format != "md":
        print(render_table(df.drop(columns=[c for c in ("outputs", "sdpa") if c in df]), args.format))
        return 0
    print(f"{', '.join(args.targets)}: input {'x'.join(map(str, shape))}, {args.precision}, {df.device.iloc[0]}; "
          f"{warmup} warm-up + {repeat} timed runs; times in ms (median, IQR)")

    def table(kinds: tuple[str, ...], cols: list[str], note: str = "") -> None:
        part = df[df.kind.isin(kinds)]
        if len(part):
            print()
            if note:
                print(note)
            print(render_table(part[[c for c in cols if c in part]], "md"))

    table(("end_to_end",), ["target", "path", "memory_format", "median_ms", "iqr_ms", "throughput_img_s",
                            "compile_s"])
    table(("ratio", "vs_eager"), ["target", "path", "memory_format", "component", "ratio_median_of_rounds",
                                  "ratio_q1", "ratio_q3", "ratio_of_medians"])
    table(("compile",), ["target", "path", "compile_s", "graphs", "compiled_regions", "graph_breaks", "outputs_equal", "max_abs_diff",
                         "max_rel_diff", "tolerance"],
          "Compilation (compile_s: the first call; outputs_equal: max|compiled - eager| <= tolerance x max|eager| "
          "for every output):")
    table(("attention",), ["target", "path", "memory_format", "sdpa_text"], "Attention kernels (calls per forward):")
    table(("hooked_total", "component", "global_share"), ["target", "path", "component", "median_ms", "iqr_ms",
                                                          "time_share", "flops_share"])
    table(("peak", "profile_total", "profile_component"),
          ["target", "path", "component", "device_ms", "host_ms", "kernels", "flops", "achieved_tflops",
           "fraction_of_peak", "tflops"],
          "Profiler: device time per component (CUDA: kernel time; CPU: the range's time), achieved TFLOP/s and "
          "fraction of the measured matmul peak:")
    src = df.flops_source.dropna() if "flops_source" in df else []
    if len(src):
        print(f"\nFLOPs: {src.iloc[0]}")
    return 0
