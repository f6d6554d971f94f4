"""``hsgprof gpu-suite``: every CUDA measurement in one time-boxed run (see :mod:`hsgprof.gpu.suite`).

This package's ``__init__`` stays free of heavy imports: the CLI reads :data:`SECTIONS` at start-up.
"""

SECTIONS = ("latency", "compiled", "profile", "memory", "snapshot", "maxbatch")
