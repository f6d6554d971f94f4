"""Renderers: Document -> PDF bytes (reportlab platypus) and Document -> Markdown text."""

from __future__ import annotations

import io
import os
from html import escape
from pathlib import Path

import pandas as pd

from .document import Document, Figure, FigureGrid, Heading, PageBreak, Paragraph, Table


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def to_markdown(doc: Document, base: Path | None = None) -> str:
    """Markdown twin of the PDF: same blocks, same numbers.

    With ``base`` (the folder the Markdown is written to), figure files are linked relative to it, so
    the links hold in any clone; figures drawn in memory already carry paths relative to the report.
    """
    lines = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            lines += [f"{'#' * (block.level + 1)} {block.text}", ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Table):
            if block.caption:
                lines += [f"*{block.caption}*", ""]
            lines += [block.frame.map(_cell).to_markdown(index=False), ""]
        elif isinstance(block, (Figure, FigureGrid)):
            for fig in block.figures if isinstance(block, FigureGrid) else (block,):
                lines += [f"![{fig.caption}]({_link(fig, base)})", "", f"*{fig.caption}*", ""]
    return "\n".join(lines)


def _link(fig: Figure, base: Path | None) -> str:
    if base is None or fig.png is not None:
        return fig.path.as_posix()
    return Path(os.path.relpath(fig.path.resolve(), Path(base).resolve())).as_posix()


def to_pdf(doc: Document) -> bytes:
    """The report as PDF bytes (A4 landscape, tables wrap their cells; headings become PDF bookmarks)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import PageBreak as RLPageBreak, Paragraph as RLParagraph, SimpleDocTemplate, Spacer

    class Template(SimpleDocTemplate):
        def afterFlowable(self, flowable):                      # a heading: a bookmark in the outline
            mark = getattr(flowable, "outline", None)
            if mark is not None:
                key = f"h{self.page}-{id(flowable)}"
                self.canv.bookmarkPage(key)
                self.canv.addOutlineEntry(mark[0], key, level=mark[1])

    def footer(canvas, template):
        canvas.saveState()
        canvas.setFont("Helvetica", 7)
        canvas.setFillColor(colors.grey)
        canvas.drawRightString(page[0] - 1.5 * cm, 0.7 * cm, f"{doc.title} \u2014 page {canvas.getPageNumber()}")
        canvas.restoreState()

    styles = getSampleStyleSheet()
    body = styles["BodyText"]
    buf = io.BytesIO()
    page = landscape(A4)
    template = Template(buf, pagesize=page, leftMargin=1.5 * cm, rightMargin=1.5 * cm,
                        topMargin=1.3 * cm, bottomMargin=1.3 * cm, title=doc.title, author="hsgprof")
    width = page[0] - 3 * cm
    story = [RLParagraph(escape(doc.title), styles["Title"])]
    outline_level, heading_seen = -1, False
    for block in doc.blocks:
        if isinstance(block, Heading):
            heading = RLParagraph(escape(block.text), styles[f"Heading{min(block.level, 3)}"])
            heading_seen = heading_seen or block.level == 1       # before the first level-1 heading, the
            level = block.level - 1 if heading_seen else max(0, block.level - 2)   # title stands for it
            outline_level = min(level, outline_level + 1)         # an outline never skips a level
            heading.outline = (block.text, outline_level)
            story.append(heading)
        elif isinstance(block, Paragraph):
            story.append(RLParagraph(escape(block.text).replace("\n", "<br/>"), body))
        elif isinstance(block, Table):
            if block.caption:
                story.append(RLParagraph(f"<i>{escape(block.caption)}</i>", body))
            story += [_pdf_table(block, width), Spacer(1, 0.3 * cm)]
        elif isinstance(block, Figure):
            story += [_pdf_image(block, width * 0.8, 11 * cm),
                      RLParagraph(f"<i>{escape(block.caption)}</i>", body), Spacer(1, 0.3 * cm)]
        elif isinstance(block, FigureGrid):
            story += [_pdf_grid(block, width), Spacer(1, 0.2 * cm)]
        elif isinstance(block, PageBreak):
            story.append(RLPageBreak())
    from reportlab import rl_config

    a85 = rl_config.useA85              # images as binary streams, not ASCII85 text: reportlab's pure-Python
    rl_config.useA85 = 0                # encoder took seconds per report; the PDF is smaller too
    try:
        template.build(story, onFirstPage=footer, onLaterPages=footer)
    finally:
        rl_config.useA85 = a85
    return buf.getvalue()


def _pdf_image(fig: Figure, max_width: float, max_height: float):
    """The figure's image (from its bytes, or its file) scaled to fit, never enlarged."""
    from reportlab.platypus import Image

    img = Image(io.BytesIO(fig.png) if fig.png is not None else str(fig.path))
    scale = min(max_width / img.imageWidth, max_height / img.imageHeight, 1.0)
    img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
    return img


def _pdf_grid(grid: FigureGrid, width: float):
    """Figures ``columns`` to a row, each above its caption (6.8 pt italic); a row never splits."""
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph as RLParagraph, Table as RLTable, TableStyle

    small = getSampleStyleSheet()["BodyText"].clone("caption", fontSize=6.8, leading=8)
    cols = max(1, grid.columns)
    cell = width / cols
    cells = [[_pdf_image(fig, cell - 0.4 * cm, 6.7 * cm), RLParagraph(f"<i>{escape(fig.caption)}</i>", small)]
             for fig in grid.figures]
    rows = [cells[i:i + cols] + [""] * (cols - len(cells[i:i + cols])) for i in range(0, len(cells), cols)]
    table = RLTable(rows, colWidths=[cell] * cols)
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("ALIGN", (0, 0), (-1, -1), "CENTER"),
                               ("LEFTPADDING", (0, 0), (-1, -1), 0.2 * cm), ("RIGHTPADDING", (0, 0), (-1, -1), 0.2 * cm),
                               ("TOPPADDING", (0, 0), (-1, -1), 0.1 * cm), ("BOTTOMPADDING", (0, 0), (-1, -1), 0.3 * cm)]))
    return table


def _pdf_table(block: Table, width: float):
    """A reportlab table for ``block``; with ``split`` > 1 its rows run in side-by-side parts."""
    from reportlab.lib import colors
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import Paragraph as RLParagraph, Table as RLTable, TableStyle

    size = block.font_size or 7.0
    small = getSampleStyleSheet()["BodyText"].clone("small", fontSize=size, leading=size * 1.2)
    pad = 1.5 if block.font_size else 3
    frame = block.frame
    parts = max(1, block.split)
    gap = 0.4 * cm if parts > 1 else 0.0
    part_width = (width - gap * (parts - 1)) / parts
    rel = block.col_widths or tuple(1.0 for _ in frame.columns)
    widths = [part_width * r / sum(rel) for r in rel]
    header = [RLParagraph(f"<b>{escape(str(c))}</b>", small) for c in frame.columns]
    rows = [[RLParagraph(escape(_cell(v)), small) for v in row] for row in frame.itertuples(index=False)]
    per = -(-len(rows) // parts) if rows else 0
    tables = []
    for i in range(parts):
        table = RLTable([header] + rows[i * per:(i + 1) * per], colWidths=widths, repeatRows=1)
        table.setStyle(TableStyle([
            ("GRID", (0, 0), (-1, -1), 0.25, colors.grey),
            ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
            ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ("LEFTPADDING", (0, 0), (-1, -1), 2), ("RIGHTPADDING", (0, 0), (-1, -1), 2),
            ("TOPPADDING", (0, 0), (-1, -1), pad), ("BOTTOMPADDING", (0, 0), (-1, -1), pad),
            *_fill_commands(block, i * per, per),
        ]))
        tables.append(table)
    if parts == 1:
        return tables[0]
    outer = RLTable([tables], colWidths=[part_width + gap] * (parts - 1) + [part_width])
    outer.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 0),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 0)]))
    return outer


def _fill_commands(block: Table, first: int, count: int) -> list[tuple]:
    """TableStyle BACKGROUND commands for the header and for rows ``first``..``first + count`` of ``block``."""
    from reportlab.lib import colors

    out = [("BACKGROUND", (c, 0), (c, 0), colors.HexColor(fill))
           for c, fill in enumerate(block.header_fills or ()) if fill]
    if block.fills is not None:
        part = block.fills.iloc[first:first + count]
        for r, row in enumerate(part.itertuples(index=False), start=1):
            out += [("BACKGROUND", (c, r), (c, r), colors.HexColor(fill)) for c, fill in enumerate(row) if fill]
    return out
