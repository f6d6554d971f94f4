"""The notebooks run headless (nbclient) in quick mode, each under 2 minutes as a whole: the
experiment notebooks both on the smoke results and on the committed quick results they read by
default (QUICK = True, no environment override)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
EXPERIMENT_NOTEBOOKS = ("entropy_theorem.ipynb", "occlusion_corollary.ipynb", "stability_convergence.ipynb",
                        "dense_scenes_nms.ipynb")
TABLE_NOTEBOOKS = ("flops_params_walkthrough.ipynb", "memory_walkthrough.ipynb")
QUICK_RESULTS = NOTEBOOKS.parent / "reports" / "results" / "experiments-quick"
NOTEBOOK_LIMIT_S = 120.0          # "in quick mode, under 2 minutes each": the whole notebook, kernel start included


@pytest.fixture(scope="session")
def smoke_folder(tmp_path_factory):
    """The smoke preset's results (shared run cache with test_experiments.py: trained once per session)."""
    from hsgprof.experiments import get_preset, run_experiment

    base = tmp_path_factory.getbasetemp()
    out = base / "experiments-smoke"
    if not (out / "experiments_summary.json").exists():
        run_experiment(get_preset("smoke"), out, base / "experiments-cache", progress=False)
    return out


def _execute(name: str) -> nbformat.NotebookNode:
    book = nbformat.read(NOTEBOOKS / name, as_version=4)
    params = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert params and "QUICK = True" in params[0].source
    client = nbclient.NotebookClient(book, timeout=int(NOTEBOOK_LIMIT_S), kernel_name="python3",
                                     resources={"metadata": {"path": str(NOTEBOOKS.parent)}})
    t0 = time.perf_counter()
    client.execute()              # at most 120 s per cell ...
    wall = time.perf_counter() - t0
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert wall < NOTEBOOK_LIMIT_S, f"{name} took {wall:.0f} s in quick mode (limit {NOTEBOOK_LIMIT_S:.0f} s)"
    return book                   # ... and under 120 s as a whole


@pytest.mark.parametrize("name", EXPERIMENT_NOTEBOOKS)
def test_notebook_runs_in_quick_mode(name, smoke_folder, monkeypatch):
    monkeypatch.setenv("HSGPROF_EXPERIMENTS_DIR", str(smoke_folder))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = _execute(name)
    text = "".join(o.get("text", "") for c in book.cells for o in c.get("outputs", []))
    assert "experiments-smoke" in text            # it read the results it was pointed at


@pytest.mark.parametrize("name", EXPERIMENT_NOTEBOOKS)
def test_notebook_reads_the_committed_quick_results(name, monkeypatch):
    """The default path: QUICK = True and no HSGPROF_EXPERIMENTS_DIR, so the notebook reads
    reports/results/experiments-quick (committed; were it missing, the notebook would train)."""
    assert (QUICK_RESULTS / "experiments_summary.json").exists(), "the committed quick results are missing"
    monkeypatch.delenv("HSGPROF_EXPERIMENTS_DIR", raising=False)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = _execute(name)
    text = "".join(o.get("text", "") for c in book.cells for o in c.get("outputs", []))
    assert f"results: {QUICK_RESULTS}" in text and "config quick" in text


@pytest.mark.parametrize("name", TABLE_NOTEBOOKS)
def test_table_walkthrough_runs_in_quick_mode(name, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    book = _execute(name)
    html = "".join(str(o.get("data", {})) for c in book.cells for o in c.get("outputs", []))
    assert "P3 stage" in html                     # the per-component table was displayed


def test_notebooks_hold_no_logic():
    """Code cells only call library functions: no def/class/loops (what a test cannot reach)."""
    for name in EXPERIMENT_NOTEBOOKS + TABLE_NOTEBOOKS:
        book = nbformat.read(NOTEBOOKS / name, as_version=4)
        for cell in book.cells:
            if cell.cell_type == "code":
                for token in ("def ", "class ", "for ", "while ", "lambda"):
                    assert token not in cell.source, (name, cell.source)
