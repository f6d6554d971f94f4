"""``hsgprof experiments``: run the declared theory experiments, show their config and verdicts,
and export the synthetic scenes as a COCO dataset."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from hsgprof.errors import HsgprofError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiments", help="theory experiments: entropy theorem, occlusion, stability, dense scenes")
    esub = p.add_subparsers(dest="experiments_command", metavar="ACTION")

    r = esub.add_parser("run", help="train the variants, evaluate, and write tidy results with verdicts")
    mode = r.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="preset", action="store_const", const="quick",
                      help="the CPU quick set (default): 3 variants + 2 controls × 2 seeds, 64×256 scenes")
    mode.add_argument("--full", dest="preset", action="store_const", const="full",
                      help="the GPU preset (full) here; on a GPU machine prefer 'hsgprof experiments gpu'")
    mode.add_argument("--preset", dest="preset", help="a named preset: smoke, quick, full")
    r.add_argument("--out", default=None, help="results folder (default reports/results/experiments-<preset>)")
    r.add_argument("--cache", default=None, help="run cache (default $HSGPROF_CACHE/experiments or "
                                                  "reports/cache/experiments)")
    r.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="reuse finished runs and resume interrupted ones (default); --no-resume retrains")
    r.add_argument("--device", default="cpu", help="torch device for training, e.g. cpu or cuda (default cpu)")
    r.add_argument("--workers", type=int, default=None,
                   help="runs trained at once, one torch thread each (default: CPU count on CPU, 1 on GPU)")
    r.add_argument("--quiet", action="store_true", help="no progress output")
    r.set_defaults(func=run_cmd, preset=None)

    g = esub.add_parser("gpu", help="the GPU preset on cuda, its results, the gpu tests and provenance, written "
                                    "under reports/measurements/<gpu>-<date>/experiments/ (needs CUDA)")
    g.add_argument("--out", default=None, help="folder (default reports/measurements/<gpu-slug>-<date>/experiments)")
    g.add_argument("--preset", default="full", help="preset to run (default full, the GPU preset)")
    g.add_argument("--workers", type=int, default=None, help="runs trained at once on the GPU (default: CPUs / 2)")
    g.add_argument("--no-tests", dest="tests", action="store_false", help="skip pytest -m gpu")
    g.add_argument("--cache", default=None, help="run cache (default $HSGPROF_CACHE/experiments)")
    g.set_defaults(func=gpu_cmd)

    c = esub.add_parser("config", help="print a preset's declared config (JSON)")
    c.add_argument("preset", nargs="?", default="quick", help="smoke, quick or full (default quick)")
    c.set_defaults(func=config_cmd)

    s = esub.add_parser("summary", help="print the verdict table of a results folder")
    s.add_argument("folder", nargs="?", default="reports/results/experiments-quick")
    s.add_argument("--format", default="md", help="md, csv or json (default md)")
    s.set_defaults(func=summary_cmd)

    d = esub.add_parser("data", help="write synthetic scenes as a COCO dataset (PNG images + JSON)")
    d.add_argument("--out", required=True, help="folder to write (images/ and annotations.json)")
    d.add_argument("--set", default="val", choices=("train", "val", "occlusion", "dense"),
                   help="which declared scene config to draw from (default val)")
    d.add_argument("--preset", default="quick", help="experiment preset whose scene configs to use")
    d.add_argument("-n", type=int, default=64, help="number of images (default 64)")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=data_cmd)
    p.set_defaults(func=lambda args: p.print_help() or 2)


def run_cmd(args: argparse.Namespace) -> int:
    from hsgprof.experiments import get_preset, run_experiment

    cfg = get_preset(args.preset or "quick")
    command = "hsgprof " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else None
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise HsgprofError(f"--device {args.device!r} needs CUDA, which this machine does not have; use --device cpu")
    if args.workers is not None and args.workers < 1:
        raise HsgprofError(f"--workers {args.workers} is not accepted; give 1 or more")
    paths = run_experiment(cfg, args.out, args.cache, resume=args.resume, progress=not args.quiet,
                           device=args.device, command=command, workers=args.workers)
    summary_cmd(argparse.Namespace(folder=str(paths["summary"].parent), format="md"))
    print(f"\nresults: {paths['summary'].parent}")
    return 0


def gpu_cmd(args: argparse.Namespace) -> int:
    from hsgprof.experiments import get_preset
    from hsgprof.experiments.gpu import run_gpu_preset

    get_preset(args.preset)                                     # a bad name fails before CUDA is touched
    if args.workers is not None and args.workers < 1:
        raise HsgprofError(f"--workers {args.workers} is not accepted; give 1 or more")
    command = "hsgprof " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else None
    rec = run_gpu_preset(Path(args.out) if args.out else None, args.preset, args.workers, args.tests,
                         command or "", cache_dir=args.cache)
    return 0 if rec.get("gpu_tests_rc", 0) == 0 else 1


def config_cmd(args: argparse.Namespace) -> int:
    from hsgprof.experiments import get_preset

    cfg = get_preset(args.preset)
    print(json.dumps({"key": cfg.key(), **cfg.to_dict()}, indent=2, default=str))
    return 0


def summary_cmd(args: argparse.Namespace) -> int:
    from hsgprof.results import render_table, results_frame

    path = Path(args.folder) / "experiments_summary.json"
    if args.format not in ("md", "csv", "json"):
        raise HsgprofError(f"--format {args.format!r} is not accepted; choose md, csv or json")
    df = results_frame(path, "experiments.summary")
    cols = [c for c in ("claim", "measurement", "value", "ci_low", "ci_high", "unit", "verdict") if c in df]
    print(render_table(df[cols].round(4) if args.format == "md" else df, args.format))
    return 0


def data_cmd(args: argparse.Namespace) -> int:
    from hsgprof.experiments import get_preset
    from hsgprof.adapters.hsgdet_experiments import generate_scenes, save_scenes

    if args.n < 1:
        raise HsgprofError(f"-n {args.n} is not accepted; give at least 1 image")
    cfg = get_preset(args.preset)
    scene = {"train": cfg.train_scene, "val": cfg.val_scene, "occlusion": cfg.occlusion_scene,
             "dense": cfg.dense_scene}[args.set]
    path = save_scenes(args.out, generate_scenes(scene, args.n, args.seed), scene.num_classes)
    print(f"wrote {args.n} images and {path}")
    return 0
