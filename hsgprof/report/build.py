"""Build the report: run or reuse the analyses, judge every claim, write PDF and Markdown atomically."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from hsgprof.claims.evaluate import evaluate
from hsgprof.errors import HsgprofError
from hsgprof.provenance import REPO_ROOT, provenance
from hsgprof.results import atomic_write_bytes, atomic_write_text, write_results

from . import sections
from .document import Document
from .render import to_markdown, to_pdf
from .stages import PROFILES, run_stages
from .store import load_store

FORMATS = ("pdf", "md")
DEFAULT_OUT = REPO_ROOT / "reports" / "hsgdet-report.pdf"
DEFAULT_RESULTS = REPO_ROOT / "reports" / "results"
MEASUREMENTS = REPO_ROOT / "reports" / "measurements"


def compose(store, profile: str) -> tuple[Document, "pd.DataFrame"]:
    verdicts = evaluate(store)
    doc = Document("HSG-Det: the seed's claims, measured")
    doc.add(*sections.verdict_section(verdicts, store, profile),
            *sections.provenance_section(store, provenance()),
            *sections.counting_section(store),
            *sections.memory_section(store),
            *sections.latency_section(store),
            *sections.info_section(store),
            *sections.experiments_section(store),
            *sections.method_section())
    return doc, verdicts


def build_report(out: Path = DEFAULT_OUT, fmt: str = "pdf", profile: str = "quick",
                 results_dir: Path = DEFAULT_RESULTS, from_results: Path | None = None,
                 measurements_dir: Path | None = MEASUREMENTS,
                 progress: Callable[[str], None] | None = None) -> dict[str, Path]:
    """Write the report (and its Markdown twin) and the verdict table; returns the paths written."""
    if fmt not in FORMATS:
        raise HsgprofError(f"--format {fmt!r} is not accepted; choose one of {', '.join(FORMATS)}")
    if profile not in PROFILES:
        raise HsgprofError(f"profile {profile!r} is not accepted; choose one of {', '.join(PROFILES)}")
    out = Path(out)
    _check_writable(out)
    if from_results is not None:
        if not Path(from_results).is_dir():
            raise HsgprofError(f"--from-results {str(from_results)!r} is not a folder of results files")
        results_dir = Path(from_results)
    else:
        run_stages(Path(results_dir), profile, progress=progress)
    store = load_store(Path(results_dir), measurements_dir)
    doc, verdicts = compose(store, profile)
    pdf_path, md_path = out.with_suffix(".pdf"), out.with_suffix(".md")
    written = {"verdicts": write_results(Path(results_dir) / "report_verdicts.json", "report.verdicts", verdicts,
                                         config={"profile": profile})}
    md = to_markdown(doc)
    if fmt == "pdf":
        written["pdf"] = atomic_write_bytes(pdf_path, to_pdf(doc))
    written["md"] = atomic_write_text(md_path, md)
    return written


def _check_writable(out: Path) -> None:
    """Fail before any work if the output cannot be written (one line, nothing half-written)."""
    parent = out.parent if str(out.parent) else Path(".")
    if out.is_dir():
        raise HsgprofError(f"--out {str(out)!r} is a folder; give a file path such as report.pdf")
    probe = parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not _can_write(probe):
        raise HsgprofError(f"--out {str(out)!r} is not writable (no write access to {str(probe)!r})")


def _can_write(folder: Path) -> bool:
    import os

    return os.access(folder, os.W_OK | os.X_OK)
