"""Build the report: run or reuse the analyses, judge every claim, write PDF and Markdown atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from hsgprof.claims.evaluate import evaluate
from hsgprof.errors import HsgprofError
from hsgprof.provenance import REPO_ROOT, provenance
from hsgprof.results import atomic_write_bytes, atomic_write_text, check_writable, write_results

from . import sections, summary, theory
from .document import Document
from .render import to_markdown, to_pdf
from .stages import PROFILES, STAGES, Stage, run_stages
from .store import ResultsStore, relative

FORMATS = ("pdf", "md")
DEVICES = ("cpu", "cuda")
DEFAULT_OUT = REPO_ROOT / "reports" / "hsgdet-report.pdf"
DEFAULT_RESULTS = REPO_ROOT / "reports" / "results"
MEASUREMENTS = REPO_ROOT / "reports" / "measurements"


def compose(store, profile: str, source: str = "",
            figures_dir: Path = Path("figures")) -> tuple[Document, "pd.DataFrame"]:
    """The report: the reader's first pages (summary.first_pages), then every section as an appendix.

    Headline figures are held in memory with paths under ``figures_dir`` (relative to the report).
    """
    verdicts = evaluate(store)
    run = provenance()
    doc = Document("HSG-Det: the seed's claims, measured")
    doc.add(*summary.first_pages(verdicts, store, profile, source, run, figures_dir),
            *summary.appendices([*sections.verdict_section(verdicts, store, profile),
                                 *sections.provenance_section(store, run),
                                 *sections.counting_section(store),
                                 *sections.readings_section(store),
                                 *sections.fit_section(store),
                                 *sections.memory_section(store),
                                 *sections.latency_section(store),
                                 *theory.info_section(store),
                                 *theory.experiments_section(store),
                                 *sections.method_section()]))
    return doc, verdicts


def verdicts_path(out: Path) -> Path:
    """Where the verdict table goes: beside the report, ``<name>.verdicts.json`` (never the input folder)."""
    out = Path(out)
    return out.with_name(f"{out.with_suffix('').name}.verdicts.json")


def build_report(out: Path = DEFAULT_OUT, fmt: str = "pdf", profile: str = "quick",
                 results_dir: Path = DEFAULT_RESULTS, from_results: Path | None = None,
                 measurements_dir: Path | None = MEASUREMENTS,
                 progress: Callable[[str], None] | None = None, device: str = "cpu",
                 stages: tuple[Stage, ...] = STAGES) -> dict[str, Path]:
    """Write the report (and its Markdown twin) and the verdict table beside it; returns the paths written.

    Default mode: run (or reuse) the profile's stages in ``results_dir`` and read only the files they
    produced. ``from_results``: read every results file in that folder and run nothing. Either way the
    newest GPU measurement folder per device under ``measurements_dir`` is read, and checked before
    any stage runs. Everything is rendered in memory before the first output file is replaced.
    """
    if fmt not in FORMATS:
        raise HsgprofError(f"--format {fmt!r} is not accepted; choose one of {', '.join(FORMATS)}")
    if profile not in PROFILES:
        raise HsgprofError(f"profile {profile!r} is not accepted; choose one of {', '.join(PROFILES)}")
    _check_device(device)
    out = Path(out)
    for path in (out, *output_paths(out, fmt).values()):         # every file this call writes, before any work
        check_writable(path, "--out")
    check_writable(figures_path(out), "--out", folder=True)       # and the folder its figures go to
    if from_results is None:
        check_writable(results_dir, "--results-dir", folder=True)
    store = ResultsStore()
    store.add_measurements(measurements_dir)                     # a bad GPU file fails before any stage
    if from_results is not None:
        if not Path(from_results).is_dir():
            raise HsgprofError(f"--from-results {str(from_results)!r} is not a folder of results files")
        store.results_dir = Path(from_results)
        store.add_folder(store.results_dir)
        source = f"every results file in {relative(store.results_dir)} (--from-results; no analysis run)"
    else:
        store.results_dir = Path(results_dir)
        produced = run_stages(store.results_dir, profile, stages, progress=progress, device=device)
        store.add_files(p for paths in produced.values() for p in paths)
        source = (f"the files the {profile} profile's stages ({', '.join(produced) or 'none'}) wrote or reused "
                  f"in {relative(store.results_dir)}")
    doc, verdicts = compose(store, profile, source, figures_path(out).relative_to(out.parent))
    md = to_markdown(doc, out.parent)
    pdf = to_pdf(doc) if fmt == "pdf" else None                  # a render failure replaces nothing
    paths = output_paths(out, fmt)
    written = {"verdicts": write_results(paths["verdicts"], "report.verdicts", verdicts,
                                         config={"profile": profile, "device": device,
                                                 "from_results": None if from_results is None
                                                 else relative(Path(from_results))})}
    if pdf is not None:
        written["pdf"] = atomic_write_bytes(paths["pdf"], pdf)
    figures = _write_figures(out, doc)
    if figures is not None:
        written["figures"] = figures
    written["md"] = atomic_write_text(paths["md"], md)
    return written


def output_paths(out: Path, fmt: str) -> dict[str, Path]:
    """The files a report to ``out`` writes: the PDF (format pdf), its Markdown twin, the verdict table."""
    out = Path(out)
    paths = {"pdf": out.with_suffix(".pdf")} if fmt == "pdf" else {}
    return {**paths, "md": out.with_suffix(".md"), "verdicts": verdicts_path(out)}


def figures_path(out: Path) -> Path:
    """Where the report's own figures go: beside it, ``<name>.figures/`` (the Markdown links to them)."""
    out = Path(out)
    return out.with_name(f"{out.with_suffix('').name}.figures")


def _write_figures(out: Path, doc: Document) -> Path | None:
    """Write the figures the report drew (each atomically) and return their folder (None: none drawn).

    PNGs an earlier report left in that folder are removed, so it holds exactly this report's figures.
    """
    folder = figures_path(out)
    keep = set()
    for fig in doc.drawn_figures():
        keep.add(atomic_write_bytes(out.parent / fig.path, fig.png).resolve())
    if folder.is_dir():
        for old in folder.glob("*.png"):
            if old.resolve() not in keep:
                old.unlink()
    return folder if keep else None


def _check_device(device: str) -> None:
    """``--device cuda`` needs CUDA here; refused before anything runs or is written."""
    if device not in DEVICES:
        raise HsgprofError(f"--device {device!r} is not accepted; choose one of {', '.join(DEVICES)}")
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise HsgprofError("--device cuda: CUDA is not available on this machine (torch "
                               f"{torch.__version__}); use --device cpu")
