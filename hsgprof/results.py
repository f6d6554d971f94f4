"""Tidy result files: one row per measurement, plus a provenance block, written atomically.

A results file is JSON: ``{"kind": ..., "provenance": {...}, "rows": [...], "meta": {...}}``.
Reports read these files and never recompute silently; a foreign or corrupt file is an error.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from hsgprof.errors import HsgprofError
from hsgprof.provenance import provenance as _provenance

SCHEMA = "hsgprof.results/1"


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same folder and a rename.

    A crash or an exception leaves either the old file or nothing, never half a file.
    """
    path = Path(path)
    if path.exists() and path.is_dir():
        raise HsgprofError(f"output path {str(path)!r} is a directory; give a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise HsgprofError(f"cannot write to {str(path)!r}: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Text version of :func:`atomic_write_bytes` (UTF-8)."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if hasattr(value, "item") and callable(value.item):
        try:
            return _jsonable(value.item())
        except (TypeError, ValueError):
            pass
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def results_json(kind: str, rows: Iterable[dict[str, Any]] | pd.DataFrame, config: dict[str, Any] | None = None,
                 meta: dict[str, Any] | None = None, command: str | None = None) -> str:
    """The text of a tidy results file (JSON) with provenance, as :func:`write_results` writes it."""
    if isinstance(rows, pd.DataFrame):
        rows = rows.to_dict(orient="records")
    doc = {"schema": SCHEMA, "kind": kind, "provenance": _provenance(config, command),
           "rows": list(rows), "meta": meta or {}}
    return json.dumps(_jsonable(doc), indent=2, allow_nan=False) + "\n"


def write_results(path: str | Path, kind: str, rows: Iterable[dict[str, Any]] | pd.DataFrame,
                  config: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
                  command: str | None = None) -> Path:
    """Write a tidy results file (JSON) with provenance; returns the path written."""
    return atomic_write_text(path, results_json(kind, rows, config, meta, command))


def check_writable(out: str | Path, flag: str = "--out") -> Path:
    """Fail before any work if ``out`` cannot be written (one line; nothing is created)."""
    out = Path(out)
    if out.is_dir():
        raise HsgprofError(f"{flag} {str(out)!r} is a folder; give a file path such as report.pdf")
    probe = out.parent if str(out.parent) else Path(".")
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise HsgprofError(f"{flag} {str(out)!r} is not writable (no write access to {str(probe)!r})")
    return out


def read_results(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """Read a results file written by :func:`write_results`; refuse corrupt or foreign files."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise HsgprofError(f"results file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise HsgprofError(f"results file {str(path)!r} is not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise HsgprofError(f"{str(path)!r} is not an hsgprof results file (expected schema {SCHEMA!r})")
    if kind is not None and doc.get("kind") != kind:
        raise HsgprofError(f"{str(path)!r} holds {doc.get('kind')!r} results, expected {kind!r}")
    return doc


def results_frame(path: str | Path, kind: str | None = None) -> pd.DataFrame:
    """The rows of a results file as a DataFrame."""
    return pd.DataFrame(read_results(path, kind)["rows"])


def render_table(df: pd.DataFrame, fmt: str) -> str:
    """Render a table as ``md``, ``csv``, ``json`` or ``latex`` text."""
    if fmt == "md":
        return df.to_markdown(index=False)
    if fmt == "csv":
        return df.to_csv(index=False)
    if fmt == "json":
        return df.to_json(orient="records", indent=2)
    if fmt == "latex":
        return df.to_latex(index=False)
    raise HsgprofError(f"unknown format {fmt!r}; accepted: md, csv, json, latex")

