"""``hsgprof report``: every seed claim beside its measurement and verdict, as PDF and Markdown."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="build the verdict report (PDF + Markdown) from the analyses' results",
                       description="Run (or reuse cached) analyses, judge every seed claim, write the report.")
    p.add_argument("--out", type=Path, default=None, help="output PDF path (default reports/hsgdet-report.pdf); "
                                                          "the Markdown twin and NAME.verdicts.json go beside it")
    p.add_argument("--format", default="pdf", help="pdf (PDF + Markdown) or md (Markdown only)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--full", action="store_true",
                      help="full analyses and the full experiment set (sized for a GPU: add --device cuda)")
    mode.add_argument("--smoke", action="store_true", help="test-sized analyses (seconds; for tests)")
    p.add_argument("--from-results", type=Path, default=None,
                   help="build from every results file (*.json) in this folder; run no analysis")
    p.add_argument("--results-dir", type=Path, default=None,
                   help="where analyses write and cache results (default reports/results)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                   help="where the theory experiments train (default cpu); counting and the memory estimate "
                        "need no GPU, GPU sections come from reports/measurements/")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from hsgprof.report.build import DEFAULT_OUT, DEFAULT_RESULTS, build_report

    profile = "full" if args.full else "smoke" if args.smoke else "quick"
    bars: list[tqdm] = []                  # made at the first stage, so an error before it stays one line

    def progress(message: str) -> None:
        if not bars:
            bars.append(tqdm(desc="hsgprof report", unit="stage", leave=False))
        bars[0].set_postfix_str(message)
        bars[0].update(1)
        tqdm.write(f"[report] {message}")

    try:
        written = build_report(args.out or DEFAULT_OUT, args.format, profile, args.results_dir or DEFAULT_RESULTS,
                               args.from_results, progress=progress, device=args.device)
    finally:
        for bar in bars:
            bar.close()
    for kind, path in written.items():
        print(f"{kind}: {path}")
    return 0
