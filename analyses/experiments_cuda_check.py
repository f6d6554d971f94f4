"""A few steps of every variant on CUDA, then evaluation: checks the --full code path on a GPU.

Usage: python analyses/experiments_cuda_check.py  (needs CUDA; prints AP rows and object counts)
"""

from __future__ import annotations

import tempfile
import time

import torch

from hsgprof.experiments.config import Budget, get_preset
from hsgprof.experiments.evaluate import make_eval_sets
from hsgprof.experiments.runner import run_one
from hsgprof.experiments.train import RunSpec


def main() -> None:
    if not torch.cuda.is_available():
        raise SystemExit("needs CUDA")
    cfg = get_preset("smoke").replace(budget=Budget(steps=20, batch_size=8, eval_every=10, checkpoint_every=10))
    sets = make_eval_sets(cfg)
    with tempfile.TemporaryDirectory() as d:
        for variant in ("hybrid", "grid-only", "sparse-only"):
            t = time.time()
            rec = run_one(cfg, RunSpec(variant, 0), sets, __import__("pathlib").Path(d), progress=False, device="cuda")
            print(variant, f"{time.time() - t:.1f}s", "eval rows", len(rec["log"]["eval"]), "ap rows", len(rec["ap"]),
                  "objects", len(rec["objects"]["val"].meta), torch.cuda.get_device_name(0))


if __name__ == "__main__":
    main()
