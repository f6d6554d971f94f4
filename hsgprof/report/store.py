"""The results a report is built from: every hsgprof results file under some folders, by kind.

CPU-side results come from the report's results folder; GPU results from the newest committed
measurement folder per device under ``reports/measurements/``. Every ``*.json`` in those folders must
be an hsgprof results file: a corrupt or foreign one is an error (a report never silently skips
an input).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsgprof.provenance import REPO_ROOT
from hsgprof.results import read_results


_FOLDER = re.compile(r"^(.+)-(\d{4}-\d{2}-\d{2})$")


@dataclass
class ResultsStore:
    """Results documents by kind; ``gpu`` holds those from GPU measurement folders."""

    cpu: dict[str, dict[str, Any]] = field(default_factory=dict)
    gpu: dict[str, dict[str, Any]] = field(default_factory=dict)
    paths: dict[int, Path] = field(default_factory=dict)      # id(doc) -> the file it came from
    results_dir: Path | None = None                           # the CPU-side results folder (figures/)

    def get(self, kind: str, prefer_gpu: bool = False) -> dict[str, Any] | None:
        if prefer_gpu and kind in self.gpu:
            return self.gpu[kind]
        return self.cpu.get(kind) or (self.gpu.get(kind) if prefer_gpu else None)

    def path_of(self, doc: dict[str, Any]) -> str:
        """The file a document came from, relative to the repository when inside it."""
        path = self.paths.get(id(doc))
        if path is None:
            return "?"
        try:
            return str(path.resolve().relative_to(REPO_ROOT))
        except ValueError:
            return str(path)

    def add_folder(self, folder: Path, gpu: bool = False) -> None:
        """Load every ``*.json`` results file in ``folder`` and its sub-folders (newest per kind wins)."""
        target = self.gpu if gpu else self.cpu
        for path in sorted(Path(folder).rglob("*.json")):
            if any(part.startswith(".") for part in path.relative_to(folder).parts):
                continue                                   # the stage cache index, hidden caches
            doc = read_results(path)
            old = target.get(doc["kind"])
            if old is None or doc["provenance"]["date"] >= old["provenance"]["date"]:
                target[doc["kind"]] = doc
                self.paths[id(doc)] = path


def newest_gpu_folders(root: Path) -> dict[str, Path]:
    """For each device, the newest measurement folder ``<gpu-slug>-<YYYY-MM-DD>`` under ``root``."""
    newest: dict[str, Path] = {}
    for folder in sorted(p for p in Path(root).iterdir() if p.is_dir()):
        match = _FOLDER.match(folder.name)
        if match and (match[1] not in newest or folder.name > newest[match[1]].name):
            newest[match[1]] = folder
    return newest


def load_store(results_dir: Path, measurements_dir: Path | None) -> ResultsStore:
    store = ResultsStore(results_dir=Path(results_dir))
    if Path(results_dir).is_dir():
        store.add_folder(results_dir)
    if measurements_dir is not None and Path(measurements_dir).is_dir():
        for folder in newest_gpu_folders(measurements_dir).values():
            store.add_folder(folder, gpu=True)
    return store
