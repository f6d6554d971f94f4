"""Claims files and ``hsgprof verify``: schema validation, the examples, sharing and sparing measurements,
readings, committed GPU results, custom results files, and bad input (one line, exit 2, nothing written)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pypdf
import pytest
import yaml

from hsgprof.claims.rules import NOT_MEASURED, REFUTED, SUPPORTED, AtLeast, AtMost, Approx, Between, Exact, InRange
from hsgprof.claims.schema import load_claims, parse_claims
from hsgprof.claims.verify import readings_matrix, verify
from hsgprof.cli import main
from hsgprof.errors import HsgprofError
from hsgprof.results import read_results

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "claims"
MEASUREMENTS = ROOT / "reports" / "measurements"
R18 = "torchvision.models:resnet18"


def _write(tmp_path: Path, doc: dict | str, name: str = "claims.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False))
    return path


def _claim(**fields) -> dict:
    return {"id": "c", "kind": "params", "value": "11.7M", "unit": "parameters", "tolerance": 0.05, **fields}


# ------------------------------------------------------------------------------------------ schema

@pytest.mark.parametrize("tolerance, value, rule, claimed", [
    (0.1, "25.6M", Approx(0.1), 25_600_000),
    ("exact", 7, Exact(), 7),
    ("max", 0.05, AtMost(), 0.05),
    ("min", 1, AtLeast(), 1),
    ({"max": "2G"}, "1G", AtMost(2e9), 1e9),
    ({"min": 3}, 5, AtLeast(3), 5),
    ([1, "2k"], 1500, Between(1, 2000), 1500),
    ({"min": 1, "max": 2}, 1.5, Between(1, 2), 1.5),
    (0.1, ["1.2G", "1.5e9"], InRange(0.1), (1.2e9, 1.5e9)),
])
def test_tolerance_forms_become_rules(tmp_path, tolerance, value, rule, claimed):
    cf = parse_claims({"model": R18, "claims": [_claim(value=value, tolerance=tolerance)]}, tmp_path / "c.yaml")
    spec = cf.claims[0]
    assert spec.rule == rule and spec.value == claimed


def test_si_suffixes_and_yaml_exponents():
    cf = parse_claims({"model": R18, "claims": [_claim(value="1.5Gi", unit="bytes", kind="memory",
                                                       quantity="params"),
                                                _claim(id="d", value="38.5e6")]}, Path("c.yaml"))
    assert cf.claims[0].value == 1.5 * 2 ** 30 and cf.claims[1].value == 38_500_000


@pytest.mark.parametrize("doc, field, accepted", [
    ({"model": R18, "claims": [_claim(kind="speed")]}, "'kind'", "accepted kinds: params, flops"),
    ({"model": R18, "claims": [{k: v for k, v in _claim().items() if k != "tolerance"}]}, "'tolerance'",
     "every claim needs id, kind, value, unit and tolerance"),
    ({"model": R18, "claims": [_claim(tolerance="lots")]}, "'tolerance'", "give a relative tolerance"),
    ({"model": R18, "claims": [_claim(tolerance=-0.1)]}, "'tolerance'", ">= 0"),
    ({"model": R18, "claims": [_claim(tolerance={"below": 3})]}, "'tolerance'", "{max: X}"),
    ({"model": R18, "claims": [_claim(tolerance=[5, 1])]}, "'tolerance'", "lo > hi"),
    ({"model": R18, "claims": [_claim(value="many")]}, "'value'", "suffixes k, M, G"),
    ({"model": R18, "claims": [_claim(unit="bytes")]}, "'unit'", "parameters, params, ratio"),
    ({"model": R18, "claims": [_claim(unit="ratio")]}, "'unit'", "needs a reference"),
    ({"model": R18, "claims": [_claim(card="T4")]}, "'card'", "fields for params:"),
    ({"model": R18, "claims": [_claim(kind="memory", unit="bytes")]}, "'quantity'", "kind memory needs quantity"),
    ({"model": R18, "claims": [_claim(kind="memory", unit="bytes", quantity="vram")]}, "'quantity'",
     "accepted: params, activations"),
    ({"model": R18, "claims": [_claim(kind="shape", unit="BCHW", value=[1, 2])]}, "'tolerance'", "give exact"),
    ({"model": R18, "claims": [_claim(kind="latency_ratio", unit="ratio", reference=R18)]}, "'precision'",
     "GPU latency results are per precision"),
    ({"model": R18, "claims": [_claim(), _claim()]}, "'claims'", "repeated: c"),
    ({"model": R18, "claims": []}, "'claims'", "give a list of claims"),
    ({"claims": [_claim()]}, "'model'", "give a preset"),
    ({"model": R18, "claims": [_claim()], "colour": 1}, "'colour'", "accepted here: schema, title"),
    ({"model": R18, "input": "big", "claims": [_claim()]}, "'input'", "BxCxHxW or HxW"),
    ({"model": R18, "claims": [_claim()], "readings": [{"name": "a"}], "primary_reading": "b"},
     "'primary_reading'", "'b' is not a reading; readings: a"),
    ({"model": R18, "claims": [_claim()], "readings": [{"name": "a"}, {"name": "a"}]}, "'readings'",
     "repeated: a"),
    ({"model": R18, "claims": [_claim()], "schema": "other/9"}, "'schema'", "hsgprof.claims/1"),
])
def test_bad_fields_are_one_line_naming_the_field_and_what_is_accepted(tmp_path, doc, field, accepted):
    with pytest.raises(HsgprofError) as err:
        parse_claims(doc, tmp_path / "c.yaml")
    message = str(err.value)
    assert "\n" not in message and field in message and accepted in message, message
    assert "c.yaml" in message


def test_bad_yaml_names_the_line(tmp_path):
    path = _write(tmp_path, "model: x\nclaims: [\n  - {id: a\n")
    with pytest.raises(HsgprofError, match=r"not valid YAML: .* at line \d+, column \d+"):
        load_claims(path)


# ------------------------------------------------------------------------------------------ examples

@pytest.fixture(scope="module")
def resnet50():
    return verify(EXAMPLES / "resnet50.yaml")


def test_resnet50_example_one_claim_holds_one_does_not(resnet50):
    v = resnet50.verdicts.set_index("id")
    assert v.loc["params.total", "verdict"] == SUPPORTED          # torchvision's num_params
    assert v.loc["macs.total", "verdict"] == SUPPORTED            # torchvision's _ops, in MACs
    assert v.loc["shape.layer4", "verdict"] == SUPPORTED
    assert v.loc["flops.as_labelled", "verdict"] == REFUTED       # the docs' "GFLOPS" are MACs
    # the claims are torchvision's published figures: the measurement matches its metadata
    from torchvision.models import ResNet50_Weights
    meta = ResNet50_Weights.IMAGENET1K_V2.meta
    assert v.loc["params.total", "value"] == meta["num_params"]
    assert v.loc["flops.as_labelled", "value"] == pytest.approx(2 * v.loc["macs.total", "value"])
    assert abs(v.loc["macs.total", "value"] / (meta["_ops"] * 1e9) - 1) < 0.01


def test_committed_example_outputs_are_current(resnet50):
    """reports/verify/*.verdicts.json (cited by the docs) hold what verify gives today."""
    rows = read_results(ROOT / "reports" / "verify" / "resnet50.verdicts.json", "verify.verdicts")["rows"]
    now = resnet50.verdicts
    assert [(r["id"], r["verdict"], r["measured"]) for r in rows] == list(zip(now["id"], now["verdict"],
                                                                                now["measured"]))


def test_yolov8l_example_against_ultralytics_published_figures():
    from hsgprof.claims.seed import PUBLISHED

    cf = load_claims(EXAMPLES / "yolov8l-ref.yaml")
    by_id = {c.id: c for c in cf.claims}
    assert by_id["flops.total_640"].value == PUBLISHED["yolov8l_gflops_640"] * 1e9      # the file cites seed.py's
    assert round(by_id["params.total"].value / 1e5) == round(PUBLISHED["yolov8l_params"] / 1e5)
    v = verify(cf).verdicts.set_index("id")
    assert set(v["verdict"]) == {SUPPORTED}
    rows = read_results(ROOT / "reports" / "verify" / "yolov8l-ref.verdicts.json", "verify.verdicts")["rows"]
    assert [(r["id"], r["verdict"], r["measured"]) for r in rows] == list(zip(v.index, v["verdict"], v["measured"]))
    assert v.loc["params.total", "value"] == PUBLISHED["yolov8l_trainable_params"]


# ------------------------------------------------------------------------------------------ measuring

def _spy(monkeypatch, module, name: str) -> list:
    calls = []
    original = getattr(module, name)

    def wrapped(*args, **kwargs):
        calls.append((args, kwargs))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapped)
    return calls


def test_each_measurement_once_shared_between_claims(tmp_path, monkeypatch):
    import hsgprof.counting
    import hsgprof.memory

    counts = _spy(monkeypatch, hsgprof.counting, "count")
    estimates = _spy(monkeypatch, hsgprof.memory, "estimate_memory")
    path = _write(tmp_path, {"model": R18, "input": "1x3x64x64", "claims": [
        _claim(id="f.total", kind="flops", value="297M", unit="FLOPs"),
        _claim(id="f.layer1", kind="flops", component="layer1", value="1G", unit="FLOPs"),
        _claim(id="s.layer4", kind="share", component="layer4", value=0.5, unit="fraction", tolerance="max"),
        _claim(id="f.128", kind="flops", input="128x128", value="1.2G", unit="FLOPs"),
        _claim(id="m.train", kind="memory", quantity="saved", mode="train", value="2M", unit="bytes"),
        _claim(id="m.peak", kind="memory", quantity="peak_reserved", mode="train", value="200M", unit="bytes"),
    ]})
    result = verify(path)
    assert len(counts) == 2                    # 64x64 shared by three claims, 128x128 once
    assert len(estimates) == 1                 # one training step estimate answers both memory claims
    log = result.measurements
    assert (log.groupby(["measurement", "detail"]).size() == 1).all()
    assert set(result.verdicts["verdict"]) <= {SUPPORTED, REFUTED}


def test_nothing_is_measured_that_no_claim_needs(tmp_path, monkeypatch):
    import hsgprof.counting
    import hsgprof.memory

    def forbidden(*args, **kwargs):
        raise AssertionError("measured without a claim needing it")

    monkeypatch.setattr(hsgprof.counting, "count", forbidden)
    monkeypatch.setattr(hsgprof.memory, "estimate_memory", forbidden)
    path = _write(tmp_path, {"model": R18, "claims": [_claim(), _claim(id="fp16", kind="memory", quantity="params",
                                                                      precision="fp16", value="23.4M",
                                                                      unit="bytes")]})
    result = verify(path, MEASUREMENTS)
    assert list(result.measurements["measurement"]) == ["build"]
    assert result.gpu_folders == [] and not result.gpu_needed           # no claim reads GPU results
    assert result.verdicts.set_index("id").loc["fp16", "value"] == 2 * result.verdicts.set_index("id").loc["c", "value"]


def test_max_batch_search_shares_the_memory_estimates(tmp_path, monkeypatch):
    import hsgprof.memory
    import hsgprof.memory.budget

    estimates = _spy(monkeypatch, hsgprof.memory.budget, "estimate_memory")
    direct = _spy(monkeypatch, hsgprof.memory, "estimate_memory")
    path = _write(tmp_path, {"model": R18, "input": "1x3x64x64", "claims": [
        _claim(id="fits", kind="max_batch", card="V100-16GB", mode="train", value=16, unit="images",
               tolerance="min"),
        _claim(id="b1", kind="memory", quantity="peak_reserved", mode="train", value="200M", unit="bytes"),
    ]})
    v = verify(path).verdicts.set_index("id")
    batches = [a[1][0] for a, _ in estimates]
    assert 1 in batches and len(batches) == len(set(batches))     # each batch estimated once ...
    assert direct == []                                            # ... and batch 1 answers the memory claim too
    assert v.loc["fits", "verdict"] == SUPPORTED and "not measured on a GPU" in v.loc["fits", "device"]
    assert v.loc["fits", "estimate"]


def test_readings_judge_every_claim_under_each_and_name_the_primary(tmp_path):
    path = _write(tmp_path, {"model": "hsgdet-tiny", "input": "256x320",
                             "readings": [{"name": "c2f"}, {"name": "c3", "overrides": {"csp_block": "c3"}}],
                             "primary_reading": "c3",
                             "claims": [_claim(id="params.total", value="0.95M", tolerance=0.03),
                                        _claim(id="yolo.params", model="yolov8l-ref", value="43.7M")]})
    result = verify(path)
    v = result.verdicts
    assert list(v["reading"]) == ["c2f", "c3", "c2f", "c3"]
    assert list(result.primary["reading"]) == ["c3", "c3"]
    own = v[v["id"] == "params.total"].set_index("reading")["value"]
    assert own["c2f"] != own["c3"]                                  # the override changed the model
    yolo = v[v["id"] == "yolo.params"]["value"]
    assert yolo.nunique() == 1                                     # a claim with its own model is reading-free
    matrix = readings_matrix(v)
    assert list(matrix.columns) == ["id", "c2f", "c3"] and list(matrix["id"]) == ["params.total", "yolo.params"]


def test_gpu_claims_read_committed_results_and_say_when_there_are_none(tmp_path):
    gpu = tmp_path / "measurements"
    shutil.copytree(MEASUREMENTS, gpu)
    claims = [{"id": "lat", "kind": "latency_ratio", "reference": "yolov8l-ref", "precision": "fp16-amp",
               "value": 1.0, "unit": "ratio", "tolerance": 0.25},
              {"id": "lat.compiled", "kind": "latency_ratio", "reference": "yolov8l-ref", "precision": "fp16-amp",
               "compile": "reduce-overhead", "value": 1.0, "unit": "ratio", "tolerance": 0.25},
              {"id": "time", "kind": "share", "of": "time", "component": "Sparse head", "precision": "fp16-amp",
               "value": 0.05, "unit": "fraction", "tolerance": "max"}]
    # the committed rows name "hsgdet-l" as it was before issue 15: the v8 chassis, hsgdet-l-v8 today
    path = _write(tmp_path, {"model": "hsgdet-l-v8", "claims": claims,
                             "readings": [{"name": "as built"}, {"name": "k512", "overrides": {"num_tokens": 512}}]})
    v = verify(path, gpu).verdicts.set_index(["id", "reading"])
    today = verify(_write(tmp_path, {"model": "hsgdet-l", "claims": claims[:1]}, "today.yaml"), gpu).verdicts
    assert today.loc[0, "verdict"] == NOT_MEASURED and "not measured on a GPU" in today.loc[0, "measured"]
    latency = read_results(next(gpu.glob("*/latency.json")), "latency-cuda")["rows"]
    row = next(r for r in latency if r["target"] == "hsgdet-l" and r["component"] == "ratio to yolov8l-ref"
               and r["batch"] == 1 and r["precision"] == "fp16-amp")
    assert v.loc[("lat", "as built"), "value"] == row["ratio_median_of_rounds"]
    assert v.loc[("lat", "as built"), "source"].endswith("latency.json")
    sparse = next(r for r in latency if r["target"] == "hsgdet-l" and r["component"] == "Sparse head"
                  and r["batch"] == 1 and r["precision"] == "fp16-amp")
    assert v.loc[("time", "as built"), "value"] == sparse["time_share"]
    for key in (("lat.compiled", "as built"), ("lat", "k512"), ("time", "k512")):
        assert v.loc[key, "verdict"] == NOT_MEASURED and "not measured on a GPU" in v.loc[key, "measured"], key
    alone = _write(tmp_path, {"model": "hsgdet-l", "claims": claims[:1]}, "alone.yaml")
    none = verify(alone, None).verdicts.set_index("id")
    assert none.loc["lat", "verdict"] == NOT_MEASURED and none.loc["lat", "estimate"]
    assert "no GPU measurement folder" in none.loc["lat", "reason"]


def test_custom_claims_read_a_results_file_by_row_or_by_path(tmp_path):
    results = ROOT / "reports" / "results"
    rows = read_results(results / "count_validation.json")["rows"]
    r50 = next(r for r in rows if r["model"] == "torchvision resnet50")
    path = _write(tmp_path, {"model": R18, "claims": [
        {"id": "row", "kind": "custom", "file": str(results / "count_validation.json"),
         "where": {"model": "torchvision resnet50"}, "key": "referee", "value": "4.089G", "unit": "MACs",
         "tolerance": 0.01},
        {"id": "path", "kind": "custom", "file": str(results / "count_hsgdet_components.json"),
         "key": "meta.share.native.share", "value": 0.05, "unit": "fraction", "tolerance": "max"}]})
    v = verify(path).verdicts.set_index("id")
    assert v.loc["row", "value"] == r50["referee"] and v.loc["row", "verdict"] == SUPPORTED
    doc = read_results(results / "count_hsgdet_components.json")
    assert v.loc["path", "value"] == doc["meta"]["share"]["native"]["share"]


# ------------------------------------------------------------------------------------------ CLI

def test_cli_writes_pdf_markdown_and_json(tmp_path, capsys):
    src = EXAMPLES / "resnet50.yaml"
    assert main(["verify", str(src), "--format", "json", "--out", str(tmp_path / "v.pdf")]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["kind"] == "verify.verdicts" and [r["id"] for r in printed["rows"]][0] == "params.total"
    text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO((tmp_path / "v.pdf").read_bytes())).pages)
    for row in printed["rows"]:
        assert row["id"] in text and row["verdict"] in text
    assert main(["verify", str(src), "--out", str(tmp_path / "v.md")]) == 0
    md = (tmp_path / "v.md").read_text()
    assert md.strip() == capsys.readouterr().out.strip() and "| params.total" in md     # the file is stdout's twin
    assert main(["verify", str(src), "--out", str(tmp_path / "v.json")]) == 0
    assert read_results(tmp_path / "v.json", "verify.verdicts")["rows"][3]["verdict"] == REFUTED


def _bad_inputs(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    good = {"model": R18, "claims": [_claim()]}
    return {
        "unknown kind": (_write(tmp_path, {**good, "claims": [_claim(kind="speed")]}, "a.yaml"), "'kind'"),
        "missing field": (_write(tmp_path, {**good, "claims": [{"id": "x", "kind": "params"}]}, "b.yaml"),
                          "'value': missing"),
        "bad tolerance": (_write(tmp_path, {**good, "claims": [_claim(tolerance="±10%")]}, "c.yaml"), "'tolerance'"),
        "unknown component": (_write(tmp_path, {**good, "claims": [_claim(component="layer9")]}, "d.yaml"),
                              "component 'layer9' is not a module path"),
        "target fails to build": (_write(tmp_path, {**good, "model": "no_such_package.models:net"}, "e.yaml"),
                                  "cannot import 'no_such_package.models'"),
        "bad override": (_write(tmp_path, {**good, "model": {"target": "hsgdet-tiny",
                                                             "overrides": {"csp_block": "c9"}}}, "f.yaml"),
                         "csp_block"),
        "unknown reading": (_write(tmp_path, {**good, "readings": [{"name": "a"}], "primary_reading": "z"},
                                   "g.yaml"), "'z' is not a reading"),
        "bad YAML": (_write(tmp_path, "model: [unclosed\n", "h.yaml"), "not valid YAML"),
        "missing file": (tmp_path / "nope.yaml", "does not exist"),
        "custom key": (_write(tmp_path, {**good, "claims": [{"id": "k", "kind": "custom", "file": "nope.json",
                                                             "key": "a", "value": 1, "unit": "x",
                                                             "tolerance": 0.1}]}, "i.yaml"), "'file'"),
    }


def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys):
    out = tmp_path / "out" / "v.pdf"
    for name, (path, message) in _bad_inputs(tmp_path).items():
        rc = main(["verify", str(path), "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2, name
        assert len(err) == 1 and err[0].startswith("hsgprof verify: error:") and message in err[0], (name, err)
        assert not out.parent.exists(), name


def test_unwritable_output_fails_before_anything_is_measured(tmp_path, capsys, monkeypatch):
    import hsgprof.claims.verify as verify_module

    monkeypatch.setattr(verify_module, "plan", lambda *a: pytest.fail("measured before checking --out"))
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    rc = main(["verify", str(EXAMPLES / "resnet50.yaml"), "--out", str(blocker / "v.pdf")])
    assert rc == 2 and "not writable" in capsys.readouterr().err
    for bad in ("v.docx", "folder/"):
        target = tmp_path / bad
        if bad.endswith("/"):
            target.mkdir()
        assert main(["verify", str(EXAMPLES / "resnet50.yaml"), "--out", str(target)]) == 2
    assert main(["verify", str(EXAMPLES / "resnet50.yaml"), "--format", "csv"]) == 2


def test_groups_count_each_module_once_and_padded_inputs_are_padded(tmp_path):
    path = _write(tmp_path, {"model": R18, "input": "1x3x64x64",
                             "groups": {"early": ["layer1", "layer2"], "overlap": ["layer1", "layer1.0", "early"]},
                             "claims": [_claim(id="l1", kind="flops", component="layer1", value="1G", unit="FLOPs"),
                                        _claim(id="l2", kind="flops", component="layer2", value="1G", unit="FLOPs"),
                                        _claim(id="early", kind="flops", component="early", value="1G", unit="FLOPs"),
                                        _claim(id="overlap", kind="flops", component="overlap", value="1G",
                                               unit="FLOPs"),
                                        _claim(id="p.early", component="early", value="1M"),
                                        _claim(id="pad", kind="flops", input="1x3x50x50", input_mode="padded",
                                               value="1G", unit="FLOPs"),
                                        _claim(id="pad.ref", kind="flops", input="64x64", value="1G", unit="FLOPs")]})
    v = verify(path).verdicts.set_index("id")["value"]
    assert v["early"] == v["l1"] + v["l2"] > 0
    assert v["overlap"] == v["early"]                       # layer1 and layer1.0 overlap: counted once
    assert v["pad"] == v["pad.ref"]                         # 50x50 padded to a multiple of 32 is 64x64
    from torchvision.models import resnet18
    model = resnet18()
    assert v["p.early"] == sum(p.numel() for m in (model.layer1, model.layer2) for p in m.parameters())


def test_a_shape_needs_one_module(tmp_path):
    path = _write(tmp_path, {"model": R18, "groups": {"two": ["layer1", "layer2"]},
                             "claims": [_claim(kind="shape", component="two", value=[1, 2], unit="BCHW",
                                               tolerance="exact")]})
    with pytest.raises(HsgprofError, match=r"claims\[0\] \(id 'c'\): field 'component': a shape is one module's"):
        verify(path)
