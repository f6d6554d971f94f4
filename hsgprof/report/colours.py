"""The report's verdict colours: one palette for table cells and figures, so a colour means one verdict.

Supported green, refuted red, inconclusive amber, not measured grey, not measurable as stated
blue-grey. ``fill`` is a light background that keeps black text legible; ``strong`` is the same
hue for marks in figures. A status outside the ledger's list gets a neutral colour rather than
an error: the text beside it still names it.
"""

from __future__ import annotations

from hsgprof.claims.rules import INCONCLUSIVE, NOT_MEASURABLE, NOT_MEASURED, REFUTED, SUPPORTED

#                      fill (table cells)  strong (figures)
VERDICT_COLOURS = {SUPPORTED: ("#b9e4b4", "#2e7d32"),
                   REFUTED: ("#f5b5b0", "#c62828"),
                   INCONCLUSIVE: ("#ffd98a", "#e69100"),
                   NOT_MEASURED: ("#dddddd", "#8a8a8a"),
                   NOT_MEASURABLE: ("#c9d6e8", "#4f6d96")}
UNKNOWN = ("#eeeeee", "#b0b0b0")

SEED = "#9e9e9e"            # the seed's own figure, beside a measurement
MEASURED = "#1f5fa8"        # a measurement
HIGHLIGHT = "#e69100"       # what a figure singles out (global reasoning, a bound)


def verdict_fill(status: str) -> str:
    """Background colour of a table cell holding ``status``."""
    return VERDICT_COLOURS.get(status, UNKNOWN)[0]


def verdict_strong(status: str) -> str:
    """Colour of a mark standing for ``status`` in a figure."""
    return VERDICT_COLOURS.get(status, UNKNOWN)[1]
