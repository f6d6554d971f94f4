"""A fixed CPU reference workload: how fast this machine's host side is, in one number.

The GPU preset's wall-time estimate (``analyses/experiments_gpu_estimate.py``) measures its CPU-side
terms (drawing scenes, evaluating a run, writing results) on whatever machine runs it, and the
machines differ: this project's CPU machines have differed by about 3x per core. So the estimate
measures this reference beside those terms, states each CPU cost in units of it, and asks what the
GPU host's reference time must be for the preset to fit; ``hsgprof experiments gpu`` times the same
reference on the GPU host before its runs and records it, so the first GPU run checks the estimate's
premise instead of trusting it.

The workload is frozen (its ``VERSION`` changes with any edit, and records of different versions are
not compared). It mixes what the CPU terms spend their time on: numpy over image-sized arrays (a
noisy canvas clipped and cast, as a scene is), numpy on tiny arrays and Python control flow (box
overlap tests, as placement is), and tiny torch ops (dispatch overhead, as evaluation's bookkeeping
is). It reads process time (one core's work: another process's load does not lengthen it, though it
can still slow it through shared caches and cores: on this project's 2-core VMs one busy core made
the other's passes about 40% slower), median of ``repeats``. Because that speed moves within
seconds, a CPU term is timed with reference passes beside it (:func:`reference_pass`) and
normalised by them, not by one reference taken at another moment.
"""

from __future__ import annotations

import platform
import time
from typing import Any

import numpy as np

VERSION = 1


def _workload() -> float:
    """One pass of the frozen workload; returns a checksum (so no step can be optimised away)."""
    import torch

    rng = np.random.default_rng(0)
    acc = 0.0
    for _ in range(24):                                          # image-sized numpy: 24 canvases 128x128x3
        canvas = 0.5 + 0.1 * rng.standard_normal((128, 128, 3))
        acc += float(np.clip(canvas, 0, 1).astype(np.float32).mean())
    boxes = rng.uniform(0, 100, size=(32, 4))
    boxes[:, 2:] += boxes[:, :2]
    for i in range(3000):                                        # tiny numpy + Python: box overlaps
        b = boxes[i % 32]
        ix = np.clip(np.minimum(b[2], boxes[:, 2]) - np.maximum(b[0], boxes[:, 0]), 0, None)
        iy = np.clip(np.minimum(b[3], boxes[:, 3]) - np.maximum(b[1], boxes[:, 1]), 0, None)
        acc += float((ix * iy).max() > 10.0)
    t = torch.ones(8)
    for _ in range(3000):                                        # tiny torch ops: dispatch overhead
        t = (t * 1.0001 + 0.0001).clamp_(0, 2)
    return acc + float(t.sum())


def reference_pass() -> float:
    """Process seconds of one pass of the frozen workload (after a first call has warmed it up): to
    time beside another measurement, whose share of a noisy machine's speed it shares."""
    t = time.process_time()
    _workload()
    return time.process_time() - t


def reference_seconds(repeats: int = 5) -> dict[str, Any]:
    """Time the frozen workload ``repeats`` times after one warm-up pass; the median process time
    (seconds) and what it ran on. Run it with one torch thread, as the workers are."""
    import torch

    from hsgprof.provenance import cpu_model

    if repeats < 1:
        raise ValueError(f"repeats={repeats} is not accepted; it must be >= 1")
    _workload()                                                  # imports, allocator, caches
    times = [reference_pass() for _ in range(repeats)]
    return {"version": VERSION, "median_s": float(np.median(times)), "times_s": times, "repeats": repeats,
            "cpu": cpu_model(), "python": platform.python_version(), "numpy": np.__version__,
            "torch": torch.__version__, "torch_threads": torch.get_num_threads()}

