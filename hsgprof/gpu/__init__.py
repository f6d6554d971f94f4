"""``hsgprof gpu-suite``: every CUDA measurement in one time-boxed run (see :mod:`hsgprof.gpu.suite`).

This package's ``__init__`` stays free of heavy imports: the CLI reads :data:`SECTIONS` at start-up.
"""

SECTIONS = ("latency", "compiled", "profile", "memory", "snapshot", "maxbatch")

# The results files a suite run writes: kind -> (file name in the run's folder, results kind).
FILES = {"memory": ("memory.json", "memory-cuda"), "latency": ("latency.json", "latency-cuda"),
         "maxbatch": ("max_batch.json", "max-batch-16gb"), "profile": ("profile.json", "profile-cuda")}
