"""Run a declared experiment end to end: train every run, evaluate it, write tidy results.

Runs are cached under ``<cache>/<config key>/<run key>/``: ``checkpoint.pt`` (resumable
training), then ``record.json`` (logs, AP rows) and ``objects_*.npz`` (per-object outputs) once
the run is evaluated. A rerun with the same config reuses finished runs; an interrupted run
resumes from its last checkpoint. The config key hashes every declared field, so changing the
generator, the budget or a metric can never silently reuse old runs.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np
from tqdm.auto import tqdm

from hsgprof.errors import HsgprofError
from hsgprof.experiments.config import ExperimentConfig, get_preset
from hsgprof.experiments.evaluate import MODES_BY_VARIANT, EvalSet, ObjectOutputs, ap_rows, make_eval_sets, \
    object_outputs
from hsgprof.experiments.train import RunSpec, train_run
from hsgprof.results import atomic_write_bytes, atomic_write_text

DEFAULT_OUT = Path("reports/results")
OBJECT_SETS = ("val", "occlusion")


def default_cache_dir() -> Path:
    """``$HSGPROF_CACHE/experiments`` or ``reports/cache/experiments`` (git-ignored)."""
    root = os.environ.get("HSGPROF_CACHE")
    return Path(root) / "experiments" if root else Path("reports/cache/experiments")


def run_specs(cfg: ExperimentConfig) -> list[RunSpec]:
    """Every training run the config declares: variants × seeds, the controls × seeds, then the capacity sweep."""
    specs = [RunSpec(v, s) for s in cfg.seeds for v in cfg.variants]
    specs += [RunSpec(c.variant, s, tag=c.tag, overrides=c.model, scene=c.scene) for s in cfg.seeds for c in cfg.controls]
    if "hybrid" in cfg.variants:
        default = cfg.default_capacity()
        for cap in cfg.capacity:
            if cap.overrides() == default:
                continue                                     # the main hybrid runs are this point
            for s in cfg.capacity_seeds:
                specs.append(RunSpec("hybrid", s, tag=f"cap-{cap.name}",
                                     overrides=tuple(sorted(cap.overrides().items()))))
    return specs


def _record_paths(run_dir: Path, spec: RunSpec | None = None) -> tuple[Path, dict[str, Path]]:
    names = ("val",) if spec is not None and spec.is_control else OBJECT_SETS
    return run_dir / "record.json", {s: run_dir / f"objects_{s}.npz" for s in names}


def eval_sets(cfg: ExperimentConfig, spec: RunSpec, cache: dict | None = None) -> dict[str, EvalSet]:
    """The evaluation sets of a run (a control's carry its scene overrides), built once per ``cache``."""
    cache = {} if cache is None else cache
    key = (cfg.key(), spec.scene)
    if key not in cache:
        cache[key] = make_eval_sets(cfg, spec.scene)
    return cache[key]


def evaluate_run(model: Any, spec: RunSpec, sets: dict[str, EvalSet], cfg: ExperimentConfig
                 ) -> tuple[list[dict[str, Any]], dict[str, ObjectOutputs]]:
    """AP rows (val overall and by occlusion, occlusion set by occlusion, dense set by density)
    and per-object outputs (val, occlusion) of one trained run."""
    modes = MODES_BY_VARIANT[spec.variant]
    rows = []
    rows += ap_rows(model, sets["val"], modes, cfg, "overall")
    if spec.is_control:                        # a control answers one question: the bit NLL on val
        return rows, {"val": object_outputs(model, sets["val"].scenes, "val")}
    rows += ap_rows(model, sets["val"], modes, cfg, "occlusion")
    rows += ap_rows(model, sets["occlusion"], modes, cfg, "occlusion")
    rows += ap_rows(model, sets["dense"], modes, cfg, "density")
    outputs = {name: object_outputs(model, sets[name].scenes, name) for name in OBJECT_SETS}
    return rows, outputs


def run_one(cfg: ExperimentConfig, spec: RunSpec, sets: dict[str, EvalSet], cache: Path, resume: bool = True,
            progress: bool = True, device: str = "cpu") -> dict[str, Any]:
    """Train and evaluate one run, or load it when it is already finished; returns its record."""
    run_dir = cache / spec.key
    record_path, object_paths = _record_paths(run_dir, spec)
    if resume and record_path.exists() and all(p.exists() for p in object_paths.values()):
        return load_record(run_dir)
    if not resume and run_dir.exists():
        for p in run_dir.iterdir():
            p.unlink()
    model, log = train_run(cfg, spec, run_dir, sets["convergence"], resume=resume, progress=progress, device=device)
    t0 = time.perf_counter()
    rows, outputs = evaluate_run(model, spec, sets, cfg)
    for name, out in outputs.items():
        buf = _npz_bytes(out.to_arrays())
        atomic_write_bytes(object_paths[name], buf)
    fields = None
    if spec.variant == "grid-only" and spec.tag == "main":      # what the trained grid-only model can see
        from hsgprof.experiments.fields import grid_fields

        fields = grid_fields(cfg, {k: v.cpu() for k, v in model.state_dict().items()}, grow=False)
    record = {"fields": fields, "spec": {"variant": spec.variant, "seed": spec.seed, "tag": spec.tag,
                       "overrides": dict(spec.overrides), "scene": dict(spec.scene), "key": spec.key},
              "config_key": cfg.key(), "log": log, "ap": rows, "eval_wall_s": time.perf_counter() - t0}
    atomic_write_text(record_path, json.dumps(_finite(record)) + "\n")
    return load_record(run_dir)


def _npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, **{k: (v.astype(str) if v.dtype == object else v) for k, v in arrays.items()})
    return buf.getvalue()


def _finite(x: Any) -> Any:
    if isinstance(x, float) and not np.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    return x


def _unfinite(x: Any) -> Any:
    if x is None:
        return float("nan")
    if isinstance(x, dict):
        return {k: (_unfinite(v) if isinstance(v, (dict, list)) or v is None else v) for k, v in x.items()}
    if isinstance(x, list):
        return [_unfinite(v) for v in x]
    return x


def load_record(run_dir: Path) -> dict[str, Any]:
    """A finished run's record with its per-object outputs (``record["objects"][set]``)."""
    record_path = Path(run_dir) / "record.json"
    try:
        record = json.loads(record_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise HsgprofError(f"run record {str(record_path)!r} cannot be read ({exc}); delete the folder to rerun") from None
    sp = record["spec"]
    _, object_paths = _record_paths(Path(run_dir), RunSpec(sp["variant"], sp["seed"], sp["tag"]))
    record["log"] = {k: (_unfinite(v) if isinstance(v, list) else v) for k, v in record["log"].items()}
    record["ap"] = _unfinite(record["ap"])
    record["objects"] = {}
    for name, p in object_paths.items():
        with np.load(p, allow_pickle=False) as z:
            record["objects"][name] = ObjectOutputs.from_arrays({k: z[k] for k in z.files})
    return record


# Every run uses one torch thread: results then do not depend on the machine's core count, and
# the cores are used by running several runs at once (tiny models scale badly across threads,
# and oversubscribed OpenMP threads slowed a training step 25× on a shared 2-core machine).
THREADS_PER_RUN = 1
_WORKER_SETS: dict = {}


def _worker(cfg: ExperimentConfig, spec: RunSpec, cache: Path, resume: bool, device: str) -> tuple[str, float]:
    """One run in a worker process (eval sets built once per process)."""
    import torch

    torch.set_num_threads(THREADS_PER_RUN)
    t0 = time.perf_counter()
    run_one(cfg, spec, eval_sets(cfg, spec, _WORKER_SETS), cache, resume, False, device)
    return spec.key, time.perf_counter() - t0


RunHook = Callable[[int, int, str, float], None]
"""Called in the parent after each finished run: ``(runs done, runs to do, run key, seconds)``."""


def track_runs(results: Iterable[tuple[str, float]], total: int, progress: bool = True,
               on_run_done: RunHook | None = None) -> int:
    """Consume ``(run key, seconds)`` as runs finish, advancing one tqdm bar over runs (in the
    parent process, so it moves even when worker processes train silently) and calling
    ``on_run_done``; returns the number of runs seen."""
    done = 0
    with tqdm(total=total, desc="experiment runs", unit="run", disable=not progress, dynamic_ncols=True) as bar:
        for key, secs in results:
            done += 1
            bar.set_postfix_str(f"{key} {secs:.0f} s", refresh=False)
            bar.update(1)
            if on_run_done is not None:
                on_run_done(done, total, key, secs)
    return done


def _is_done(cache: Path, spec: RunSpec) -> bool:
    record_path, object_paths = _record_paths(cache / spec.key, spec)
    return record_path.exists() and all(p.exists() for p in object_paths.values())


def run_experiment(cfg: ExperimentConfig, out_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                   resume: bool = True, progress: bool = True, device: str = "cpu",
                   command: str | None = None, workers: int | None = None,
                   on_run_done: RunHook | None = None) -> dict[str, Path]:
    """Run (or reuse) every declared run, then write the tidy results files; returns their paths.

    ``workers``: runs trained at once in separate processes (default: the CPU count on CPU, 1 on
    a GPU); each uses one torch thread, so the results do not depend on it. ``progress``: a tqdm
    bar over runs (and, with one worker, per-step bars inside each run). ``on_run_done``: called
    after each run trained by this invocation (see :data:`RunHook`), whatever ``progress`` is.
    """
    import torch

    from hsgprof.experiments.analysis import write_all

    t0 = time.perf_counter()
    out = Path(out_dir) if out_dir is not None else DEFAULT_OUT / f"experiments-{cfg.name}"
    cache = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = cache / cfg.key()
    cache.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache / "config.json", json.dumps(_finite(cfg.to_dict()), indent=2, default=str) + "\n")
    specs = run_specs(cfg)
    todo = [s for s in specs if not (resume and _is_done(cache, s))]
    if workers is None:
        workers = (os.cpu_count() or 1) if device == "cpu" else 1
    workers = max(1, min(workers, len(todo)))
    if todo and workers > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # Longest runs first (hybrid, then grid-only, then sparse-only) so the pool drains evenly.
        # Workers train without per-step bars; the parent's bar advances as each run finishes.
        order = sorted(todo, key=lambda s: {"hybrid": 0, "grid-only": 1, "sparse-only": 2}[s.variant])
        workers = min(workers, len(order))
        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
            futures = [pool.submit(_worker, cfg, s, cache, resume, device) for s in order]
            try:
                track_runs((f.result() for f in as_completed(futures)), len(todo), progress, on_run_done)
            except BaseException:                    # an error or an interrupt: drop the queued runs
                for f in futures:
                    f.cancel()
                raise
    else:
        threads = torch.get_num_threads()
        torch.set_num_threads(THREADS_PER_RUN)
        try:
            built: dict = {}

            def sequential() -> Iterator[tuple[str, float]]:
                for spec in todo:
                    t = time.perf_counter()
                    run_one(cfg, spec, eval_sets(cfg, spec, built), cache, resume, progress, device)
                    yield spec.key, time.perf_counter() - t

            track_runs(sequential(), len(todo), progress, on_run_done)
        finally:
            torch.set_num_threads(threads)
    sets = make_eval_sets(cfg)
    records = [load_record(cache / s.key) for s in specs]
    wall = time.perf_counter() - t0
    timing_path = cache / "training_invocation.json"
    if todo:                                   # this invocation trained something: remember its wall time
        atomic_write_text(timing_path, json.dumps({"wall_s_to_records": wall, "runs_trained": len(todo),
                                                   "runs_total": len(specs), "workers": workers,
                                                   "cpu_count": os.cpu_count(), "device": device}) + "\n")
    timing = json.loads(timing_path.read_text()) if timing_path.exists() else None
    return write_all(records, cfg, sets, out, wall_s=wall, command=command, training_invocation=timing)


def run_quick_set(out_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                  progress: bool = False) -> dict[str, Path]:
    """The quick experiment set (the report's CPU default); returns the results files written."""
    return run_experiment(get_preset("quick"), out_dir, cache_dir, resume=True, progress=progress)
