"""Every output path is checked writable before any stage or measurement runs (one shared helper).

For each subcommand that writes, a bad path (under a regular file, under ``/proc``, or of the
wrong kind: a folder where a file goes and the reverse) must give one line on stderr, exit code 2,
leave nothing on disk, and come before any work: the target named would fail to import, or the
function that starts the work is replaced by one that fails the test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from hsgprof.cli import main
from hsgprof.errors import HsgprofError
from hsgprof.results import check_writable

NO_TARGET = "no_such_pkg.mod:factory"          # loading it fails: reaching the model means the check came too late
LINUX_PROC = sys.platform.startswith("linux") and Path("/proc").is_dir()


def _snapshot(root: Path) -> list[Path]:
    return sorted(root.rglob("*"))


# ---------------------------------------------------------------------------------------- the helper
def test_a_writable_path_passes_and_nothing_is_created(tmp_path):
    before = _snapshot(tmp_path)
    assert check_writable(tmp_path / "a" / "b" / "out.json") == tmp_path / "a" / "b" / "out.json"
    assert check_writable(tmp_path / "new-folder" / "sub", folder=True) == tmp_path / "new-folder" / "sub"
    assert check_writable(tmp_path, folder=True) == tmp_path
    assert _snapshot(tmp_path) == before


def test_a_path_under_a_file(tmp_path):
    (tmp_path / "blocker").write_text("x")
    with pytest.raises(HsgprofError, match=r"--out '.*blocker/a/x.json' is not writable: '.*blocker' is a file"):
        check_writable(tmp_path / "blocker" / "a" / "x.json")


def test_a_folder_where_a_file_goes_and_the_reverse(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(HsgprofError, match="is a folder; give a file path"):
        check_writable(tmp_path)
    with pytest.raises(HsgprofError, match=r"--cache '.*f' is a file; give a folder"):
        check_writable(tmp_path / "f", "--cache", folder=True)


@pytest.mark.skipif(not LINUX_PROC, reason="needs Linux /proc")
def test_proc_is_refused_even_for_root():
    """os.access says /proc is writable for root; only creating a file tells the truth."""
    with pytest.raises(HsgprofError, match=r"cannot create a file in '/proc'"):
        check_writable("/proc/hsgprof-test/report.pdf")


def test_a_read_only_folder():
    """A folder without write permission is refused. Root may write anywhere, so as root the check
    runs in a child process without the capabilities that let root ignore permissions (util-linux's
    ``setpriv`` drops CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH)."""
    import shutil
    import subprocess
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="hsgprof-ro-"))
    ro = root / "ro"
    ro.mkdir()
    try:
        root.chmod(0o755)
        ro.chmod(0o555)
        target = ro / "x.json"
        if not (hasattr(os, "geteuid") and os.geteuid() == 0):
            with pytest.raises(HsgprofError, match="is not writable: cannot create a file in"):
                check_writable(target)
            return
        code = ("import sys; from hsgprof.results import check_writable\n"
                "try:\n    check_writable(sys.argv[1])\nexcept Exception as e:\n    print(e); sys.exit(3)")
        setpriv = shutil.which("setpriv")
        assert setpriv, "running as root needs util-linux's setpriv to drop the capability to ignore permissions"
        drop = "-dac_override,-dac_read_search"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        proc = subprocess.run([setpriv, f"--bounding-set={drop}", f"--inh-caps={drop}", sys.executable, "-c", code,
                               str(target)], capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 3, proc.stdout + proc.stderr
        assert "is not writable: cannot create a file in" in proc.stdout
    finally:
        ro.chmod(0o755)
        shutil.rmtree(root)


def test_an_invalid_path():
    with pytest.raises(HsgprofError, match="is not a valid path"):
        check_writable("bad\0name.json")


# ---------------------------------------------------------------------------------------- every subcommand
def _boom(*args, **kwargs):
    raise AssertionError("work started before the output path was checked")


@pytest.fixture
def no_work(monkeypatch):
    """Replace the first step of the commands whose work has no target to fail on."""
    import hsgprof.experiments.runner as runner
    import hsgprof.info.validation as validation
    import hsgprof.report.build as build

    monkeypatch.setattr(build, "run_stages", _boom)
    monkeypatch.setattr(runner, "run_specs", _boom)
    monkeypatch.setattr(validation, "run_validation", _boom)
    import hsgprof.adapters.hsgdet_experiments as hx
    monkeypatch.setattr(hx, "generate_scenes", _boom)
    import hsgprof.experiments.gpu as gpu
    monkeypatch.setattr(gpu, "run_gpu_preset", _boom)


FILE_OUTPUTS = {                                           # name -> argv given the bad path and a good folder
    "count --out": lambda bad, ok: ["count", NO_TARGET, "--out", bad],
    "memory --out": lambda bad, ok: ["memory", NO_TARGET, "--out", bad],
    "latency --out": lambda bad, ok: ["latency", NO_TARGET, "--out", bad],
    "info validate --out": lambda bad, ok: ["info", "validate", "--stages", "bias", "--out", bad,
                                            "--figures", f"{ok}/figures"],
    "report --out": lambda bad, ok: ["report", "--smoke", "--results-dir", f"{ok}/results", "--out", bad],
    "rf --out": lambda bad, ok: ["rf", NO_TARGET, "--out", bad],
    "rf --figure": lambda bad, ok: ["rf", NO_TARGET, "--figure", bad],
    "verify --out": lambda bad, ok: ["verify", f"{ok}/no-such-claims.yaml", "--out", bad],
}
FOLDER_OUTPUTS = {
    "info validate --figures": lambda bad, ok: ["info", "validate", "--stages", "bias", "--out", f"{ok}/v.json",
                                                "--figures", bad],
    "report --results-dir": lambda bad, ok: ["report", "--smoke", "--results-dir", bad, "--out", f"{ok}/r.pdf"],
    "gpu-suite --out": lambda bad, ok: ["gpu-suite", "--device", "cpu", "--out", bad],
    "experiments run --out": lambda bad, ok: ["experiments", "run", "--preset", "smoke", "--out", bad,
                                              "--cache", f"{ok}/cache", "--quiet"],
    "experiments run --cache": lambda bad, ok: ["experiments", "run", "--preset", "smoke", "--out", f"{ok}/out",
                                                "--cache", bad, "--quiet"],
    "experiments data --out": lambda bad, ok: ["experiments", "data", "--out", bad, "-n", "1"],
    "experiments gpu --out": lambda bad, ok: ["experiments", "gpu", "--out", bad],
    "experiments gpu --cache": lambda bad, ok: ["experiments", "gpu", "--out", f"{ok}/out", "--cache", bad],
}


def _bad_path(kind: str, tmp_path: Path, folder: bool) -> str:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a folder would have to be")
    name = "out" if folder else "out.pdf"               # .pdf: the report writes <out>.pdf beside <out>.md
    if kind == "under-a-file":
        return str(blocker / "sub" / name)
    if kind == "proc":
        return "/proc/hsgprof-test/" + name
    if folder:
        return str(blocker)                                 # wrong kind: a file where a folder goes
    (tmp_path / name).mkdir()                               # ... and a folder where a file goes
    return str(tmp_path / name)


@pytest.mark.parametrize("kind", ["under-a-file", "proc", "wrong-kind"])
@pytest.mark.parametrize("name", list(FILE_OUTPUTS) + list(FOLDER_OUTPUTS))
def test_a_bad_output_path_fails_first_in_one_line(name, kind, tmp_path, capsys, no_work):
    if kind == "proc" and not LINUX_PROC:
        pytest.skip("needs Linux /proc")
    folder = name in FOLDER_OUTPUTS
    bad = _bad_path(kind, tmp_path, folder)
    argv = (FOLDER_OUTPUTS if folder else FILE_OUTPUTS)[name](bad, tmp_path / "ok")
    before = _snapshot(tmp_path)
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    flag = name.split()[-1]
    assert rc == 2, err
    assert "\n" not in err and err.startswith("hsgprof ") and f"{flag} {bad!r}" in err, err
    assert any(w in err for w in ("not writable", "is a folder", "is a file")), err
    assert _snapshot(tmp_path) == before                  # nothing written, no folder created
