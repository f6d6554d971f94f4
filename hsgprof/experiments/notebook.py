"""What the experiment notebooks call first: find (or produce) the results they display.

Resolution order: an explicit folder; ``$HSGPROF_EXPERIMENTS_DIR``; the committed results
``reports/results/experiments-quick`` (or ``-full``) when present; else the preset is run
(``quick`` on CPU takes minutes; the run cache makes a second call instant).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from hsgprof.experiments.analysis import load_tables
from hsgprof.results import read_results


def results_folder(quick: bool = True, results_dir: str | Path | None = None) -> Path:
    """The folder of experiment results a notebook should read (running the preset if needed)."""
    if results_dir is None:
        results_dir = os.environ.get("HSGPROF_EXPERIMENTS_DIR")
    if results_dir is not None:
        return Path(results_dir)
    name = "quick" if quick else "full"
    folder = _repo_root() / "reports" / "results" / f"experiments-{name}"
    if not (folder / "experiments_summary.json").exists():
        from hsgprof.experiments import get_preset, run_experiment

        run_experiment(get_preset(name), folder, progress=False)
    return folder


def load(quick: bool = True, results_dir: str | Path | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """(tables, meta): every ``experiments_*.json`` table and the summary's meta + declared config."""
    folder = results_folder(quick, results_dir)
    doc = read_results(folder / "experiments_summary.json", "experiments.summary")
    meta = dict(doc["meta"], config=doc["provenance"]["config"], provenance=doc["provenance"], folder=str(folder))
    return load_tables(folder), meta


def _repo_root() -> Path:
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if (p / "pyproject.toml").exists() and (p / "hsgprof").is_dir():
            return p
    return here
