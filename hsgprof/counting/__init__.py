"""FLOP and parameter counting for any PyTorch model, with a closed-form referee.

* :func:`count` -> :class:`CountResult` (``.params``, ``.macs``, ``.flops`` (GEMM FLOPs = 2 × MACs),
  ``.flops_all``, ``.table(by=...)``, ``.backends``, ``.check``).
* Backends (:mod:`hsgprof.counting.backends`): ``analytic`` (the referee), ``fcm``, ``fvcore``,
  ``thop``; each reports its raw figure, its unit, the FLOPs it normalises to and what it skipped.
* Formulas (:mod:`hsgprof.counting.formulas`): the registry of aten op -> shape-only rule.

Conventions are in docs/counting.md and :func:`hsgprof.counting.formulas.conventions`.
"""

from hsgprof.counting.api import CountResult, count, count_modes, count_torchvision, timed_referee
from hsgprof.counting.backends import ALL as ALL_BACKENDS
from hsgprof.counting.backends import DEFAULT as DEFAULT_BACKENDS
from hsgprof.counting.backends import NAMES as BACKEND_NAMES
from hsgprof.counting.formulas import conventions

__all__ = ["ALL_BACKENDS", "BACKEND_NAMES", "DEFAULT_BACKENDS", "CountResult", "conventions", "count", "count_modes",
           "count_torchvision", "timed_referee"]
