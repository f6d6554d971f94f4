"""Counting backends behind one interface (:class:`~hsgprof.counting.backends.base.Backend`).

``analytic`` is the referee; ``fcm``, ``fvcore`` and ``thop`` wrap the existing counters. A name
may carry ``@cpu`` (real tensors) or ``@meta``; plain names use meta where the model allows.
"""

from __future__ import annotations

from typing import Callable

from hsgprof.counting.backends.analytic import AnalyticBackend
from hsgprof.counting.backends.base import Backend, BackendResult, Job
from hsgprof.counting.backends.fcm import FCMBackend
from hsgprof.counting.backends.fvcore import FvcoreBackend
from hsgprof.counting.backends.peers import CalflopsBackend, PtflopsBackend, TorchprofileBackend
from hsgprof.counting.backends.thop import ThopBackend
from hsgprof.counting import choices
from hsgprof.errors import HsgprofError

_FACTORIES: dict[str, Callable[[], Backend]] = {
    "analytic": lambda: AnalyticBackend("auto"),
    "analytic@meta": lambda: AnalyticBackend("meta"),
    "analytic@cpu": lambda: AnalyticBackend("cpu"),
    "fcm": lambda: FCMBackend("auto"),
    "fcm@meta": lambda: FCMBackend("meta"),
    "fcm@cpu": lambda: FCMBackend("cpu"),
    "fvcore": FvcoreBackend,
    "thop": lambda: ThopBackend("auto"),
    "thop@cpu": lambda: ThopBackend("cpu"),
    # optional peers (pip install -e '.[peers]'); a missing package gives a row with its error
    "ptflops": lambda: PtflopsBackend("pytorch"),
    "ptflops-aten": lambda: PtflopsBackend("aten"),
    "calflops": CalflopsBackend,
    "torchprofile": TorchprofileBackend,
}
ALIASES = choices.ALIASES
ALL = choices.ALL
PEERS = choices.PEERS
DEFAULT = choices.DEFAULT
NAMES = choices.BACKENDS
if tuple(_FACTORIES) != NAMES:          # the CLI's help reads choices without importing torch: keep them equal
    raise RuntimeError(f"hsgprof.counting.choices.BACKENDS {NAMES} differs from the backends built here "
                       f"{tuple(_FACTORIES)}")


def parse_backends(spec: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """``"all"``, ``"fcm,thop"`` or a sequence -> canonical backend names, referee first, no repeats."""
    if spec is None:
        return DEFAULT
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        expanded = ALL if item == "all" else PEERS if item == "peers" else (ALIASES.get(item, item),)
        for n in expanded:
            if n not in _FACTORIES:
                raise HsgprofError(f"unknown backend {item!r}; accepted: all, peers, referee, {', '.join(NAMES)}")
            if n not in names:
                names.append(n)
    if not names:
        raise HsgprofError("no backend given; accepted: all, referee, " + ", ".join(NAMES))
    names = [n for n in names if n.startswith("analytic")] + [n for n in names if not n.startswith("analytic")]
    if not names[0].startswith("analytic"):
        names.insert(0, "analytic")          # the referee always runs: every other figure is set beside it
    return tuple(names)


def make(name: str) -> Backend:
    return _FACTORIES[name]()


__all__ = ["ALL", "DEFAULT", "NAMES", "PEERS", "Backend", "BackendResult", "Job", "make", "parse_backends",
           "AnalyticBackend", "FCMBackend", "FvcoreBackend", "ThopBackend"]
