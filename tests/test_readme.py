"""The README's two set-up commands exist, and CI runs the README's test command verbatim."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup_commands():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Set up and run", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", block, re.S)


def test_readme_has_exactly_two_setup_commands():
    commands = _setup_commands()
    assert len(commands) == 2
    main_job, tests = commands
    assert "hsgprof" in main_job and "pytest" in tests
    for cmd in commands:
        assert cmd.startswith("python3 -m venv .venv && ") and "-c constraints.txt" in cmd


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert _setup_commands()[1] in ci
