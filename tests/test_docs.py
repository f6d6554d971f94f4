"""The documentation site builds without a warning, and the README stays a newcomer's guide."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_MAX_LINES = 250


def test_readme_is_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) < README_MAX_LINES, f"README has {len(lines)} lines; move detail into docs/"


def test_readme_links_point_to_existing_docs():
    text = (ROOT / "README.md").read_text()
    targets = re.findall(r"\]\((docs/[^)#]+)", text)
    assert targets, "the README should link to the docs pages"
    missing = [t for t in targets if not (ROOT / t).is_file()]
    assert not missing, f"README links to missing pages: {missing}"


def test_every_docs_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    assert pages
    assert not [p for p in pages if p not in nav], "docs pages missing from mkdocs.yml nav"


def test_mkdocs_build_strict(tmp_path):
    """A broken link, a missing anchor or a page outside the nav fails the build (strict mode)."""
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent)) or shutil.which("mkdocs")
    if mkdocs is None:
        pytest.fail("mkdocs is not installed; install the dev extra: pip install -e '.[dev]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "index.html").is_file()
