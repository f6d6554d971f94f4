"""``hsgprof version``: the toolkit's version and the library versions results depend on."""

from __future__ import annotations

import argparse

from hsgprof import __version__
from hsgprof.provenance import git_commit, library_versions


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("version", help="print hsgprof's version, commit and library versions")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(f"hsgprof {__version__} (commit {git_commit()})")
    for name, version in library_versions().items():
        print(f"  {name} {version}")
    return 0
