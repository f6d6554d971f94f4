"""The claims ledger, verdict rules and ``hsgprof report`` (test-sized profile, read back from the PDF)."""

from __future__ import annotations

import io
import json
import re
import shutil
from pathlib import Path

import pypdf
import pytest

from hsgprof.claims.ledger import LEDGER
from hsgprof.claims.measures import MEASURES
from hsgprof.claims.rules import (INCONCLUSIVE, NOT_MEASURED, REFUTED, STATUSES, SUPPORTED, Approx, AtMost,
                                  Exact, InRange, Measured, Negative, NotMeasurable)
from hsgprof.cli import main
from hsgprof.errors import HsgprofError
from hsgprof.claims.rules import fmt
from hsgprof.report import build as build_module
from hsgprof.report.build import build_report, verdicts_path
from hsgprof.report.sections import num
from hsgprof.report.stages import Stage, run_stages
from hsgprof.report.summary import APPENDIX_HEADING
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
                     "occlusion.strong", "latency.near_yolo_l", "latency.near_yolo_l.compiled",
                     "share.global_time.compiled", "theorem.entropy", "corollary.occlusion",
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


COMMITTED = ROOT / "reports" / "results"
# committed results of a quick run, planted in the smoke report's results folder: a smoke report must not read them
STALE = ("memory_hsgdet_estimates.json", "experiments-quick/experiments_summary.json",
         "figures/experiments_entropy.png")


def _pages(pdf: Path) -> list[str]:
    return [page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf.read_bytes())).pages]


@pytest.fixture(scope="module")
def smoke_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    for name in STALE:
        (tmp / "results" / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(COMMITTED / name, tmp / "results" / name)
    (tmp / "results" / "foreign.json").write_text(json.dumps({"hello": "world"}))   # not a stage's file
    written = build_report(tmp / "out" / "report.pdf", "pdf", "smoke", tmp / "results",
                           measurements_dir=ROOT / "reports" / "measurements")
    return tmp, written, "".join(_pages(written["pdf"]))


@pytest.fixture(scope="module")
def committed_report(tmp_path_factory):
    """A report from a copy of the committed quick results, with no GPU measurement folder."""
    tmp = tmp_path_factory.mktemp("committed")
    shutil.copytree(COMMITTED, tmp / "in", ignore=shutil.ignore_patterns(".*"))
    shutil.copy(ROOT / "reports" / "hsgdet-report.verdicts.json", tmp / "in" / "old.verdicts.json")  # an output
    before = {p: p.stat().st_mtime_ns for p in (tmp / "in").rglob("*")}
    written = build_report(tmp / "out" / "report.pdf", "pdf", "quick", from_results=tmp / "in",
                           measurements_dir=tmp / "no-measurements")
    after = {p: p.stat().st_mtime_ns for p in (tmp / "in").rglob("*")}
    assert after == before                                  # the input folder is never written to
    pages = _pages(written["pdf"])
    return tmp, written, pages, written["md"].read_text()


def _squash(s: str) -> str:
    """Whitespace removed (cells wrap), and the base fonts' ∆ (U+2206) read back as the ledger's Δ (U+0394)."""
    return re.sub(r"\s+", "", s).replace("\u2206", "\u0394")


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


# --------------------------------------------------------------------------- the first pages


def _body(pages: list[str]) -> list[str]:
    """The reader's pages: everything before the appendices (whose heading opens a page)."""
    start = next(i for i, p in enumerate(pages) if APPENDIX_HEADING in [line.strip() for line in p.splitlines()[:2]])
    return pages[:start]


def test_first_pages_give_counts_every_claim_and_provenance(smoke_report):
    tmp, written, _ = smoke_report
    pages = _pages(written["pdf"])
    first = _squash(pages[0])
    body = _squash("".join(_body(pages)))
    doc = read_results(written["verdicts"], "report.verdicts")
    verdicts = doc["rows"]
    for status in STATUSES:
        n = sum(v["verdict"] == status for v in verdicts)
        assert _squash(f"{n} {status}") in first, status
    assert _squash(f"{len(verdicts)} claims:") in first
    assert doc["provenance"]["commit"][:12] in body          # the run's commit, in the provenance paragraph
    for v in verdicts:                                       # every claim, whole, before the appendices
        assert _squash(v["id"]) in body and _squash(v["statement"]) in body, v["id"]
        assert _squash(v["measured"]) in body, (v["id"], v["measured"])
    folders = sorted(p.name for p in (ROOT / "reports" / "measurements").glob("*-20??-??-??") if p.is_dir())
    if folders:
        assert _squash(f"GPU measurements: used, from reports/measurements/{folders[-1]}") in body
    assert "Verdictsinfull" not in body and "Verdictsinfull(appendixA)" in _squash("".join(pages))


def test_first_pages_say_when_no_gpu_measurement_was_used(committed_report):
    _, _, pages, _ = committed_report
    assert _squash("GPU measurements: none (no measurement folder was found)") in _squash("".join(_body(pages)))


# --------------------------------------------------------------------------- which files a report reads


def test_default_mode_reads_only_the_files_its_stages_wrote(smoke_report):
    tmp, written, text = smoke_report
    flat = _squash(text)
    by_id = {v["id"]: v for v in read_results(written["verdicts"], "report.verdicts")["rows"]}
    # a quick run's memory estimate and experiment summary sit in the folder, yet smoke ran neither stage
    assert by_id["memory.train_activations"]["verdict"] == NOT_MEASURED
    assert by_id["theorem.entropy"]["verdict"] == NOT_MEASURED
    assert "memory_hsgdet_estimates.json" not in flat and "experiments_summary.json" not in flat
    assert "entropy(syntheticscenes" not in flat              # nor its figure
    assert "model_shapes.json" in flat and "count_hsgdet_components.json" in flat


def test_from_results_reads_every_file_in_the_folder(committed_report):
    _, written, pages, md = committed_report
    by_id = {v["id"]: v for v in read_results(written["verdicts"], "report.verdicts")["rows"]}
    assert by_id["memory.train_activations"]["verdict"] != NOT_MEASURED
    assert by_id["theorem.entropy"]["verdict"] != NOT_MEASURED
    assert "experiments-quick/experiments_summary.json" in md and "memory_hsgdet_estimates.json" in md
    assert "old.verdicts.json" not in md                      # an old report's output is not an input


def test_a_profile_never_mixes_in_another_profiles_files(tmp_path):
    def exp(out, profile):
        return [write_results(out / f"experiments-{profile}" / "x.json", "test.mixed", [{"profile": profile}])]

    stages = (Stage("exp", exp),)
    out = tmp_path / "out" / "r.md"
    build_report(out, "md", "quick", tmp_path / "results", measurements_dir=None, stages=stages)
    # a later full run left its file behind (newer), outside this profile's stage record
    full = write_results(tmp_path / "results" / "experiments-full" / "x.json", "test.mixed", [{"profile": "full"}])
    doc = json.loads(full.read_text())
    doc["provenance"]["date"] = "2999-01-01T00:00:00+00:00"        # newer than anything the quick stage wrote
    full.write_text(json.dumps(doc))
    build_report(out, "md", "quick", tmp_path / "results", measurements_dir=None, stages=stages)
    md = out.read_text()
    assert "experiments-quick/x.json" in md and "experiments-full" not in md


def test_verdicts_go_beside_the_report_not_into_the_input_folder(committed_report, smoke_report):
    tmp, written, _, _ = committed_report
    assert written["verdicts"] == tmp / "out" / "report.verdicts.json" == verdicts_path(tmp / "out" / "report.pdf")
    assert [p.name for p in (tmp / "in").rglob("*verdicts.json")] == ["old.verdicts.json"]   # only the planted one
    stmp, swritten, _ = smoke_report
    assert swritten["verdicts"] == stmp / "out" / "report.verdicts.json"
    assert not list((stmp / "results").rglob("*verdicts.json"))


def test_corrupt_gpu_file_fails_before_any_stage_runs(tmp_path, capsys):
    bad = tmp_path / "measurements" / "some-gpu-2026-01-01"
    bad.mkdir(parents=True)
    (bad / "latency.json").write_text("{not json")
    out = tmp_path / "out" / "report.pdf"
    with pytest.raises(HsgprofError, match="not valid JSON"):
        build_report(out, "pdf", "smoke", tmp_path / "results", measurements_dir=tmp_path / "measurements")
    assert not (tmp_path / "results").exists() and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- --device


def test_device_cuda_without_cuda_is_one_line_and_writes_nothing(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    rc = main(["report", "--smoke", "--device", "cuda", "--results-dir", str(tmp_path / "results"),
               "--out", str(tmp_path / "out" / "r.pdf")])
    err = capsys.readouterr().err.strip()
    assert rc != 0 and "CUDA" in err and "\n" not in err
    assert list(tmp_path.iterdir()) == []


def test_device_reaches_the_training_stage_only(tmp_path, monkeypatch):
    seen = []

    def trains(out, profile, device):
        seen.append(device)
        return [write_results(out / "t.json", "test.t", [{"device": device}])]

    def counts(out, profile):                               # takes no device
        return [write_results(out / "c.json", "test.c", [{"x": 1}])]

    stages = (Stage("c", counts), Stage("t", trains, uses_device=True))
    run_stages(tmp_path, "quick", stages, device="cuda")
    run_stages(tmp_path, "quick", stages, device="cuda")     # cached
    run_stages(tmp_path, "quick", stages, device="cpu")      # another device: retrained
    assert seen == ["cuda", "cpu"]
    from hsgprof.report.stages import STAGES
    assert [s.name for s in STAGES if s.uses_device] == ["experiments"]
    got = {}
    monkeypatch.setattr(build_module, "build_report", lambda *a, **kw: got.update(kw) or {})
    assert main(["report", "--device", "cuda", "--out", str(tmp_path / "r.pdf")]) == 0
    assert got["device"] == "cuda"


# --------------------------------------------------------------------------- numbers, formats, faults


def test_verdict_table_memory_and_info_numbers_equal_their_files(committed_report):
    tmp, written, pages, md = committed_report
    flat = _squash("".join(pages))
    body = _body(pages)
    for v in read_results(written["verdicts"], "report.verdicts")["rows"]:
        assert _squash(v["measured"]) in _squash("".join(body)), v["id"]           # the first pages
        assert _squash(v["measured"]) in _squash("".join(pages[len(body):])), v["id"]   # the full table
    mem = read_results(tmp / "in" / "memory_hsgdet_estimates.json", "memory.hsgdet.estimates")["rows"]
    assert mem and all(num(r["peak_allocated_MiB"], 1) in flat for r in mem)
    assert all(num(r["peak_reserved_MiB"], 1) in flat for r in mem)
    info = read_results(tmp / "in" / "info_validation.json", "info_validation")["meta"]["summary"]
    high = [r for r in info if r["stage"] == "high_mi"]
    assert high and all(num(r["bias"], 4) in flat for r in high)


def test_without_gpu_latency_claims_say_not_measured_beside_the_cpu_estimate(committed_report):
    tmp, written, pages, md = committed_report
    first = _squash("".join(_body(pages)))
    audit = {r["claim"]: r["measured"] for r in read_results(tmp / "in" / "count_seed_audit.json")["rows"]}
    comps = read_results(tmp / "in" / "count_hsgdet_components.json")["rows"]
    total = next(r for r in comps if r["component"] == "Total" and r["mode"] == "native")
    # the FLOP ratio at the GPU suite's input, 1080×1920 native, to hsgdet-l's family's YOLO-l
    ratio = total["referee_gemm_flops"] / audit["YOLO-l @1080p by the seed's method"]
    by_id = {v["id"]: v for v in read_results(written["verdicts"], "report.verdicts")["rows"]}
    for cid, estimate in (("latency.near_yolo_l", ratio), ("share.global_time", None),
                          ("latency.near_yolo_l.compiled", ratio), ("share.global_time.compiled", None)):
        v = by_id[cid]
        assert v["verdict"] == NOT_MEASURED and v["measured"].startswith("not measured on a GPU; estimate ")
        assert "[estimate]" in v["reason"] and _squash(v["measured"]) in first
        if estimate is not None:
            assert v["measured"].endswith(fmt(estimate))
    assert "not measured on a GPU" in md.split("## Latency")[1].split("##")[0]


def test_captions_state_input_sizes_from_the_results(committed_report):
    tmp, _, pages, md = committed_report
    cfg = read_results(tmp / "in" / "experiments-quick" / "experiments_summary.json")["provenance"]["config"]
    val, dense = cfg["val_scene"], cfg["dense_scene"]
    captions = [line for line in md.splitlines() if line.startswith("*")]
    entropy = next(c for c in captions if c.startswith("*entropy (synthetic scenes"))
    assert f"input {val['height']}×{val['width']}" in entropy
    density = next(c for c in captions if c.startswith("*ap density"))
    assert f"input {dense['height']}×{dense['width']}" in density
    assert f"input {val['height']}×{val['width']}" in next(c for c in captions if c.startswith("*Held-out NLL"))
    sweeps = read_results(tmp / "in" / "count_hsgdet_sweeps.json")["rows"]
    tokens = {r["input"] for r in sweeps if r["sweep"] == "num_tokens"}
    caption = next(c for c in captions if c.startswith("*count flops vs num tokens"))
    assert tokens and all(i in caption for i in tokens)
    assert _squash(caption.strip("*")) in _squash("".join(pages))   # the PDF prints the same caption


def test_provenance_lists_each_file_with_its_command(committed_report):
    tmp, _, pages, md = committed_report
    flat = _squash("".join(pages))
    assert "| command" in md
    for name in ("count_hsgdet_components.json", "memory_hsgdet_estimates.json", "info_validation.json"):
        assert _squash(read_results(tmp / "in" / name)["provenance"]["command"]) in flat, name


def test_format_md_writes_markdown_only(tmp_path, committed_report):
    src = committed_report[0] / "in"
    out = tmp_path / "md" / "report.md"
    assert main(["report", "--from-results", str(src), "--format", "md", "--out", str(out)]) == 0
    md = out.read_text()
    assert all(c.id in md for c in LEDGER)
    assert not out.with_suffix(".pdf").exists()
    assert (tmp_path / "md" / "report.verdicts.json").is_file()


def test_render_failure_leaves_the_old_report_intact(tmp_path, committed_report, monkeypatch):
    out = tmp_path / "report.pdf"
    out.write_bytes(b"%PDF old")
    out.with_suffix(".md").write_text("old md")

    def boom(doc):
        raise RuntimeError("renderer failed")

    monkeypatch.setattr(build_module, "to_pdf", boom)
    with pytest.raises(RuntimeError, match="renderer failed"):
        build_report(out, "pdf", "quick", from_results=committed_report[0] / "in", measurements_dir=None)
    assert out.read_bytes() == b"%PDF old" and out.with_suffix(".md").read_text() == "old md"
    assert not verdicts_path(out).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md", "report.pdf"]   # no temporary left


def test_latency_caveat_follows_the_measurement_file(tmp_path):
    """The suite's record of CPU jobs running during timing is printed with the figures, or not at all."""
    src = next((ROOT / "reports" / "measurements").glob("*/latency.json"))
    (tmp_path / "empty").mkdir()
    for busy in (0, 2):
        folder = tmp_path / f"m{busy}" / "some-gpu-2026-01-01"
        folder.mkdir(parents=True)
        doc = json.loads(src.read_text())
        doc["meta"]["estimator_jobs_running_at_start"] = busy
        (folder / "latency.json").write_text(json.dumps(doc))
        written = build_report(tmp_path / f"out{busy}" / "r.md", "md", "quick", from_results=tmp_path / "empty",
                               measurements_dir=folder.parent)
        text = written["md"].read_text()
        assert ("2 CPU estimator job(s) were still running" in text) == (busy == 2)


def test_eager_and_compiled_latency_claims_share_their_rule():
    by_id = {c.id: c for c in LEDGER}
    for eager in ("latency.near_yolo_l", "share.global_time"):
        compiled = by_id[f"{eager}.compiled"]
        assert compiled.rule == by_id[eager].rule and compiled.claimed == by_id[eager].claimed
        assert "eager PyTorch" in by_id[eager].statement and "torch.compile" in compiled.statement


def _gpu_folder(tmp_path: Path, compiled: bool) -> Path:
    """A measurement folder measured on today's hsgdet-l (config fingerprints in its meta): an eager step, plus
    (``compiled``) a compiled run and a profile. Provenance from the committed H100 file."""
    from hsgprof.adapters.hsgdet import config_fingerprint
    from hsgprof.gpu.latency_steps import REFERENCE

    src = sorted((ROOT / "reports" / "measurements").glob("*/latency.json"))[0]
    folder = tmp_path / f"m{int(compiled)}" / "some-gpu-2026-01-01"
    folder.mkdir(parents=True)
    doc = json.loads(src.read_text())
    doc["meta"] = {**(doc.get("meta") or {}), "reference": REFERENCE,
                   "config_fingerprints": {t: config_fingerprint(t) for t in ("hsgdet-l", REFERENCE)}}
    base = {"input": "1x3x1080x1920", "batch": 1, "precision": "fp16-amp", "device": "cuda:0",
            "memory_format": "contiguous"}
    doc["rows"] = [
        {**base, "target": "hsgdet-l", "path": "eager", "step": "latency", "component": f"ratio to {REFERENCE}",
         "kind": "ratio", "ratio_median_of_rounds": 1.73, "ratio_q1": 1.7, "ratio_q3": 1.76, "n": 30},
        {**base, "target": "hsgdet-l", "path": "eager", "step": "latency", "component": "end-to-end",
         "kind": "end_to_end", "median_ms": 37.4, "iqr_ms": 0.5, "n": 30},
        {**base, "target": "hsgdet-l", "path": "eager", "step": "latency", "component": "global reasoning",
         "kind": "global_share", "median_ms": 14.0, "time_share": 0.396, "flops_share": 0.0148}]
    if compiled:
        doc["rows"] += [
            {**base, "target": "hsgdet-l", "path": "compiled:reduce-overhead", "compile": "reduce-overhead",
             "component": "end-to-end", "kind": "end_to_end", "median_ms": 12.345, "iqr_ms": 0.1, "n": 30},
            {**base, "target": "hsgdet-l", "path": "compiled:reduce-overhead", "compile": "reduce-overhead",
             "component": f"ratio to {REFERENCE}", "kind": "ratio", "ratio_median_of_rounds": 1.111,
             "ratio_q1": 1.1, "ratio_q3": 1.12, "ratio_of_medians": 1.11, "n": 30},
            {**base, "target": "hsgdet-l", "path": "compiled:reduce-overhead,split", "compile": "reduce-overhead",
             "component": "global reasoning", "kind": "global_share", "median_ms": 1.0, "time_share": 0.0432,
             "flops_share": 0.0148},
            {**base, "target": "hsgdet-l", "path": "compiled:reduce-overhead", "compile": "reduce-overhead",
             "component": "compile", "kind": "compile", "compile_s": 41.512, "graphs": 2, "graph_breaks": 1,
             "outputs_equal": True, "max_rel_diff": 0.0021, "tolerance": 0.01}]
        # an eager run timed beside a compile, first in the file: the eager verdict must still read the eager step
        doc["rows"].insert(0, {**base, "target": "hsgdet-l", "path": "eager", "compile": "none",
                               "step": "compiled fp16-amp b1", "component": f"ratio to {REFERENCE}", "kind": "ratio",
                               "ratio_median_of_rounds": 1.0, "ratio_q1": 1.0, "ratio_q3": 1.0, "n": 30})
        write_results(folder / "profile.json", "profile-cuda", [
            {"target": "matmul", "kind": "peak", "component": "matmul 8192³ float16", "precision": "fp16-amp",
             "dtype": "float16", "n": 8192, "tflops": 612.5, "input": "1x3x1080x1920"},
            {"target": "hsgdet-l", "path": "eager", "kind": "profile_component", "component": "Global block",
             "device_ms": 0.765, "host_ms": 2.5, "kernels": 40, "flops": 9.6e9, "achieved_tflops": 12.549,
             "fraction_of_peak": 0.0205, "time_share": 0.03, "input": "1x3x1080x1920"}])
    (folder / "latency.json").write_text(json.dumps(doc))
    return folder


@pytest.mark.parametrize("compiled", [False, True])
def test_compiled_latency_claims_read_the_compiled_rows(tmp_path, compiled):
    from hsgprof.claims.evaluate import judge
    from hsgprof.report.store import load_store

    folder = _gpu_folder(tmp_path, compiled)
    (tmp_path / "empty").mkdir()
    store = load_store(tmp_path / "empty", folder.parent)
    by_id = {c.id: judge(c, store) for c in LEDGER}
    assert by_id["latency.near_yolo_l"]["verdict"] == REFUTED                   # the eager rows, as before
    ratio, share = by_id["latency.near_yolo_l.compiled"], by_id["share.global_time.compiled"]
    if compiled:
        assert ratio["verdict"] == SUPPORTED and ratio["measured"] == fmt(1.111)
        assert "compiled:reduce-overhead (whole graph)" in ratio["reason"]
        assert share["verdict"] == SUPPORTED and share["measured"] == fmt(0.0432)
        assert "compiled:reduce-overhead,split" in share["reason"]
        written = build_report(tmp_path / "out" / "r.md", "md", "quick", from_results=tmp_path / "empty",
                               measurements_dir=folder.parent)
        text = written["md"].read_text()
        latency = text.split("# Latency")[1]
        for value in ("12.345", "1.111", "41.512", "0.043", "612.5", "12.549"):
            assert value in latency, value
        assert "compiled:<mode>,split" in latency and "latency.near_yolo_l.compiled" in latency
    else:
        assert ratio["verdict"] == NOT_MEASURED and share["verdict"] == NOT_MEASURED


def test_latency_headline_shows_each_path_once(tmp_path):
    """The headline figure: eager from the eager step (not the eager runs beside a compile), compiled beside it."""
    from hsgprof.report import headlines
    from hsgprof.report.store import load_store

    folder = _gpu_folder(tmp_path, compiled=True)
    (tmp_path / "empty").mkdir()
    drawn = headlines._latency(load_store(tmp_path / "empty", folder.parent))
    labels = [t.get_text() for t in drawn.figure.axes[0].get_yticklabels()]
    assert labels.count("hsgdet-l fp16-amp b1") == 1 and "hsgdet-l fp16-amp b1 reduce-overhead" in labels
    shares = [t.get_text() for t in drawn.figure.axes[1].get_yticklabels()]
    assert "fp16-amp b1 reduce-overhead" in shares


def test_readings_and_fit_sections_read_their_results(committed_report):
    tmp, written, pages, md = committed_report
    prim = read_results(tmp / "in" / "readings_primary.json", "readings.primary")
    assert f"Primary reading: {prim['meta']['primary']}." in md
    matrix = read_results(tmp / "in" / "readings_matrix.json", "readings.matrix")
    for h in matrix["meta"]["headlines"]:
        assert h["summary"] in md, h["claim"]
    fit = read_results(tmp / "in" / "fit_hsgdet.json", "fit.hsgdet")
    assert fit["meta"]["summary"]["answer"] in md
