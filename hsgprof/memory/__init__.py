"""Memory: a device-agnostic estimate (fake tensors), CPU ground truth, CUDA measurement, 16 GB budget.

- :func:`estimate_memory` predicts one inference or training step's memory on any device
  without running it (:mod:`hsgprof.memory.estimate`);
- :func:`saved_tensor_truth` counts what a real CPU step saves for backward (the no-GPU ground
  truth the estimate is validated against, :mod:`hsgprof.memory.truth`);
- :mod:`hsgprof.memory.cuda` measures on a GPU (per-phase peaks, snapshots, OOM-safe max batch);
- :mod:`hsgprof.memory.budget` answers "does it fit a 16 GB card" from the estimate.
"""

from hsgprof.memory.estimate import MemoryEstimate, estimate_memory

__all__ = ["MemoryEstimate", "estimate_memory"]
