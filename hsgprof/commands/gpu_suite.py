"""``hsgprof gpu-suite``: every CUDA measurement in one time-boxed run (the work is in :mod:`hsgprof.gpu`)."""

from __future__ import annotations

import argparse

from hsgprof.errors import HsgprofError
from hsgprof.gpu import SECTIONS
from hsgprof.memory.cards import CARDS, DEFAULT_CARD


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gpu-suite", help="run every CUDA measurement (latency eager and compiled, per-component "
                                         "profile, memory, snapshot, 16 GB max batch)",
                       description="Run every CUDA measurement in one time-boxed command, most important first: "
                                   "eager latency, compiled latency (batch 1 fp16 AMP), the per-component profile, "
                                   "the other compiled configurations, memory, snapshot, 16 GB max batch.")
    p.add_argument("--out", default=None, help="output folder (default reports/measurements/<gpu>-<date>/)")
    p.add_argument("--quick", action="store_true", help="fewer configurations and repeats")
    p.add_argument("--max-minutes", type=float, default=5.5,
                   help="global time budget in minutes (default 5.5: with start-up, about 6 minutes in all)")
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated subset of {','.join(SECTIONS)} (default all)")
    p.add_argument("--input", default="1080x1920", help="HxW of every measurement (default 1080x1920)")
    p.add_argument("--card", default=DEFAULT_CARD, help=f"card to emulate: {', '.join(CARDS)} (default {DEFAULT_CARD}; "
                                                       "`hsgprof memory --cards` lists their memory and sources)")
    p.add_argument("--compile-mode", default="reduce-overhead",
                   help="torch.compile mode of the compiled steps: default, reduce-overhead or max-autotune "
                        "(default reduce-overhead: CUDA graphs remove launch overhead)")
    p.add_argument("--compile-estimate", type=float, default=45.0,
                   help="seconds the first compile is assumed to take, until one is measured (default 45)")
    p.add_argument("--resume", action="store_true",
                   help="continue a run in --out: keep its results and run only the steps it has not measured "
                        "(a second call after a run its time budget cut short)")
    p.add_argument("--jobs", type=int, default=None,
                   help="estimator worker processes (default: min(6, CPUs - 2); 0 runs them in this process)")
    p.add_argument("--device", default="cuda", help=argparse.SUPPRESS)       # tests run the timed steps on cpu
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from hsgprof.gpu.suite import Suite

    if args.device == "cuda" and not torch.cuda.is_available():
        raise HsgprofError("gpu-suite needs a CUDA GPU and none is available here (torch.cuda.is_available() "
                           "is False); the estimates run without one: `hsgprof memory TARGET --max-batch 64`")
    if args.jobs is not None and args.jobs < 0:
        raise HsgprofError(f"--jobs {args.jobs} is not accepted; it must be >= 0")
    return Suite(args).run()
