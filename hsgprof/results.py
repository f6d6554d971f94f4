"""Tidy result files: one row per measurement, plus a provenance block, written atomically.

A results file is JSON: ``{"kind": ..., "provenance": {...}, "rows": [...], "meta": {...}}``.
Reports read these files and never recompute silently; a foreign or corrupt file is an error.
:func:`check_writable` is what every command with an output path calls before it does any work.
This module imports pandas only inside the functions that need it (the CLI imports it for ``--help``).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from hsgprof.errors import HsgprofError
from hsgprof.provenance import provenance as _provenance

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

SCHEMA = "hsgprof.results/1"


def check_writable(path: str | Path, flag: str = "--out", folder: bool = False) -> Path:
    """Raise a one-line :class:`HsgprofError` now if ``path`` could not be written later.

    Called before any stage or measurement runs, so a bad output path fails in a second, not
    after the work. ``folder=False``: ``path`` is a file to be written (it must not be a folder);
    ``folder=True``: a folder to be created or filled (it must not be a file). The deepest part
    of the path that exists must be a folder in which a file can really be created: it is probed
    by creating and removing a temporary file, because permission bits alone pass a read-only
    mount, ``/proc`` or any folder when running as root. Nothing is left behind and no folder
    is created. ``flag`` names the option in the message. Returns ``Path(path)``.
    """
    path = Path(path)
    if not str(path) or "\0" in str(path):
        raise HsgprofError(f"{flag} {str(path)!r} is not a valid path")
    probe = path.parent
    try:                                          # OSError only: an HsgprofError raised here passes through
        if path.is_dir() and not folder:
            raise HsgprofError(f"{flag} {str(path)!r} is a folder; give a file path")
        if path.exists() and not path.is_dir() and folder:
            raise HsgprofError(f"{flag} {str(path)!r} is a file; give a folder")
        probe = path if (folder and path.is_dir()) else path.parent
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir():
            raise HsgprofError(f"{flag} {str(path)!r} is not writable: {str(probe)!r} is a file, not a folder")
        fd, tmp = tempfile.mkstemp(dir=probe, prefix=".hsgprof-probe-")
    except OSError as exc:
        raise HsgprofError(f"{flag} {str(path)!r} is not writable: cannot create a file in {str(probe)!r} "
                           f"({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(tmp)
    return path


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
        os.chmod(tmp, 0o666 & ~_umask())          # mkstemp makes 0600; give the file what open() would
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process's umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
    if hasattr(rows, "to_dict") and hasattr(rows, "columns"):          # a DataFrame (pandas is not imported here)
        rows = rows.to_dict(orient="records")
    doc = {"schema": SCHEMA, "kind": kind, "provenance": _provenance(config, command),
           "rows": list(rows), "meta": meta or {}}
    return json.dumps(_jsonable(doc), indent=2, allow_nan=False) + "\n"


def write_results(path: str | Path, kind: str, rows: Iterable[dict[str, Any]] | pd.DataFrame,
                  config: dict[str, Any] | None = None, meta: dict[str, Any] | None = None,
                  command: str | None = None) -> Path:
    """Write a tidy results file (JSON) with provenance; returns the path written."""
    return atomic_write_text(path, results_json(kind, rows, config, meta, command))


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
    import pandas as pd

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

