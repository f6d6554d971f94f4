"""The verdicts of a claims file as a report :class:`~hsgprof.report.document.Document` (PDF/Markdown).

Built from the report's own blocks and rendered by its renderers, so a ``hsgprof verify`` PDF
looks like the HSG-Det report and prints the same columns.
"""

from __future__ import annotations

import os
from typing import Any

import pandas as pd

from hsgprof.report.document import Document, Heading, Paragraph, Table
from hsgprof.report.sections import verdict_counts
from hsgprof.report.store import relative

from .verify import Verification, readings_matrix

VERDICT_COLUMNS = ["id", "statement", "claimed", "measured", "verdict", "reason", "device"]


def _setting(v: Verification) -> str:
    cf = v.claims
    model = cf.model.label()
    shape = "x".join(map(str, cf.input)) if cf.input else "the target's default"
    readings = (f" Readings: {', '.join(cf.reading_names())}; primary reading: {cf.primary_reading}; every claim is "
                "judged under each (see Readings)." if cf.readings else "")
    return (f"Claims file {relative(cf.path)}" + (f" ({cf.document})" if cf.document else "") +
            f". Model {model}, input {shape} ({cf.input_mode} mode).{readings}")


def verification_document(v: Verification, run_provenance: dict[str, Any]) -> Document:
    """Summary, the verdict table (primary reading), the readings matrix, what was measured, provenance."""
    cf = v.claims
    primary = v.primary
    doc = Document(cf.title or f"Claims of {cf.path.name}, verified")
    under = f" (primary reading {cf.primary_reading})" if cf.readings else ""
    doc.add(Paragraph(f"{verdict_counts(primary)}{under}. " + _setting(v) + " Each claim is judged by the tolerance "
                      "declared for it in the file; '[estimate]' marks a value from an estimator (the memory "
                      "estimator, FLOP counts standing in for a GPU time) rather than a direct measurement."),
            Heading("Verdicts"),
            Table(primary[VERDICT_COLUMNS], "Every claim beside its measurement and verdict" + under,
                  (1.4, 2.2, 1.2, 1.0, 1.0, 4.0, 1.3)))
    if cf.readings:
        doc.add(Heading("Readings"),
                Paragraph("The verdict of every claim under every reading (measured value in parentheses). Claims "
                          "with their own model are the same under every reading."),
                Table(readings_matrix(v.verdicts), "Claims × readings"))
    log = v.measurements
    gpu = ("No claim reads GPU results." if not v.gpu_needed else
           "GPU quantities come from committed GPU results: " + "; ".join(relative(f) for f in v.gpu_folders) + "."
           if v.gpu_folders else "No GPU measurement folder was found: GPU quantities are not measured.")
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    doc.add(Heading("What was measured"),
            Paragraph("Each computation below ran once; every claim that needed it shared it. " + gpu),
            Table(log if len(log) else pd.DataFrame(columns=["measurement", "target", "detail", "seconds"]),
                  f"Computations of this run (seconds on this machine; load average {load} at the end)"))
    p = run_provenance
    doc.add(Heading("Provenance"),
            Paragraph(f"Verified at commit {p['commit']} on {p['date']}, {p['device'].get('cpu')} "
                      f"({p['device'].get('cpu_count')} cores), Python {p['python']}; torch "
                      f"{p['libraries'].get('torch')}. Command: {p['command']}"))
    return doc
