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
    fills: pd.DataFrame | None = None               # PDF: background colour per cell ("#rrggbb"; "" for
                                                    # none), same shape as ``frame``
    header_fills: tuple[str, ...] | None = None     # PDF: background colour per header cell


@dataclass(frozen=True)
class Figure:
    path: Path                                      # a PNG written by an analysis, or (with ``png``) the
    caption: str = ""                               # path, relative to the report, its bytes are written to
    png: bytes | None = None                        # a figure drawn by the report itself, held in memory


@dataclass(frozen=True)
class FigureGrid:
    """Figures side by side in the PDF, ``columns`` to a row (one after the other in Markdown)."""

    figures: tuple[Figure, ...]
    columns: int = 2


@dataclass(frozen=True)
class PageBreak:
    pass


Block = Heading | Paragraph | Table | Figure | FigureGrid | PageBreak


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> "Document":
        self.blocks.extend(blocks)
        return self

    def drawn_figures(self) -> list[Figure]:
        """The figures the report drew itself (``png`` held in memory); the caller writes them to disk."""
        out = []
        for block in self.blocks:
            for fig in block.figures if isinstance(block, FigureGrid) else (block,):
                if isinstance(fig, Figure) and fig.png is not None:
                    out.append(fig)
        return out
