"""``hsgprof experiments``: run the declared theory experiments, show their config and verdicts,
and export the synthetic scenes as a COCO dataset."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from hsgprof.errors import HsgprofError
from hsgprof.results import check_writable


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("experiments", help="theory experiments: entropy theorem, occlusion, stability, dense scenes")
    esub = p.add_subparsers(dest="experiments_command", metavar="ACTION")

    r = esub.add_parser("run", help="train the variants, evaluate, and write tidy results with verdicts")
    mode = r.add_mutually_exclusive_group()
    mode.add_argument("--quick", dest="preset", action="store_const", const="quick",
                      help="the CPU quick set (default): 3 variants + 2 controls × 2 seeds, 64×256 scenes")
    mode.add_argument("--full", dest="preset", action="store_const", const="full",
                      help="the GPU preset (full) here; on a GPU machine prefer 'hsgprof experiments gpu'")
    mode.add_argument("--preset", dest="preset", help="a named preset: smoke, quick, full, far")
    r.add_argument("--out", default=None, help="results folder (default reports/results/experiments-<preset>)")
    r.add_argument("--cache", default=None, help="run cache (default $HSGPROF_CACHE/experiments or "
                                                  "reports/cache/experiments)")
    r.add_argument("--resume", action=argparse.BooleanOptionalAction, default=True,
                   help="reuse finished runs and resume interrupted ones (default); --no-resume retrains")
    r.add_argument("--device", default="cpu", help="torch device for training, e.g. cpu or cuda (default cpu)")
    r.add_argument("--workers", type=int, default=None,
                   help="runs trained at once, one torch thread each (default: CPU count on CPU, 1 on GPU)")
    r.add_argument("--quiet", action="store_true", help="no progress output")
    scale = r.add_argument_group("where runs execute (docs/scale-out.md)")
    scale.add_argument("--backend", default="local", choices=("local", "ray"),
                       help="local: a process pool on this machine (default); ray: one Ray task per run "
                            "(needs pip install 'hsgprof[ray]')")
    scale.add_argument("--address", default=None,
                       help="Ray cluster to join (e.g. auto, HOST:6379, ray://HOST:10001); default: "
                            "RAY_ADDRESS, else a local Ray instance for this command")
    scale.add_argument("--gpus-per-run", type=float, default=1.0,
                       help="GPUs each Ray task asks for with --device cuda (default 1; 0.25 packs 4 runs per GPU)")
    scale.add_argument("--max-retries", type=int, default=3,
                       help="times Ray retries a run whose worker died (it resumes from its checkpoint; default 3)")
    data = r.add_argument_group("the images (docs/experiments.md, 'Your own data')")
    data.add_argument("--data", default="synthetic",
                      help="synthetic (default: the declared scenes) or coco:ANNOTATIONS.json:IMAGE_DIR")
    data.add_argument("--holdout", type=float, default=None,
                      help="with --data coco: fraction of images held out by image-id hash (default 0.2)")
    data.add_argument("--split-seed", type=int, default=None, help="with --data coco: seed of the split hash (default 0)")
    data.add_argument("--image-size", default=None,
                      help="with --data coco: S or HxW, multiples of 32 (default: a square of the preset's scene height)")
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
    c.add_argument("preset", nargs="?", default="quick", help="smoke, quick, full or far (default quick)")
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
    from hsgprof.experiments.executors import get_executor

    cfg = get_preset(args.preset or "quick")
    command = "hsgprof " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else None
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise HsgprofError(f"--device {args.device!r} needs CUDA, which this machine does not have; use --device cpu")
    if args.workers is not None and args.workers < 1:
        raise HsgprofError(f"--workers {args.workers} is not accepted; give 1 or more")
    if args.max_retries < 0:
        raise HsgprofError(f"--max-retries {args.max_retries} is not accepted; give 0 or more")
    cfg = _with_data_args(cfg, args)
    # Checked before anything is written: a bad switch leaves no cache folder or results behind.
    executor = get_executor(args.backend, args.workers, args.address, args.device, args.gpus_per_run,
                            args.max_retries)
    try:
        paths = run_experiment(cfg, args.out, args.cache, resume=args.resume, progress=not args.quiet,
                               device=args.device, command=command, workers=args.workers,
                               backend="local" if args.backend == "local" else executor)
    finally:
        executor.close()
    summary_cmd(argparse.Namespace(folder=str(paths["summary"].parent), format="md"))
    if "ap_summary" in paths and cfg.data is not None:
        from hsgprof.results import render_table, results_frame

        print("\nCOCO AP on the held-out images (mean over seeds):")
        print(render_table(results_frame(paths["ap_summary"]).round(4), "md"))
    print(f"\nresults: {paths['summary'].parent}")
    return 0


def _with_data_args(cfg, args: argparse.Namespace):
    """The preset on ``--data`` (synthetic: unchanged; coco: the declared source and split)."""
    from hsgprof.experiments.datasource import CocoSource, parse_data, parse_size

    coco = parse_data(args.data)
    if coco is None:
        given = [f"--{n.replace('_', '-')}" for n in ("holdout", "split_seed", "image_size") if getattr(args, n) is not None]
        if given:
            raise HsgprofError(f"{', '.join(given)} only apply to --data coco:ANNOTATIONS.json:IMAGE_DIR")
        return cfg
    from hsgprof.experiments.coco_eval import with_data

    side = cfg.train_scene.height
    size = parse_size(args.image_size) if args.image_size else (side, side)
    source = CocoSource.declare(*coco, holdout=0.2 if args.holdout is None else args.holdout,
                                split_seed=0 if args.split_seed is None else args.split_seed, size=size)
    return with_data(cfg, source)


def gpu_cmd(args: argparse.Namespace) -> int:
    from hsgprof.experiments import get_preset
    from hsgprof.experiments.gpu import run_gpu_preset

    get_preset(args.preset)                                     # a bad name fails before CUDA is touched
    if args.workers is not None and args.workers < 1:
        raise HsgprofError(f"--workers {args.workers} is not accepted; give 1 or more")
    for flag, path in (("--out", args.out), ("--cache", args.cache)):
        if path:
            check_writable(path, flag, folder=True)          # before CUDA is touched or anything trains
    command = "hsgprof " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv else None
    rec = run_gpu_preset(Path(args.out) if args.out else None, args.preset, args.workers, args.tests,
                         command or "", cache_dir=args.cache)
    return 0 if rec.get("gpu_tests_rc", 0) == 0 else 1


def config_cmd(args: argparse.Namespace) -> int:
    from hsgprof.experiments import get_preset
    from hsgprof.experiments.learnability import budget_check, reach_check

    cfg = get_preset(args.preset)
    print(json.dumps({"key": cfg.key(), **cfg.to_dict()}, indent=2, default=str))
    print(f"learnability: {budget_check(cfg)['text']}", file=sys.stderr)      # stdout stays the config's JSON
    print(f"reach: {reach_check(cfg)['text']}", file=sys.stderr)
    return 0


def summary_cmd(args: argparse.Namespace) -> int:
    from hsgprof.results import render_table, results_frame

    path = Path(args.folder) / "experiments_summary.json"
    kind = "experiments.summary"
    if not path.exists() and (Path(args.folder) / "experiments_coco_summary.json").exists():
        path, kind = Path(args.folder) / "experiments_coco_summary.json", "experiments.coco_summary"
    if args.format not in ("md", "csv", "json"):
        raise HsgprofError(f"--format {args.format!r} is not accepted; choose md, csv or json")
    df = results_frame(path, kind)
    cols = [c for c in ("claim", "measurement", "value", "ci_low", "ci_high", "unit", "verdict") if c in df]
    print(render_table(df[cols].round(4) if args.format == "md" else df, args.format))
    return 0


def data_cmd(args: argparse.Namespace) -> int:
    from hsgprof.experiments import get_preset
    from hsgprof.adapters.hsgdet_experiments import generate_scenes, save_scenes

    if args.n < 1:
        raise HsgprofError(f"-n {args.n} is not accepted; give at least 1 image")
    check_writable(args.out, "--out", folder=True)
    cfg = get_preset(args.preset)
    scene = {"train": cfg.train_scene, "val": cfg.val_scene, "occlusion": cfg.occlusion_scene,
             "dense": cfg.dense_scene}[args.set]
    path = save_scenes(args.out, generate_scenes(scene, args.n, args.seed), scene.num_classes)
    print(f"wrote {args.n} images and {path}")
    return 0
