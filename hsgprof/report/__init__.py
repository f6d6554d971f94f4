"""``hsgprof report``: every seed claim beside its measurement and verdict, as PDF and Markdown."""
