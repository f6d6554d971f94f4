"""FLOP and parameter counting for any PyTorch model, with a closed-form referee.

* :func:`count` -> :class:`CountResult` (``.params``, ``.macs``, ``.flops`` (GEMM FLOPs = 2 × MACs),
  ``.flops_all``, ``.table(by=...)``, ``.backends``, ``.check``).
* Backends (:mod:`hsgprof.counting.backends`): ``analytic`` (the referee), ``fcm``, ``fvcore``,
  ``thop``; each reports its raw figure, its unit, the FLOPs it normalises to and what it skipped.
* Formulas (:mod:`hsgprof.counting.formulas`): the registry of aten op -> shape-only rule.

Conventions are in the docs' Counting page and :func:`hsgprof.counting.formulas.conventions`.
The names below are imported on first use (:mod:`hsgprof._lazy`): importing this package, or its
light :mod:`hsgprof.counting.choices`, does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hsgprof._lazy import lazy_exports

__all__ = ["ALL_BACKENDS", "BACKEND_NAMES", "DEFAULT_BACKENDS", "CountResult", "conventions", "count", "count_modes",
           "count_torchvision", "timed_referee"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "CountResult": "hsgprof.counting.api", "count": "hsgprof.counting.api", "count_modes": "hsgprof.counting.api",
    "count_torchvision": "hsgprof.counting.api", "timed_referee": "hsgprof.counting.api",
    "conventions": "hsgprof.counting.formulas",
    "ALL_BACKENDS": "hsgprof.counting.choices:ALL", "BACKEND_NAMES": "hsgprof.counting.choices:BACKENDS",
    "DEFAULT_BACKENDS": "hsgprof.counting.choices:DEFAULT",
})

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from hsgprof.counting.api import CountResult, count, count_modes, count_torchvision, timed_referee
    from hsgprof.counting.choices import ALL as ALL_BACKENDS
    from hsgprof.counting.choices import BACKENDS as BACKEND_NAMES
    from hsgprof.counting.choices import DEFAULT as DEFAULT_BACKENDS
    from hsgprof.counting.formulas import conventions
