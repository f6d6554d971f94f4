"""Feasibility of the quick budget: does the *hybrid alone* learn to detect within it?

Run once before the quick preset's budget and token scales were fixed, to choose settings at
which the model learns at all; no other variant is trained here, so nothing in it can tell
which variant would win. Usage: python analyses/experiments_feasibility.py STEPS [key=value ...]
(model overrides, e.g. token_scales=p3,p4,p5), optional env HSGPROF_DEVICE=cuda.
"""

from __future__ import annotations

import os
import sys
import time

import torch

from hsgprof.experiments import entropy as E
from hsgprof.experiments.config import Budget, get_preset
from hsgprof.experiments.evaluate import ap_rows, make_eval_sets, object_outputs
from hsgprof.experiments.train import RunSpec, train_run


def main(argv: list[str]) -> None:
    torch.set_num_threads(int(os.environ.get("HSGPROF_THREADS", "1")))
    steps = int(argv[0])
    overrides: dict = {}
    scene: dict = {}
    for kv in argv[1:]:
        k, v = kv.split("=", 1)
        val = tuple(v.split(",")) if "," in v or k == "token_scales" else (float(v) if "." in v else int(v))
        (scene if k.startswith("scene.") else overrides)[k.removeprefix("scene.")] = val
    cfg = get_preset("quick")
    lr = overrides.pop("lr", cfg.budget.lr)
    bs = overrides.pop("batch_size", cfg.budget.batch_size)
    clip = overrides.pop("clip", cfg.budget.grad_clip)
    sc = cfg.train_scene.replace(**scene)
    cfg = cfg.replace(model_overrides=tuple(overrides.items()), train_scene=sc, val_scene=sc,
                      budget=Budget(steps=steps, lr=lr, batch_size=bs, grad_clip=clip, eval_every=max(steps // 10, 1),
                                    checkpoint_every=steps))
    sets = make_eval_sets(cfg)
    t = time.time()
    device = os.environ.get("HSGPROF_DEVICE", "cpu")
    model, log = train_run(cfg, RunSpec("hybrid", 0, tag="feasibility"), f"/tmp/feas-{os.getpid()}",
                           sets["convergence"], resume=False, progress=False, device=device)
    print(argv, f"train {time.time() - t:.0f}s")
    for r in log["eval"]:
        print(f"  step {r['step']:5d} {r['mode']:8s} AP50 {r['AP50']:.3f} AP {r['AP']:.3f}")
    out = object_outputs(model, sets["val"].scenes)
    calib = out.meta["image"].to_numpy() < len(sets["val"].scenes) // 2
    temps = E.calibrate(out, calib, cfg.prob_eps)
    for h in E.available_heads(out):
        c, b = E.per_object_nll(out, h, temps, cfg.prob_eps)
        print(f"  head {h:6s} class NLL {c[~calib].mean():.3f} bit NLL {b[~calib].mean():.3f} nats")
    tr = log["train"]
    for i in range(0, len(tr), max(len(tr) // 10, 1)):
        r = tr[i]
        print(f"  step {r['step']:5d} loss_dense {r['loss_dense']:.3f} loss_sparse {r['loss_sparse']:.3f} "
              f"grad_dense {r['grad_dense']:.3f} grad_sparse {r['grad_sparse']:.3f} total {r['grad_total']:.3f}")


if __name__ == "__main__":
    main(sys.argv[1:])
