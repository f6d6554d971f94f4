"""Renderers: Document -> PDF bytes (reportlab platypus) and Document -> Markdown text."""

from __future__ import annotations

import io
from html import escape

import pandas as pd

from .document import Document, Figure, Heading, PageBreak, Paragraph, Table


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return ""
    return str(value)


def to_markdown(doc: Document) -> str:
    """Markdown twin of the PDF: same blocks, same numbers."""
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
        elif isinstance(block, Figure):
            lines += [f"![{block.caption}]({block.path.as_posix()})", "", f"*{block.caption}*", ""]
    return "\n".join(lines)


def to_pdf(doc: Document) -> bytes:
    """The report as PDF bytes (A4 landscape, tables wrap their cells)."""
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import cm
    from reportlab.platypus import (Image, PageBreak as RLPageBreak, Paragraph as RLParagraph,
                                    SimpleDocTemplate, Spacer)

    styles = getSampleStyleSheet()
    body = styles["BodyText"]
    buf = io.BytesIO()
    page = landscape(A4)
    template = SimpleDocTemplate(buf, pagesize=page, leftMargin=1.5 * cm, rightMargin=1.5 * cm,
                                 topMargin=1.3 * cm, bottomMargin=1.3 * cm, title=doc.title,
                                 author="hsgprof")
    width = page[0] - 3 * cm
    story = [RLParagraph(escape(doc.title), styles["Title"])]
    for block in doc.blocks:
        if isinstance(block, Heading):
            story.append(RLParagraph(escape(block.text), styles[f"Heading{min(block.level, 3)}"]))
        elif isinstance(block, Paragraph):
            story.append(RLParagraph(escape(block.text).replace("\n", "<br/>"), body))
        elif isinstance(block, Table):
            if block.caption:
                story.append(RLParagraph(f"<i>{escape(block.caption)}</i>", body))
            story += [_pdf_table(block, width), Spacer(1, 0.3 * cm)]
        elif isinstance(block, Figure):
            img = Image(str(block.path))
            scale = min(width * 0.8 / img.imageWidth, 11 * cm / img.imageHeight, 1.0)
            img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
            story += [img, RLParagraph(f"<i>{escape(block.caption)}</i>", body), Spacer(1, 0.3 * cm)]
        elif isinstance(block, PageBreak):
            story.append(RLPageBreak())
    template.build(story)
    return buf.getvalue()


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
        ]))
        tables.append(table)
    if parts == 1:
        return tables[0]
    outer = RLTable([tables], colWidths=[part_width + gap] * (parts - 1) + [part_width])
    outer.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0),
                               ("RIGHTPADDING", (0, 0), (-1, -1), 0), ("TOPPADDING", (0, 0), (-1, -1), 0),
                               ("BOTTOMPADDING", (0, 0), (-1, -1), 0)]))
    return outer
