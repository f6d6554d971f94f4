"""``hsgprof memory``: formats, the JSON fields the issue names, one-line errors, max-batch prediction."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

from hsgprof.cli import main
from hsgprof.errors import HsgprofError
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


# ---------------------------------------------------------------- issue 16: any model, cards and their sources
def test_a_model_without_adapter_gets_rows_per_top_level_module_as_count_groups_it(capsys):
    """resnet18 has no adapter: memory's rows are its top-level modules, the same grouping count uses."""
    code, out, err = _run(capsys, "torchvision.models:resnet18", "--input", "1x3x64x64", "--mode", "train",
                          "--optimizer", "sgd", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    rows = {r["component"]: r for r in doc["per_component"]}
    assert {"conv1", "bn1", "layer1", "layer4", "fc"} <= set(rows)
    assert sum(r["params_bytes"] for r in rows.values()) == doc["params_bytes"]
    assert "(other)" not in rows or rows["(other)"]["params_bytes"] == 0      # every parameter has its module
    assert rows["layer4"]["saved_bytes"] > 0 and rows["fc"]["grads_bytes"] > 0
    assert main(["count", "torchvision.models:resnet18", "--input", "1x3x64x64", "--backend", "referee",
                 "--format", "json"]) == 0
    counted = {r["component"] for r in json.loads(capsys.readouterr().out)["per_component"]}
    assert set(rows) - {"(loss)", "(other)"} <= counted                       # one grouping, not two


def test_every_card_has_its_reading_verbatim_and_a_source():
    import re

    from hsgprof.memory.cards import CARDS, KINDS, GiB, MiB
    for name in ("A100-40GB", "A100-80GB", "H100-80GB", "L4", "A10G", "RTX-3090", "RTX-4090", "T4", "V100-16GB",
                 "V100-32GB"):
        assert name in CARDS
    for c in CARDS.values():
        assert c.kind in KINDS and c.source and c.device, c
        if c.kind == "cuda":                         # "N MBytes (B bytes)": the two agree with the figure
            mbytes, nbytes = map(int, re.fullmatch(r"(\d+) MBytes \((\d+) bytes\)", c.reported).groups())
            assert nbytes == c.total_bytes and mbytes == round(c.total_bytes / MiB), c   # deviceQuery rounds
        elif c.kind == "nvidia-smi":
            assert int(re.fullmatch(r"(\d+) ?MiB", c.reported).group(1)) * MiB == c.total_bytes, c
        else:
            gib = float(re.fullmatch(r"([\d.]+) GiB total capacity", c.reported).group(1))
            assert c.total_bytes == round(gib * GiB), c


def test_card_errors_name_the_value_and_the_accepted_ones(capsys):
    from hsgprof.memory.cards import card
    with pytest.raises(HsgprofError, match="unknown card 'P100'; accepted: A100-40GB, "):
        card("P100")
    with pytest.raises(HsgprofError, match="context of 16384 MiB is not accepted for T4"):
        card("T4", 16 << 30)
    code, _, err = _run(capsys, "hsgdet-tiny", "--card", "P100")
    assert code == 2 and "--card 'P100' is not accepted; choose one of A100-40GB" in err and err.count("\n") == 1


def test_card_without_max_batch_runs_the_search(capsys):
    """--card alone is not ignored: it searches up to batch 64 and says so."""
    code, out, err = _run(capsys, "hsgdet-tiny", "--input", "64x96", "--card", "H100-80GB", "--format", "json")
    assert code == 0, err
    mb = json.loads(out)["max_batch"]
    assert mb["card"] == "H100-80GB" and mb["search_cap"] == 64 and mb["search_cap_from"] == "default"
    assert mb["card_total_bytes"] == 85_045_477_376 and mb["card_total_kind"] == "cuda"
    code, out, err = _run(capsys, "hsgdet-tiny", "--input", "64x96", "--context-mib", "1024", "--max-batch", "2")
    assert code == 0, err
    assert "Largest batch predicted to fit V100-16GB" in out and "1024 MiB context" in out and "source:" in out
    code, out, _ = _run(capsys, "hsgdet-tiny", "--input", "64x96")
    assert code == 0 and "Largest batch" not in out                  # no card flag: no search


def test_cards_lists_every_card_with_its_source(capsys):
    from hsgprof.memory.cards import CARDS
    code, out, err = _run(capsys, "--cards")
    assert code == 0, err
    for c in CARDS.values():
        assert c.name in out and c.source in out
    code, out, _ = _run(capsys, "--cards", "--format", "csv")
    assert code == 0 and out.startswith("card,total_bytes")
    code, _, err = _run(capsys)
    assert code == 2 and "give a TARGET" in err


def test_the_docs_card_table_is_the_module_s():
    """docs/memory.md shows every card with the figure, reading, kind, driver and source of hsgprof/memory/cards.py."""
    from pathlib import Path

    from hsgprof.memory.cards import CARDS
    text = (Path(__file__).resolve().parent.parent / "docs" / "memory.md").read_text()
    rows = {cells[0]: cells for cells in (
        [c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
        if line.startswith("| ") and not line.startswith("| card"))}
    for c in CARDS.values():
        cells = rows.get(c.name)
        assert cells is not None, f"{c.name} missing from docs/memory.md"
        assert int(cells[1].replace(",", "")) == c.total_bytes and cells[3] == c.reported and cells[4] == c.kind
        assert cells[6] == (c.driver or "-")
        path = c.source.rpartition(":")[2] if "@" in c.source else c.source
        assert path in cells[7], (c.name, cells[7])
