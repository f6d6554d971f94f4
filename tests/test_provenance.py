"""Provenance names the code a process ran, whatever HEAD is when its file is finally written."""

import subprocess

import hsgprof.provenance as P
from hsgprof.results import read_results, write_results


def test_commit_is_taken_when_the_process_starts(tmp_path, monkeypatch):
    monkeypatch.delenv("HSGPROF_COMMIT", raising=False)
    started = P.process_commit()
    head = subprocess.run(["git", "-C", str(P.REPO_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:
        assert started.split("+")[0] == head.stdout.strip()          # this checkout, at import time
    monkeypatch.setattr(P, "git_commit", lambda *a, **k: "a-later-head")  # someone commits mid-run
    doc = read_results(write_results(tmp_path / "r.json", "test.kind", [{"a": 1}], command="test"))
    assert doc["provenance"]["commit"] == started


def test_environment_override_and_library_versions(tmp_path, monkeypatch):
    monkeypatch.setenv("HSGPROF_COMMIT", "0123abc")
    doc = read_results(write_results(tmp_path / "r.json", "test.kind", [{"a": 1}], command="test"))
    assert doc["provenance"]["commit"] == "0123abc"
    libs = doc["provenance"]["libraries"]
    assert {"torch", "scikit-learn", "ennemi", "hsgprof"} <= set(libs)
    assert all(isinstance(v, str) and v for v in libs.values())


def test_atomic_writes_get_the_permissions_open_would_give(tmp_path):
    """A temporary file from mkstemp is 0600; the written file must follow the umask like open() does."""
    import os

    from hsgprof.results import atomic_write_text

    old = os.umask(0o022)
    try:
        written = atomic_write_text(tmp_path / "r.md", "x")
        plain = tmp_path / "plain.md"
        plain.write_text("x")
        assert written.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o644
    finally:
        os.umask(old)
