"""The hsgprof command: help, version, model summary, one-line errors."""

import subprocess
import sys

import pytest

from hsgprof.cli import main


def test_help_lists_subcommands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("version", "model"):
        assert command in out


def test_version(capsys):
    assert main(["version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("hsgprof ") and "torch " in out


def test_model_summary_prints_components(capsys):
    assert main(["model", "summary", "hsgdet-l"]) == 0
    out = capsys.readouterr().out
    for name in ("backbone.stem", "backbone.global_block", "neck.token_extractor", "head.sparse",
                 "Stem", "P5 stage", "Token fusion", "Sparse head", "Total"):
        assert name in out


def test_model_summary_of_any_module(capsys):
    assert main(["model", "summary", "torch.nn:Identity", "--format", "csv"]) == 0
    assert "path,type,depth,params" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["model", "summary", "nope"], "unknown target 'nope'"),
    (["model", "summary", "no_such_pkg.x:f"], "cannot import 'no_such_pkg.x'"),
    (["model", "summary", "torch.nn:NoSuch"], "no callable 'NoSuch'"),
    (["model", "summary", "hsgdet-l", "--format", "xml"], "--format 'xml' is not accepted"),
])
def test_bad_input_is_one_line(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "hsgprof.cli", "model", "summary", "yolov8l-ref"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "43,691,504" in out.stdout
