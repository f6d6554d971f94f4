"""The report's first pages, read back as a person sees them: PDF pages rendered to pixels (pypdfium2).

One report is built from the committed results and the committed GPU measurement folder (no
analysis runs), so every headline figure with committed data is drawn; the checks are on its PDF.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
import pytest

from hsgprof.claims.evaluate import evaluate
from hsgprof.claims.rules import INCONCLUSIVE, NOT_MEASURABLE, REFUTED, STATUSES, SUPPORTED
from hsgprof.report.build import build_report, figures_path
from hsgprof.report.colours import VERDICT_COLOURS, verdict_fill
from hsgprof.report.headlines import HEADLINES, headline_blocks
from hsgprof.report.summary import APPENDIX_HEADING, BODY_PAGES, area_counts, area_of, reason_line
from hsgprof.report.store import ResultsStore
from hsgprof.results import read_results, write_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "reports" / "results"
MEASUREMENTS = ROOT / "reports" / "measurements"
SCALE = 2.0                                   # render scale: 144 dpi


def _squash(s: str) -> str:
    """Whitespace removed (cells wrap), and the base fonts' ∆ (U+2206) read back as the ledger's Δ (U+0394)."""
    return re.sub(r"\s+", "", s).replace("\u2206", "\u0394")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pages")
    figs = figures_path(tmp / "r.pdf")
    figs.mkdir()
    (figs / "stale.png").write_bytes(b"an earlier report's figure")
    written = build_report(tmp / "r.pdf", "pdf", "quick", from_results=RESULTS, measurements_dir=MEASUREMENTS)
    pdf = pdfium.PdfDocument(str(written["pdf"]))
    texts = [pdf[i].get_textpage().get_text_range() for i in range(len(pdf))]
    verdicts = read_results(written["verdicts"], "report.verdicts")["rows"]
    yield tmp, written, pdf, texts, verdicts
    pdf.close()


def _appendix_start(texts: list[str]) -> int:
    """Index of the page on which the appendices begin (their heading opens the page)."""
    return next(i for i, t in enumerate(texts) if APPENDIX_HEADING in [line.strip() for line in t.splitlines()[:3]])


def _figures_start(texts: list[str]) -> int:
    return next(i for i, t in enumerate(texts) if "Headline figures" in t)


def test_body_before_the_appendices_fits_its_declared_page_count(report):
    _, _, pdf, texts, _ = report
    start = _appendix_start(texts)
    assert 0 < start <= BODY_PAGES, f"the body takes {start} pages; declared at most {BODY_PAGES}"
    appendix = _squash("".join(texts[start:]))
    for title in ("Verdicts in full", "Provenance", "Parameters and FLOPs per component", "Memory", "Latency",
                  "Information estimators, validated on ground truth", "Theory experiments", "Method notes"):
        assert _squash(title) in appendix, title                    # every section kept, as an appendix
    assert _squash("Verdicts in full (appendix A)") in appendix
    assert len(pdf) > start + 10                                    # the full tables are all still there


def test_verdict_pages_hold_every_claim_whole_and_no_cut_cell(report):
    _, _, _, texts, verdicts = report
    verdict_pages = texts[:_figures_start(texts) + 1]
    flat = _squash("".join(verdict_pages))
    for v in verdicts:
        for field in ("id", "statement", "claimed", "measured", "verdict"):
            assert _squash(v[field]) in flat, (v["id"], field, v[field])
        assert _squash(reason_line(v["reason"], v["estimate"])) in flat, v["id"]
    for page in verdict_pages:
        assert "…" not in page                                      # no cell is truncated
    first = _squash(texts[0])
    for status in STATUSES:
        assert _squash(f"{sum(v['verdict'] == status for v in verdicts)} {status}") in first, status
    for area in dict.fromkeys(area_of(v["id"]) for v in verdicts):
        assert _squash(area) in first, area                         # the counts by area are on page 1


def _rgb(hex_colour: str) -> np.ndarray:
    return np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)])


def test_verdicts_are_colour_coded(report):
    """Behind each verdict word in the claims table lies that verdict's colour (sampled from the pixels)."""
    _, _, pdf, texts, verdicts = report
    assert len({fill for fill, _ in VERDICT_COLOURS.values()}) == len(STATUSES)  # one colour per verdict
    hits = {s: 0 for s in STATUSES}
    for index in range(_figures_start(texts) + 1):             # the claims table ends on the figures page
        page = pdf[index]
        pixels = page.render(scale=SCALE, rev_byteorder=True).to_numpy()[..., :3].astype(int)   # RGB
        height = page.get_size()[1]
        text = page.get_textpage()
        for status in STATUSES:
            search = text.search(status[:14], match_case=True, match_whole_word=False)
            while (found := search.get_next()) is not None:
                left, bottom, right, top = text.get_charbox(found[0])
                x, y = int((left - 1.0) * SCALE), int((height - (top + bottom) / 2) * SCALE)   # 1 pt left of it
                if np.abs(pixels[y, x] - _rgb(verdict_fill(status))).max() <= 8:
                    hits[status] += 1
    for status in STATUSES:
        in_table = sum(v["verdict"] == status for v in verdicts)
        assert hits[status] >= in_table, (status, hits[status], in_table)
    assert hits[REFUTED] and hits[SUPPORTED]                        # the committed results have both


def test_headline_figures_are_drawn_and_not_blank(report):
    tmp, written, pdf, texts, _ = report
    expected = {h.name for h in HEADLINES if h.draw(_store()) is not None}
    assert {"params", "flop_share", "memory_16gb", "latency", "entropy"} <= expected  # data for each is committed
    assert sorted(p.stem for p in written["figures"].glob("*.png")) == sorted(expected)  # stale.png removed
    images = []
    for index in range(_figures_start(texts), _appendix_start(texts)):
        page = pdf[index]
        pixels = page.render(scale=SCALE).to_numpy()[..., :3].mean(axis=2)
        height = page.get_size()[1]
        for obj in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)):
            left, bottom, right, top = obj.get_bounds()
            assert right - left > 200 and top - bottom > 100        # drawn at a readable size (points)
            area = pixels[int((height - top) * SCALE):int((height - bottom) * SCALE),
                          int(left * SCALE):int(right * SCALE)]
            own = obj.get_bitmap().to_numpy()
            images.append((area.std(), (area < 200).mean(), own.std()))
    assert len(images) == len(expected)
    for spread, inked, own in images:
        assert spread > 20 and inked > 0.02 and own > 20, (spread, inked, own)
    md = written["md"].read_text()
    for name in expected:
        assert f"({figures_path(Path('r.pdf')).name}/{name}.png)" in md   # the Markdown links the same files


def test_figure_captions_state_convention_input_and_device(report):
    _, _, _, texts, _ = report
    body = _squash("".join(texts[_figures_start(texts):_appendix_start(texts)]))
    components = read_results(RESULTS / "count_hsgdet_components.json")["rows"]
    assert _squash(f"input {components[0]['input']}") in body
    assert _squash("FLOPs = 2 × MACs") in body
    gpu = next(iter(sorted(MEASUREMENTS.glob("*/latency.json"))))
    doc = read_results(gpu, "latency-cuda")
    assert _squash(doc["provenance"]["device"]["gpu"]) in body and doc["provenance"]["date"][:10] in body
    # the readings matrix is committed (analyses/readings.py): its headline figure is drawn
    assert _squash("Not drawn for lack of results: Verdicts under each reading") not in body
    assert _squash("under each reading of the choices the seed leaves open") in body     # its caption


def _store(results: Path = RESULTS, measurements: Path | None = MEASUREMENTS) -> ResultsStore:
    store = ResultsStore(results_dir=results)
    store.add_measurements(measurements)
    store.add_folder(results)
    return store


def test_every_headline_says_what_is_missing_when_its_results_are_absent(tmp_path):
    empty = ResultsStore(results_dir=tmp_path)
    assert all(h.draw(empty) is None for h in HEADLINES)
    blocks = headline_blocks(empty, Path("figs"))
    assert len(blocks) == 1 and all(h.title in blocks[0].text for h in HEADLINES)
    no_gpu = _store(measurements=None)
    latency = next(h for h in HEADLINES if h.name == "latency")
    assert latency.draw(no_gpu) is None and "not measured on a GPU" in latency.absent
    memory = next(h for h in HEADLINES if h.name == "memory_16gb").draw(no_gpu)
    assert memory is not None and memory.caption.startswith("Not measured on a GPU")


def _entropy_store(tmp_path: Path, controls: bool) -> ResultsStore:
    """The committed experiment results, with control rows or without them (the committed results have
    them since issue 12; they are removed here, or copied from a variant's own row where missing)."""
    folder = tmp_path / ("with" if controls else "without")
    shutil.copytree(RESULTS / "experiments-quick", folder)
    path = folder / "experiments_summary.json"
    doc = json.loads(path.read_text())
    rows = [r for r in doc["rows"] if not r["measurement"].startswith("control_")]
    if controls:
        have = [r for r in doc["rows"] if r["measurement"].startswith("control_")]
        row = next(r for r in doc["rows"] if r["measurement"] == "entropy_difference")
        rows += have or [{**row, "measurement": m} for m in ("control_positive", "control_negative")]
    doc["rows"] = rows
    path.write_text(json.dumps(doc))
    return _store(folder, None)


@pytest.mark.parametrize("controls", [True, False])
def test_entropy_figure_draws_the_controls_when_the_results_have_them(tmp_path, controls):
    entropy = next(h for h in HEADLINES if h.name == "entropy")
    drawn = entropy.draw(_entropy_store(tmp_path, controls))
    labels = [t.get_text() for t in drawn.figure.axes[0].get_yticklabels()]
    assert ("positive control" in labels and "negative control" in labels) == controls
    assert ("controls absent" in drawn.caption) != controls
    assert "hybrid (sparse head)" in labels and "interval over seeds" in drawn.caption


def test_readings_matrix_is_drawn_when_its_results_exist(tmp_path):
    verdicts = evaluate(_store())
    rows = [{"claim": v["id"], "reading": reading, "verdict": v["verdict"], "primary": reading == "as built"}
            for reading in ("as built", "another") for v in verdicts.to_dict("records")
            if v["id"].startswith(("params.", "flops."))]
    write_results(tmp_path / "readings.json", "readings.matrix", rows, command="test")
    readings = next(h for h in HEADLINES if h.name == "readings")
    drawn = readings.draw(_store(tmp_path, None))
    assert drawn is not None and "readings.json" in drawn.caption
    ax = drawn.figure.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["as built (primary)", "another"]
    fills = [p.get_facecolor()[:3] for p in ax.patches]
    assert len(fills) == len(rows)
    assert tuple(round(c * 255) for c in fills[0]) == tuple(_rgb(verdict_fill(rows[0]["verdict"])))


def test_area_counts_come_from_the_claim_ids():
    verdicts = pd.DataFrame({"id": ["a.x", "a.y", "b.z", "c.q"], "section": ["1", "1", "2", "3"],
                             "verdict": [SUPPORTED, REFUTED, INCONCLUSIVE, "new status"]})
    table = area_counts(verdicts)
    assert list(table["area"]) == ["a", "b", "c", "all"]
    assert list(table.columns[3:]) == [*STATUSES, "new status"]       # a status outside the ledger gets a column
    assert table.iloc[-1][SUPPORTED] == 1 and table.iloc[-1][NOT_MEASURABLE] == 0
    assert table.iloc[0][REFUTED] == 1 and table.iloc[0][INCONCLUSIVE] == ""


@pytest.mark.parametrize("reason, line", [
    ("measured 9.58M vs claimed 6M (+60%; tolerance ±10%); native mode", "measured 9.58M vs claimed 6M (+60%; tolerance ±10%)"),
    ("measured 2.76G vs claimed 1.2G–1.5G; from the estimator [estimate]", "measured 2.76G vs claimed 1.2G–1.5G [estimate]"),
    ("a [b; c] d; e", "a [b; c] d"),
    ("no clause break", "no clause break"),
])
def test_reason_line_is_the_first_clause(reason, line):
    assert reason_line(reason) == line


def test_pdf_outline_lists_the_first_pages_and_every_appendix(report):
    _, _, pdf, texts, _ = report
    toc = [(item.level, item.get_title()) for item in pdf.get_toc()]
    top = [title for level, title in toc if level == 0]
    assert top[:3] == ["Verdicts by area", "Every claim, in full", "Headline figures"]
    appendices = top[top.index(APPENDIX_HEADING) + 1:]
    assert appendices[0] == "Verdicts in full (appendix A)"
    assert [t.rsplit("(appendix ", 1)[1][0] for t in appendices] == [chr(ord("A") + i) for i in range(len(appendices))]
    assert (1, "Seed arithmetic audit") in toc                      # sub-sections nest under their appendix
