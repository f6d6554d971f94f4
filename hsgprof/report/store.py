"""The results a report is built from: hsgprof results files, by kind.

CPU-side results come from the report's results folder: in the default mode only the files the
profile's stages wrote or reused (see :mod:`hsgprof.report.stages`), so a smoke report never shows
a quick run's memory table and a quick report never mixes in a full run's experiments; with
``--from-results DIR`` every ``*.json`` in DIR. GPU results come from the newest committed
measurement folder per device under ``reports/measurements/``. Every file read must be an hsgprof
results file: a corrupt or foreign one is an error (a report never silently skips an input).
Verdict tables (kinds ``report.verdicts`` and ``verify.verdicts``) are outputs, never read back as inputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from hsgprof.provenance import REPO_ROOT
from hsgprof.results import read_results

_FOLDER = re.compile(r"^(.+)-(\d{4}-\d{2}-\d{2})$")
OUTPUT_KINDS = ("report.verdicts", "verify.verdicts")      # verdict tables: outputs, never an input


@dataclass
class ResultsStore:
    """Results documents by kind; ``gpu`` holds those from GPU measurement folders."""

    cpu: dict[str, dict[str, Any]] = field(default_factory=dict)
    gpu: dict[str, dict[str, Any]] = field(default_factory=dict)
    paths: dict[int, Path] = field(default_factory=dict)      # id(doc) -> the file it came from
    results_dir: Path | None = None                           # the CPU-side results folder (figures/)
    files: set[Path] | None = None                            # the CPU-side files allowed; None: all
    gpu_folders: list[Path] = field(default_factory=list)     # the GPU measurement folders read
    subject: str = "hsgdet-l"                                 # the preset the claims are judged on
    yolo_l: str | None = None                                 # its YOLO-l reference (None: its family's)

    def get(self, kind: str, prefer_gpu: bool = False) -> dict[str, Any] | None:
        if prefer_gpu and kind in self.gpu:
            return self.gpu[kind]
        return self.cpu.get(kind) or (self.gpu.get(kind) if prefer_gpu else None)

    def path_of(self, doc: dict[str, Any]) -> str:
        """The file a document came from, relative to the repository when inside it."""
        path = self.paths.get(id(doc))
        return "?" if path is None else relative(path)

    def has_file(self, path: Path) -> bool:
        """Whether this report may use ``path`` (a figure, say) from the results folder."""
        return Path(path).is_file() and (self.files is None or Path(path).resolve() in self.files)

    def add_folder(self, folder: Path, gpu: bool = False) -> None:
        """Load every ``*.json`` results file in ``folder`` and its sub-folders (newest per kind wins)."""
        self._add((path for path in sorted(Path(folder).rglob("*.json"))
                   if not any(part.startswith(".") for part in path.relative_to(folder).parts)), gpu)

    def add_files(self, paths: Iterable[Path]) -> None:
        """Load exactly these files (the ``*.json`` among them) and allow only them, and their figures."""
        paths = [Path(p) for p in paths]
        self.files = (self.files or set()) | {p.resolve() for p in paths}
        self._add(sorted(p for p in paths if p.suffix == ".json"), gpu=False)

    def _add(self, paths: Iterable[Path], gpu: bool) -> None:
        target = self.gpu if gpu else self.cpu
        for path in paths:
            doc = read_results(path)
            if doc["kind"] in OUTPUT_KINDS:
                continue
            old = target.get(doc["kind"])
            if old is None or doc["provenance"]["date"] >= old["provenance"]["date"]:
                target[doc["kind"]] = doc
                self.paths[id(doc)] = path

    def add_measurements(self, measurements_dir: Path | None) -> None:
        """Load the newest GPU measurement folder per device (checked before any analysis runs)."""
        if measurements_dir is None or not Path(measurements_dir).is_dir():
            return
        for folder in newest_gpu_folders(measurements_dir).values():
            self.add_folder(folder, gpu=True)
            self.gpu_folders.append(folder)


def relative(path: Path) -> str:
    """``path`` relative to the repository when inside it (a reader's clone, not ours)."""
    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def newest_gpu_folders(root: Path) -> dict[str, Path]:
    """For each device, the newest measurement folder ``<gpu-slug>-<YYYY-MM-DD>`` under ``root``."""
    newest: dict[str, Path] = {}
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        match = _FOLDER.match(folder.name)
        if match and (match[1] not in newest or folder.name > newest[match[1]].name):
            newest[match[1]] = folder
    return newest


def load_store(results_dir: Path, measurements_dir: Path | None,
               files: Iterable[Path] | None = None) -> ResultsStore:
    """The store of a report: GPU folders, then ``files`` (default mode) or all of ``results_dir``."""
    store = ResultsStore(results_dir=Path(results_dir))
    store.add_measurements(measurements_dir)
    if files is not None:
        store.add_files(files)
    elif Path(results_dir).is_dir():
        store.add_folder(results_dir)
    return store
