"""A report as a list of blocks, rendered to PDF (reportlab) or Markdown by separate functions.

Blocks hold data (strings, DataFrames, figure files), never layout, so both renderers print
the same numbers from the same source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 1


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame
    caption: str = ""
    col_widths: tuple[float, ...] | None = None     # relative widths for the PDF
    font_size: float | None = None                  # PDF font size (default 7 pt)
    split: int = 1                                  # PDF: rows laid out in this many side-by-side parts


@dataclass(frozen=True)
class Figure:
    path: Path                                      # a PNG written by an analysis
    caption: str = ""


@dataclass(frozen=True)
class PageBreak:
    pass


Block = Heading | Paragraph | Table | Figure | PageBreak


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> "Document":
        self.blocks.extend(blocks)
        return self
