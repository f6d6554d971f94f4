"""The ``hsgprof`` command.

Subcommands live one per module in :mod:`hsgprof.commands`; each module defines
``register(subparsers)`` and is discovered automatically, so adding a subcommand never
touches this file. Library functions return data; only the subcommands print.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from typing import Sequence

from hsgprof import __version__, commands
from hsgprof.errors import HsgprofError


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand in :mod:`hsgprof.commands` registered."""
    parser = argparse.ArgumentParser(
        prog="hsgprof",
        description="Measure a detector design: params, FLOPs, memory, latency, information, claims.")
    parser.add_argument("--version", action="version", version=f"hsgprof {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{commands.__name__}.{info.name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run one subcommand; bad input gives one line on stderr and exit code 2."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0 if args.command is None else 2
    try:
        return int(args.func(args) or 0)
    except HsgprofError as exc:
        print(f"hsgprof {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"hsgprof {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
