"""The estimator's predictions for the suite's memory sections, computed in CPU worker processes.

They start only after the last timed step (the suite times nothing while its own CPU jobs run)
and never touch the GPU being measured (``CUDA_VISIBLE_DEVICES`` is cleared in each worker).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Callable


def _worker_init() -> None:
    os.environ["CUDA_VISIBLE_DEVICES"] = ""          # workers never touch the GPU being measured
    import torch

    torch.set_num_threads(1)


def job_estimate(target: str, shape: tuple[int, int, int, int], mode: str, precision: str,
                 optimizer: str | None) -> dict[str, Any]:
    from hsgprof.memory.estimate import estimate_memory

    return estimate_memory(target, shape, mode=mode, optimizer=optimizer, precision=precision,
                           device="cuda").summary()


def job_predict_max_batch(target: str, hw: tuple[int, int], mode: str, precision: str, limit: int,
                          optimizer: str | None, max_batch: int) -> dict[str, Any]:
    from hsgprof.memory.budget import predict_max_batch

    t0 = time.perf_counter()
    res, _ = predict_max_batch(target, hw, mode, precision, limit, optimizer, max_batch)
    return {**res.row(), "seconds": round(time.perf_counter() - t0, 1),
            "trial_list": [{"batch": t.batch, "ok": t.ok, **t.info} for t in res.trials]}


class Inline:
    """A stand-in for a process pool that runs jobs when their result is asked for."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Any:
        class _Lazy:
            def result(self, timeout: float | None = None) -> Any:
                return fn(*args)

            def done(self) -> bool:
                return True
        return _Lazy()

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        return None


def make_pool(jobs: int | None) -> tuple[Any, int]:
    """A spawn-context process pool of ``jobs`` workers (default min(6, CPUs − 2)); 0: in-process."""
    if jobs is None:
        jobs = max(1, min(6, (os.cpu_count() or 2) - 2))
    if jobs <= 0:
        return Inline(), 0
    import multiprocessing as mp

    return ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init), jobs


def running(futures: dict[tuple, Any]) -> int:
    """How many submitted jobs have not finished."""
    return sum(1 for f in futures.values() if isinstance(f, Future) and not f.done())


def stop_pool(pool: Any) -> None:
    """Cancel what has not started and end the workers (a late estimate must not hold the exit)."""
    try:
        pool.shutdown(wait=False, cancel_futures=True)
        for proc in list(getattr(pool, "_processes", {}).values() or []):
            if proc.is_alive():
                proc.terminate()
    except Exception:                   # noqa: BLE001 - best effort at the end of the run
        pass
