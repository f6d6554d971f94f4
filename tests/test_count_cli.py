"""``hsgprof count``: formats, JSON keys, --out written only after success, one-line errors."""

from __future__ import annotations

import json

import pytest
from torch import nn

from hsgprof.cli import main

SMALL = ["--input", "1x3x64x96"]


def broken_factory() -> nn.Module:
    raise RuntimeError("cannot build this one")


def tiny_factory() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 2))


def run(argv, capsys):
    code = main(["count", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_has_the_referee_totals_components_and_backends(capsys):
    code, out, err = run(["hsgdet-tiny", *SMALL, "--mode", "native", "--backend", "referee,fcm,thop",
                          "--format", "json"], capsys)
    assert code == 0, err
    doc = json.loads(out)
    assert {"params", "macs", "flops", "flops_all", "per_component", "backends", "check"} <= set(doc)
    assert doc["flops"] == 2 * doc["macs"] and doc["flops_all"] >= doc["flops"]
    assert [r["component"] for r in doc["per_component"]][-1] == "Total"
    for name in ("analytic", "fcm", "thop"):
        b = doc["backends"][name]
        assert {"raw", "unit", "flops", "skipped"} <= set(b) and b["unit"] in ("MAC", "FLOP")
    assert doc["backends"]["thop"]["flops"] == 2 * doc["backends"]["thop"]["raw"]


def test_both_modes_by_default_for_presets_and_every_format(capsys, tmp_path):
    code, out, _ = run(["hsgdet-tiny", *SMALL, "--format", "json"], capsys)
    doc = json.loads(out)
    assert code == 0 and set(doc["modes"]) == {"native", "padded"} and doc["mode"] == "native"
    assert doc["modes"]["padded"]["network_input"] == [1, 3, 64, 96]
    for fmt, marker in (("md", "| component"), ("csv", "component,"), ("latex", "\\begin{tabular}")):
        code, out, _ = run(["hsgdet-tiny", *SMALL, "--mode", "padded", "--format", fmt], capsys)
        assert code == 0 and marker in out
    code, out, _ = run(["hsgdet-tiny", *SMALL, "--mode", "native", "--by", "op"], capsys)
    assert code == 0 and "family" in out and "convolution×" in out
    code, out, _ = run(["hsgdet-tiny", *SMALL, "--mode", "native", "--by", "module", "--depth", "1"], capsys)
    assert code == 0 and "| backbone" in out


def test_any_model_by_factory_and_out_file(capsys, tmp_path):
    out_file = tmp_path / "r.json"
    code, out, err = run([f"{__name__}:tiny_factory", "--input", "2x3x8x8", "--format", "json", "--out",
                          str(out_file)], capsys)
    assert code == 0 and out == "" and "wrote" in err
    doc = json.loads(out_file.read_text())
    assert doc["macs"] == 2 * 4 * 8 * 8 * 3 * 9 + 2 * 4 * 2
    assert doc["params"] == 4 * 3 * 9 + 4 + 4 * 2 + 2


@pytest.mark.parametrize("argv, needle", [
    (["no-such-model"], "unknown target"),
    (["nosuchpackage.mod:factory"], "cannot import"),
    ([f"{__name__}:broken_factory"], "cannot build this one"),
    (["hsgdet-tiny", "--input", "1x3x16x16"], "below the largest stride"),
    (["hsgdet-tiny", "--input", "1x3x64"], "--input"),
    (["hsgdet-tiny", "--backend", "flopsy"], "unknown backend"),
    (["hsgdet-tiny", "--format", "xml"], "--format"),
    (["hsgdet-tiny", "--mode", "stretched"], "--mode"),
    (["hsgdet-tiny", "--by", "layer"], "--by"),
    (["hsgdet-tiny", "--depth", "-1"], "--depth"),
    (["hsgdet-tiny", "--set", "num_tokens"], "--set"),
    (["hsgdet-tiny", "--set", "no_such_field=3"], "unknown config field"),
])
def test_bad_input_is_one_line_exit_2_and_no_file(capsys, tmp_path, argv, needle):
    out_file = tmp_path / "out.md"
    code, out, err = run([*argv, "--out", str(out_file)], capsys)
    assert code == 2
    assert needle in err and err.count("\n") == 1 and err.startswith("hsgprof count: error:")
    assert not out_file.exists() and list(tmp_path.iterdir()) == []


def test_out_keeps_the_old_file_when_the_count_fails(capsys, tmp_path):
    out_file = tmp_path / "out.md"
    out_file.write_text("previous result\n")
    code, _, _ = run(["hsgdet-tiny", "--input", "1x3x16x16", "--out", str(out_file)], capsys)
    assert code == 2 and out_file.read_text() == "previous result\n"


def test_the_docs_synopsis_lists_every_backend_the_cli_accepts():
    import re
    from pathlib import Path

    from hsgprof.counting import BACKEND_NAMES
    from hsgprof.counting.backends import parse_backends

    doc = (Path(__file__).resolve().parent.parent / "docs" / "counting.md").read_text()
    section = doc.split("## Command line", 1)[1].split("```", 2)[1]
    listed = re.search(r"\[--backend ([^\]]+)\]", section).group(1)
    names = [n.strip() for n in re.split(r"[,|]", listed) if n.strip()]
    assert set(names) == {*BACKEND_NAMES, "referee", "all", "peers"}
    parse_backends(",".join(names))                         # and the CLI accepts every one of them
