"""The GPU preset as one command: every run on CUDA, evaluation, results, the ``gpu`` tests, provenance.

``hsgprof experiments gpu`` writes ``reports/measurements/<gpu-slug>-<date>/experiments/``:
the ``experiments_*.json`` results of the ``full`` preset (trained on cuda), ``gpu_tests.log``
(``pytest -m gpu`` on the experiment paths), ``nvidia-smi.txt`` and ``experiments_gpu_run.json``
(device, driver, torch/CUDA, commit, command, wall time per phase). The report and the claims
ledger read the theory experiments from the newest such folder when one exists, else the quick
results. Progress is printed with timestamps; results are written as soon as the runs finish,
before the tests, so a time-out in the tests loses nothing. Before any run, the preset's budget is
read against its learnability pilot (:mod:`hsgprof.experiments.learnability`): a budget the
pilot says cannot learn the key is announced with a warning and recorded beside the results.
"""

from __future__ import annotations

import datetime as _dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from hsgprof.errors import HsgprofError
from hsgprof.provenance import REPO_ROOT

GPU_TESTS = ("tests/test_experiments_gpu.py",)


def default_folder(gpu_name: str, root: Path | None = None) -> Path:
    from hsgprof.commands.gpu_suite import gpu_slug

    root = root or REPO_ROOT / "reports" / "measurements"
    return Path(root) / f"{gpu_slug(gpu_name)}-{_dt.date.today().isoformat()}" / "experiments"


def run_gpu_preset(out: Path | None = None, preset: str = "full", workers: int | None = None,
                   run_tests: bool = True, command: str = "", log: Callable[[str], None] = print,
                   cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Run the preset on cuda, write its results, run the gpu tests; returns the run record."""
    import torch

    from hsgprof.experiments import get_preset, run_experiment
    from hsgprof.experiments.learnability import BELOW, NEVER, budget_check
    from hsgprof.results import atomic_write_text, write_results

    if not torch.cuda.is_available():
        raise HsgprofError("hsgprof experiments gpu needs CUDA, which this machine does not have")
    t0 = time.monotonic()
    gpu = torch.cuda.get_device_name(0)
    out = Path(out) if out else default_folder(gpu)
    out.mkdir(parents=True, exist_ok=True)
    cfg = get_preset(preset)
    workers = workers or default_gpu_workers()
    stamp = (lambda msg: log(f"[{time.monotonic() - t0:7.1f}s] {msg}"))
    stamp(f"{preset} preset on {gpu}: {len(__import__('hsgprof.experiments.runner', fromlist=['run_specs']).run_specs(cfg))} "
          f"runs, {workers} workers; out {out}")
    learn = budget_check(cfg)
    stamp(("WARNING: " if learn["status"] in (BELOW, NEVER) else "") + "learnability: " + learn["text"])
    smi = _nvidia_smi()
    atomic_write_text(out / "nvidia-smi.txt", smi)

    def on_run(done: int, total: int, key: str, secs: float) -> None:
        stamp(f"run {done}/{total} {key} {secs:.0f} s")

    t_runs = time.monotonic()
    paths = run_experiment(cfg, out, cache_dir, progress=False, device="cuda", command=command, workers=workers,
                           on_run_done=on_run)
    runs_s = time.monotonic() - t_runs
    stamp(f"results written ({len(paths)} files) after {runs_s:.0f} s")
    record: dict[str, Any] = {"device": gpu, "driver": _driver(smi), "torch": torch.__version__,
                              "cuda": torch.version.cuda, "command": command, "preset": preset,
                              "config_key": cfg.key(), "workers": workers, "cpu_count": os.cpu_count(),
                              "commit": os.environ.get("HSGPROF_COMMIT") or _commit(),
                              "wall_s_runs_and_results": runs_s, "results": sorted(p.name for p in paths.values()),
                              "learnability": learn["status"], "learnability_text": learn["text"]}
    if run_tests:
        t_tests = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "pytest", "-m", "gpu", "-q", *GPU_TESTS], cwd=REPO_ROOT,
                              capture_output=True, text=True)
        atomic_write_text(out / "gpu_tests.log", proc.stdout + proc.stderr)
        record.update(gpu_tests_rc=proc.returncode, wall_s_tests=time.monotonic() - t_tests,
                      gpu_tests_tail=(proc.stdout.strip().splitlines() or [""])[-1])
        stamp(f"gpu tests: rc {proc.returncode}; {record['gpu_tests_tail']}")
    record["wall_s_total"] = time.monotonic() - t0
    write_results(out / "experiments_gpu_run.json", "experiments.gpu_run", [record], config=cfg.to_dict(),
                  meta={"wall_s_total": record["wall_s_total"]}, command=command)
    stamp(f"done in {record['wall_s_total']:.0f} s")
    return record


def default_gpu_workers(cpu_count: int | None = None) -> int:
    """Runs trained at once on one GPU: three quarters of the CPU cores (each worker launches its
    kernels and draws its scenes; evaluation is CPU-bound, so more workers shorten it; a quarter
    of the cores stays for the prefetch threads and the parent), at least 1."""
    return max(1, ((cpu_count or os.cpu_count() or 2) * 3) // 4)


def _nvidia_smi() -> str:
    try:
        return subprocess.run(["nvidia-smi"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"nvidia-smi not available: {exc}\n"


def _driver(smi: str) -> str | None:
    for line in smi.splitlines():
        if "Driver Version:" in line:
            return line.split("Driver Version:")[1].split()[0]
    return None


def _commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
