"""The report's first pages, written for a reader: what holds, what does not, and why, in a few pages.

Order: verdict counts by area; every claim with its full statement, the claimed and measured
values, a colour-coded verdict and a one-line reason; the headline figures
(:mod:`hsgprof.report.headlines`); a short provenance paragraph. Everything else, every full
table included, follows as appendices. Nothing here is typed by hand: areas come from the claim
ids, statuses from the verdict table, numbers from the results files through the verdicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from hsgprof.claims.rules import NOT_MEASURABLE, STATUSES

from .colours import verdict_fill
from .document import Block, Heading, PageBreak, Paragraph, Table
from .headlines import headline_blocks
from .sections import verdict_counts
from .theory import trained_on

BODY_PAGES = 8                 # the pages before the appendices, at most (the PDF test holds the report to it)
APPENDIX_HEADING = "Appendices"


def area_of(claim_id: str) -> str:
    """A claim's area: its id up to the first dot ("params.total" -> "params")."""
    return str(claim_id).split(".", 1)[0]


def statuses(verdicts: pd.DataFrame) -> list[str]:
    """The ledger's statuses, then any other status the table holds (in order of appearance)."""
    return list(STATUSES) + [s for s in dict.fromkeys(verdicts["verdict"]) if s not in STATUSES]


def area_counts(verdicts: pd.DataFrame) -> pd.DataFrame:
    """One row per area (first appearance order): its seed sections, claim count and count per status
    (blank for none; the last row, "all", prints zeros too)."""
    v = verdicts.assign(area=verdicts["id"].map(area_of))
    cols = statuses(verdicts)
    rows = []
    for area, part in v.groupby("area", sort=False):
        counts = part["verdict"].value_counts()
        rows.append({"area": area, "seed sections": ", ".join(dict.fromkeys(part["section"])),
                     "claims": len(part), **{s: int(counts.get(s, 0)) or "" for s in cols}})
    counts = verdicts["verdict"].value_counts()
    rows.append({"area": "all", "seed sections": "", "claims": len(verdicts),
                 **{s: int(counts.get(s, 0)) for s in cols}})
    return pd.DataFrame(rows)


def reason_line(reason: str, estimate: bool = False) -> str:
    """The one-line reason: the full reason's first clause (up to the first "; " outside brackets).

    The full reason follows in appendix A. A value from an estimator keeps its "[estimate]" mark.
    """
    depth, cut = 0, len(reason)
    for i, ch in enumerate(reason):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if depth == 0 and reason.startswith("; ", i):
            cut = i
            break
    line = reason[:cut].strip()
    if (estimate or "[estimate]" in reason) and "[estimate]" not in line:
        line += " [estimate]"
    return line


def claims_frame(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdict pages' table: full statement, claimed value (or, for a claim with none, the test declared
    for it), measured value, verdict and the one-line reason."""
    rules = verdicts["rule"] if "rule" in verdicts else [""] * len(verdicts)
    claimed = [c if c else ("" if v == NOT_MEASURABLE or not r else f"test: {r}")
               for c, v, r in zip(verdicts["claimed"], verdicts["verdict"], rules)]
    estimate = verdicts["estimate"] if "estimate" in verdicts else [False] * len(verdicts)
    return pd.DataFrame({"claim": verdicts["id"], "statement (seed)": verdicts["statement"],
                         "claimed": claimed, "measured": verdicts["measured"], "verdict": verdicts["verdict"],
                         "why (full reason: appendix A)": [reason_line(r, bool(e))
                                                           for r, e in zip(verdicts["reason"], estimate)]})


def first_pages(verdicts: pd.DataFrame, store, profile: str, source: str, run_provenance: dict[str, Any],
                figures_dir: Path) -> list[Block]:
    """Pages 1 to at most :data:`BODY_PAGES`: counts by area, every claim in full, headline figures, provenance."""
    areas = area_counts(verdicts)
    cols = statuses(verdicts)
    area_fills = pd.DataFrame({c: [verdict_fill(c) if c in cols and n else "" for n in areas[c]]
                               for c in areas.columns})
    header = tuple(verdict_fill(c) if c in cols else "" for c in areas.columns)
    claims = claims_frame(verdicts)
    claim_fills = pd.DataFrame({c: [verdict_fill(v) if c == "verdict" else "" for v in claims["verdict"]]
                                for c in claims.columns})
    return [
        Paragraph(f"{verdict_counts(verdicts)}. Each claim of the seed is judged by a rule declared for it in the "
                  "claims ledger before any measurement (the measurable claims in the claims file "
                  "hsgprof/claims/hsgdet.yaml, the theory claims in hsgprof/claims/ledger.py). These first pages "
                  "give every claim in full, coloured by verdict, and the figures that carry the verdicts; the "
                  "appendices hold every table in full."),
        Heading("Verdicts by area", 2),
        Table(areas, "Claims per area (an area is a claim id's prefix) and per verdict",
              (1.2, 3.6, 0.6) + (0.9,) * len(cols), font_size=7.5, fills=area_fills, header_fills=header),
        Heading("Every claim, in full", 2),
        Table(claims, "", (2.1, 2.6, 2.0, 1.2, 0.95, 4.2), font_size=7.5, fills=claim_fills),
        Heading("Headline figures"),
        *headline_blocks(store, figures_dir),
        Heading("How this report was made", 2),
        Paragraph(run_line(verdicts, store, profile, source, run_provenance)),
    ]


def run_line(verdicts: pd.DataFrame, store, profile: str, source: str, run_provenance: dict[str, Any]) -> str:
    """Commit, date, machine, command, inputs, GPU folders used and where the experiments trained."""
    p = run_provenance
    exp = store.get("experiments.summary")
    trained = trained_on(exp) if exp is not None else "not run in this profile"
    return (f"Provenance: commit {p['commit']}; built {p['date']}; machine {p['device'].get('cpu')} "
            f"({p['device'].get('cpu_count')} cores, {p['hostname_class']}); torch {p['libraries'].get('torch')}; "
            f"command: {p['command']}. Profile {profile}; inputs: {source}. GPU measurements: "
            f"{gpu_use(store, verdicts)}. Theory experiments trained on: {trained}. Every results file read is "
            "listed in the Provenance appendix, with its commit, date, device and command.")


def gpu_use(store, verdicts: pd.DataFrame) -> str:
    """Whether GPU measurements were used, from which folder and device, and for how many claims."""
    from .store import relative

    used = []
    for folder in store.gpu_folders:
        docs = [d for d in store.gpu.values() if store.paths[id(d)].resolve().is_relative_to(folder.resolve())]
        if docs:
            dev = docs[0]["provenance"]["device"]
            used.append(f"{relative(folder)} ({dev.get('gpu') or 'CPU'})")
    if not used:
        return ("none (no measurement folder was found): GPU claims say 'not measured on a GPU' beside the "
                "CPU-side estimate")
    gpu_files = {store.path_of(doc) for doc in store.gpu.values()}
    on_gpu = int(verdicts["source"].isin(gpu_files).sum())
    return f"used, from {'; '.join(used)}; {on_gpu} claims judged on them"


def appendices(blocks: list[Block]) -> list[Block]:
    """``blocks`` as lettered appendices after a list of them: each level-1 heading gains "(appendix X)".

    The list opens a new page, on which the first appendix starts.
    """
    blocks = list(blocks)
    if blocks and isinstance(blocks[0], PageBreak):
        blocks = blocks[1:]
    out: list[Block] = []
    titles = []
    for block in blocks:
        if isinstance(block, Heading) and block.level == 1:
            letter = chr(ord("A") + len(titles))
            titles.append(f"{letter}: {block.text}")
            block = Heading(f"{block.text} (appendix {letter})", 1)
        out.append(block)
    intro = [PageBreak(), Heading(APPENDIX_HEADING),
             Paragraph("Every table in full, for checking the pages before: " + "; ".join(titles) + ".")]
    return intro + out
