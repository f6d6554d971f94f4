"""The theory experiments (issue 7): run the declared preset and print the verdict table.

Usage: python analyses/experiments_theory.py [quick|full|smoke] [OUT_DIR]
Results: reports/results/experiments-<preset>/experiments_*.json (tidy rows + provenance).
"""

from __future__ import annotations

import sys

from hsgprof.experiments import get_preset, run_experiment
from hsgprof.results import render_table, results_frame


def main(argv: list[str]) -> int:
    preset = argv[0] if argv else "quick"
    out = argv[1] if len(argv) > 1 else None
    paths = run_experiment(get_preset(preset), out, progress=True)
    summary = results_frame(paths["summary"], "experiments.summary")
    print(render_table(summary[["claim", "measurement", "value", "ci_low", "ci_high", "verdict"]].round(4), "md"))
    print(f"results: {paths['summary'].parent}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
