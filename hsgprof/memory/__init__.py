"""Memory: a device-agnostic estimate (fake tensors), CPU ground truth, CUDA measurement, card budgets.

- :func:`estimate_memory` predicts one inference or training step's memory on any device
  without running it (:mod:`hsgprof.memory.estimate`);
- :func:`saved_tensor_truth` counts what a real CPU step saves for backward (the no-GPU ground
  truth the estimate is validated against, :mod:`hsgprof.memory.truth`);
- :mod:`hsgprof.memory.cuda` measures on a GPU (per-phase peaks, snapshots, OOM-safe max batch);
- :mod:`hsgprof.memory.cards` lists the training cards with their memory and its source, and
  :mod:`hsgprof.memory.budget` answers "which batch fits that card" from the estimate.

``estimate_memory`` and ``MemoryEstimate`` are imported on first use (:mod:`hsgprof._lazy`):
importing this package, or its light :mod:`hsgprof.memory.cards` and :mod:`hsgprof.memory.choices`,
does not import torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hsgprof._lazy import lazy_exports

__all__ = ["MemoryEstimate", "estimate_memory"]

__getattr__, __dir__ = lazy_exports(__name__, {"MemoryEstimate": "hsgprof.memory.estimate",
                                               "estimate_memory": "hsgprof.memory.estimate"})

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from hsgprof.memory.estimate import MemoryEstimate, estimate_memory
