"""``hsgprof memory``: formats, the JSON fields the issue names, one-line errors, max-batch prediction."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from hsgprof.cli import main
from hsgprof.results import read_results


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Real CPU compute here runs with one torch thread (conftest)."""


def _run(capsys, *argv):
    code = main(["memory", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_has_the_issue_fields(capsys):
    code, out, _ = _run(capsys, "hsgdet-tiny", "--input", "96x128", "--batch", "2", "--mode", "train",
                        "--optimizer", "adamw", "--precision", "fp16-amp", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    for key in ("params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes", "peak_bytes", "per_component"):
        assert key in doc
    assert doc["batch"] == 2 and doc["input"] == "2x3x96x128"
    assert doc["optimizer_bytes"] == 2 * doc["params_bytes"]
    assert {r["component"] for r in doc["per_component"]} >= {"Stem", "Sparse head"}


@pytest.mark.parametrize("fmt, marker", [("md", "| parameters"), ("csv", "section,name"), ("latex", "\\begin{tabular}")])
def test_other_formats(capsys, fmt, marker):
    code, out, _ = _run(capsys, "hsgdet-tiny", "--input", "1x3x64x96", "--format", fmt)
    assert code == 0
    assert marker in out
    if fmt == "md":
        assert "MiB" in out


def test_generic_target_and_results_file(capsys, tmp_path):
    path = tmp_path / "mem.json"
    code, out, _ = _run(capsys, "torchvision.models:resnet18", "--input", "1x3x64x64", "--mode", "train",
                        "--optimizer", "sgd", "--out", str(path))
    assert code == 0
    doc = read_results(path, "memory-estimate")
    assert doc["provenance"]["command"]
    assert any(r["name"] == "params_bytes" for r in doc["rows"])


def test_max_batch_prediction(capsys):
    code, out, _ = _run(capsys, "hsgdet-tiny", "--input", "64x96", "--mode", "inference", "--max-batch", "4",
                        "--format", "json")
    assert code == 0
    mb = json.loads(out)["max_batch"]
    assert mb["max_batch"] == 4 and mb["capped"] is True
    assert mb["usable_bytes"] == mb["card_total_bytes"] - mb["context_bytes"]


@pytest.mark.parametrize("argv, message", [
    (["--precision", "fp8"], "--precision 'fp8' is not accepted"),
    (["--mode", "train", "--optimizer", "lion"], "--optimizer 'lion' is not accepted"),
    (["--batch", "0"], "--batch 0 is not accepted"),
    (["--batch", "-3"], "--batch -3 is not accepted"),
    (["--input", "16x16"], "rejects input 1x3x16x16"),
    (["--input", "axb"], "--input 'axb' is not accepted"),
    (["--mode", "eval"], "--mode 'eval' is not accepted"),
    (["--format", "xml"], "--format 'xml' is not accepted"),
    (["--device", "tpu"], "--device 'tpu' is not accepted"),
    (["--max-batch", "0"], "--max-batch 0 is not accepted"),
])
def test_bad_input_is_one_line_exit_2(capsys, argv, message):
    code, out, err = _run(capsys, "hsgdet-tiny", *argv)
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("hsgprof memory: error:")


def test_unknown_target(capsys):
    code, _, err = _run(capsys, "no-such-model")
    assert code == 2 and "unknown target" in err


def test_python_dash_m_entry_point():
    out = subprocess.run([sys.executable, "-m", "hsgprof.cli", "memory", "--help"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and "--precision" in out.stdout
