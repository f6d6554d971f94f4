"""The claims ledger, verdict rules and ``hsgprof report`` (test-sized profile, read back from the PDF)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pypdf
import pytest

from hsgprof.claims.ledger import LEDGER
from hsgprof.claims.measures import MEASURES
from hsgprof.claims.rules import (INCONCLUSIVE, NOT_MEASURED, REFUTED, STATUSES, SUPPORTED, Approx, AtMost,
                                  Exact, InRange, Measured, Negative, NotMeasurable)
from hsgprof.cli import main
from hsgprof.errors import HsgprofError
from hsgprof.report.build import build_report
from hsgprof.report.sections import num
from hsgprof.report.stages import Stage, run_stages
from hsgprof.results import read_results, write_results

ROOT = Path(__file__).resolve().parent.parent


def test_ledger_ids_unique_and_measures_exist():
    ids = [c.id for c in LEDGER]
    assert len(ids) == len(set(ids))
    for c in LEDGER:
        assert c.measure in MEASURES or isinstance(c.rule, NotMeasurable), c.id
    for required in ("shape.p3", "shape.p4", "shape.p5", "params.total", "params.decoder_formula", "flops.scaling",
                     "flops.yolo_l_640", "flops.backbone", "flops.token_attention", "flops.decoder", "flops.total",
                     "share.global_flops", "share.global_time", "memory.fp16_params", "memory.train_activations",
                     "memory.inference_activations", "memory.16gb", "nms.optional", "dense.strong",
                     "occlusion.strong", "latency.near_yolo_l", "theorem.entropy", "corollary.occlusion",
                     "corollary.delta_capacity", "stability.no_collapse", "convergence.faster_than_detr"):
        assert required in ids


@pytest.mark.parametrize("rule, claimed, value, ci, status", [
    (Approx(0.10), 100.0, 109.0, None, SUPPORTED),
    (Approx(0.10), 100.0, 111.0, None, REFUTED),
    (Approx(0.10), 100.0, 89.0, None, REFUTED),
    (Exact(), (67, 120, 512), (68, 120, 512), None, REFUTED),
    (Exact(), (34, 60, 1024), (34, 60, 1024), None, SUPPORTED),
    (AtMost(), 0.05, 0.049, None, SUPPORTED),
    (AtMost(), 0.05, 0.051, None, REFUTED),
    (InRange(0.10), (1.2e9, 1.5e9), 1.64e9, None, SUPPORTED),
    (InRange(0.10), (1.2e9, 1.5e9), 1.66e9, None, REFUTED),
    (Negative(), 0.0, -0.2, (-0.3, -0.1), SUPPORTED),
    (Negative(), 0.0, -0.2, (-0.3, 0.1), INCONCLUSIVE),
    (Negative(), 0.0, 0.2, (0.1, 0.3), REFUTED),
    (Negative(), 0.0, -0.2, None, INCONCLUSIVE),
])
def test_rules(rule, claimed, value, ci, status):
    got, reason = rule.judge(claimed, Measured(value, "x.json", ci=ci))
    assert got == status and reason


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    written = build_report(tmp / "out" / "report.pdf", "pdf", "smoke", tmp / "results",
                           measurements_dir=ROOT / "reports" / "measurements")
    text = "".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(written["pdf"].read_bytes())).pages)
    return tmp, written, text


def _squash(s: str) -> str:
    return re.sub(r"\s+", "", s)


def test_every_claim_appears_with_a_verdict(smoke_report):
    tmp, written, text = smoke_report
    flat = _squash(text)
    verdicts = read_results(written["verdicts"], "report.verdicts")["rows"]
    assert [v["id"] for v in verdicts] == [c.id for c in LEDGER]
    for v in verdicts:
        assert v["verdict"] in STATUSES
        assert _squash(v["id"]) in flat, v["id"]
    # the smoke profile computes shapes and parameters, so those have real verdicts
    by_id = {v["id"]: v for v in verdicts}
    assert by_id["shape.p4"]["verdict"] == REFUTED          # 1080 rows give 68, not the seed's 67
    assert by_id["params.total"]["verdict"] != NOT_MEASURED
    assert by_id["memory.train_activations"]["verdict"] == NOT_MEASURED   # no memory stage in smoke
    md = written["md"].read_text()
    for v in verdicts:
        assert v["id"] in md


def test_pdf_numbers_equal_the_results_files(smoke_report):
    tmp, written, text = smoke_report
    flat = _squash(text)
    rows = read_results(tmp / "results" / "count_hsgdet_components.json", "count.components")["rows"]
    assert rows
    for r in rows:
        assert num(r["params"] / 1e6) in flat, (r["component"], r["params"])
        assert num(r["referee_gemm_flops"] / 1e9) in flat, (r["component"], r["referee_gemm_flops"])
    gpu = sorted((ROOT / "reports" / "measurements").glob("*/latency.json"))
    if gpu:                                     # committed GPU results are part of every report
        lat = read_results(gpu[-1], "latency-cuda")["rows"]
        for r in lat:
            if r["kind"] == "end_to_end":
                assert num(r["median_ms"]) in flat, r
            if r["kind"] == "ratio":
                assert num(r["ratio_median_of_rounds"]) in flat, r


def test_rerun_reuses_cached_stages(smoke_report, tmp_path):
    tmp, written, _ = smoke_report
    messages = []
    run_stages(tmp / "results", "smoke", progress=messages.append)
    assert messages and all("reused" in m for m in messages)


def test_interrupted_run_resumes(tmp_path):
    calls = []

    def ok(out, profile):
        calls.append("ok")
        return [write_results(out / "a.json", "test.a", [{"x": 1}])]

    def boom(out, profile):
        raise KeyboardInterrupt

    stages = (Stage("a", ok), Stage("b", boom))
    with pytest.raises(KeyboardInterrupt):
        run_stages(tmp_path, "smoke", stages)
    run_stages(tmp_path, "smoke", (Stage("a", ok),))
    assert calls == ["ok"]                                  # stage a was not run again


def test_unwritable_output_is_one_line_and_writes_nothing(tmp_path, capsys):
    blocker = tmp_path / "a-file"                           # a file where a folder would have to be
    blocker.write_text("x")
    before = sorted(tmp_path.rglob("*"))
    rc = main(["report", "--smoke", "--from-results", str(tmp_path), "--out", str(blocker / "r.pdf")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and "not writable" in err and "\n" not in err
    assert sorted(tmp_path.rglob("*")) == before


def test_output_path_that_is_a_folder(tmp_path, capsys):
    assert main(["report", "--from-results", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("content, message", [
    ("{not json", "not valid JSON"),
    (json.dumps({"hello": "world"}), "not an hsgprof results file"),
])
def test_corrupt_or_foreign_results_file(tmp_path, capsys, content, message):
    (tmp_path / "bad.json").write_text(content)
    out = tmp_path / "out" / "report.pdf"
    assert main(["report", "--from-results", str(tmp_path), "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() and not out.with_suffix(".md").exists()


def test_bad_format(tmp_path):
    with pytest.raises(HsgprofError, match="--format 'docx'"):
        build_report(tmp_path / "r.pdf", "docx", "smoke", tmp_path)


def test_results_paths_are_shown_relative_to_the_repository(tmp_path):
    from hsgprof.report.store import ResultsStore
    store = ResultsStore()
    store.add_folder(ROOT / "reports" / "measurements", gpu=True)
    doc = next(iter(store.gpu.values()))
    assert store.path_of(doc).startswith("reports/measurements/")     # a reader's clone, not ours
    outside = tmp_path / "x.json"
    write_results(outside, "test.kind", [{"a": 1}], command="test")
    store.add_folder(tmp_path)
    assert store.path_of(store.cpu["test.kind"]) == str(outside)
    assert store.path_of({}) == "?"
