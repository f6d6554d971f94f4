"""The GPU preset as one command: every run on CUDA, evaluation, results, the ``gpu`` tests, provenance.

``hsgprof experiments gpu`` writes ``reports/measurements/<gpu-slug>-<date>/experiments/``:
the ``experiments_*.json`` results of the ``full`` preset (trained on cuda), ``gpu_tests.log``
(``pytest -m gpu`` on the experiment paths), ``nvidia-smi.txt`` and ``experiments_gpu_run.json``
(device, driver, torch/CUDA, commit, command, wall time per phase). The report and the claims
ledger read the theory experiments from the newest such folder when one exists, else the quick
results. Progress is printed with timestamps; results are written as soon as the runs finish,
before the tests, so a time-out in the tests loses nothing. Before any run, the preset's budget is
read against its learnability pilot (:mod:`hsgprof.experiments.learnability`): a budget the
pilot says cannot learn the key is announced with a warning and recorded beside the results; so
is this host's speed against the preset's wall-time estimate (:func:`host_check`: the estimate
holds only for a host whose reference workload runs at most so long).
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
    host = host_check(cfg, preset)
    stamp(("WARNING: " if host["status"] == SLOWER else "") + "host speed: " + host["text"])
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
                              "learnability": learn["status"], "learnability_text": learn["text"],
                              "host_reference": host["reference"], "host_check": host["status"],
                              "host_check_text": host["text"]}
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


FITS, SLOWER, NOT_COMPARED = "fits", "slower than the estimate allows", "not compared"


def host_check(cfg: Any, preset: str, estimate_file: Path | None = None) -> dict[str, Any]:
    """Time the frozen host reference (:mod:`hsgprof.experiments.hostspeed`) here, and read it against
    the committed wall-time estimate of this design: the estimate says the preset fits six minutes
    only when the host's reference takes at most ``host_reference_s_to_fit``. Returns ``reference``
    (the timing record), ``status`` (FITS, SLOWER or NOT_COMPARED) and a one-line ``text``."""
    import json

    import torch

    from hsgprof.experiments.hostspeed import VERSION, reference_seconds
    from hsgprof.results import read_results

    threads = torch.get_num_threads()
    torch.set_num_threads(1)                                         # as the estimate and each worker time it
    try:
        ref = reference_seconds()
    finally:
        torch.set_num_threads(threads)
    mine = f"reference {ref['median_s']:.3f} s on this host"
    path = estimate_file or REPO_ROOT / "reports" / "results" / "pilots" / f"experiments_gpu_estimate_{preset}.json"
    try:
        doc = read_results(path, "experiments.gpu_estimate")
    except (OSError, ValueError, HsgprofError):
        return {"reference": ref, "status": NOT_COMPARED, "text": f"{mine}; no estimate to read it against ({path})"}
    fit = doc["meta"].get("fit") or {}
    theirs = doc["meta"].get("host_reference") or {}
    if doc["provenance"].get("config") != json.loads(json.dumps(cfg.to_dict())):
        why = "the estimate is of another design"
    elif theirs.get("version") != VERSION or "host_reference_s_to_fit" not in fit:
        why = "the estimate has no host reference of this version"
    else:
        limit = fit["host_reference_s_to_fit"]
        if limit is None:
            return {"reference": ref, "status": SLOWER, "text": f"{mine}; the estimate says no host speed fits "
                    f"{fit['limit_s']:.0f} s ({path.name})"}
        status = FITS if ref["median_s"] <= limit else SLOWER
        return {"reference": ref, "status": status, "text": f"{mine}; the estimate ({path.name}) fits "
                f"{fit['limit_s']:.0f} s when it is <= {limit:.3f} s (its machine: {theirs['median_s']:.3f} s): "
                + ("within" if status == FITS else "over: expect a longer run than estimated")}
    return {"reference": ref, "status": NOT_COMPARED, "text": f"{mine}; {why} ({path.name})"}


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
