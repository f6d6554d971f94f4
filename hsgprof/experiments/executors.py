"""Where experiment runs and sweeps execute: a local process pool (the default) or a Ray cluster.

An :class:`Executor` maps a picklable one-argument function over items, each call one task:

* :meth:`Executor.imap_unordered` yields ``(index, result)`` as tasks finish (the driver's
  progress bar and hooks advance on it);
* :meth:`Executor.map` returns the results in input order, with a tqdm bar over tasks. This is
  the API for any sweep over configurations (a budget search maps a pure ``config -> row``).

Backends:

* ``local`` (:class:`LocalExecutor`): ``workers`` spawned processes (``concurrent.futures``);
  with one worker the function runs in this process. Needs nothing beyond the toolkit.
* ``ray`` (:class:`RayExecutor`): each call is one Ray task asking for ``num_cpus`` (and
  ``num_gpus`` when the work runs on CUDA). It joins a running cluster (``address``, or
  ``RAY_ADDRESS``), or starts a local Ray instance for the duration. A task whose worker dies
  (killed, out of memory, node lost) is retried by Ray up to ``max_retries`` times; errors raised
  by the function itself are not retried. ``ray`` is imported only here, only when this backend
  is asked for (``pip install 'hsgprof[ray]'``).

Functions and items travel by pickle (cloudpickle on Ray), so define them at module level or as
``functools.partial`` of module-level functions, and keep paths absolute: a remote worker does not
share the driver's working directory.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator, Sequence

from tqdm.auto import tqdm

from hsgprof.errors import HsgprofError

BACKENDS = ("local", "ray")
# A task whose worker dies is retried this many times (Ray's own default for tasks is 3).
DEFAULT_MAX_RETRIES = 3


class Executor:
    """Runs ``fn(item)`` for each item, as separate tasks; see the module docstring."""

    name = "executor"
    in_process = False                 # True when tasks run in this very process (one at a time)

    def imap_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        """``(index of the item, fn(item))`` in completion order; an error in a task is raised here
        and the tasks not yet started are cancelled."""
        raise NotImplementedError

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any], progress: bool = True, desc: str = "tasks",
            on_done: Callable[[int, Any], None] | None = None) -> list[Any]:
        """``[fn(item) for item in items]``, run as tasks; a tqdm bar over tasks (in the driver) and
        ``on_done(index, result)`` as each finishes."""
        items = list(items)
        results: list[Any] = [None] * len(items)
        with tqdm(total=len(items), desc=desc, unit="task", disable=not progress, dynamic_ncols=True) as bar:
            for i, r in self.imap_unordered(fn, items):
                results[i] = r
                bar.update(1)
                if on_done is not None:
                    on_done(i, r)
        return results

    def describe(self) -> dict[str, Any]:
        """What ran the tasks (written beside timings in results)."""
        return {"backend": self.name}

    def close(self) -> None:
        """Release what this executor started (pool processes, a local Ray instance)."""

    def __enter__(self) -> "Executor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class LocalExecutor(Executor):
    """``workers`` spawned processes on this machine; one worker runs the tasks in this process."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        workers = (os.cpu_count() or 1) if workers is None else workers
        if workers < 1:
            raise HsgprofError(f"workers={workers} is not accepted; give 1 or more")
        self.workers = workers
        self.in_process = workers == 1

    def imap_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        items = list(items)
        if self.in_process or len(items) <= 1:
            for i, item in enumerate(items):
                yield i, fn(item)
            return
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(min(self.workers, len(items)), mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(fn, item): i for i, item in enumerate(items)}
            try:
                for f in as_completed(futures):
                    yield futures[f], f.result()
            except BaseException:                # an error, an interrupt or an abandoned loop: drop queued tasks
                for f in futures:
                    f.cancel()
                raise

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "workers": self.workers}


def _call(fn: Callable[[Any], Any], item: Any) -> Any:
    """The body of every Ray task (a module-level function, so Ray can ship it by reference)."""
    return fn(item)


def import_ray() -> Any:
    """The ``ray`` module, or a one-line error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise HsgprofError("--backend ray needs Ray, which is not installed; install it with "
                           "pip install 'hsgprof[ray]' (or pip install ray), or use --backend local") from None
    return ray


class RayExecutor(Executor):
    """One Ray task per item, each asking for ``num_cpus`` CPUs and ``num_gpus`` GPUs.

    ``address``: a running cluster (``"auto"``, ``"ray://head:10001"``, ``"10.0.0.1:6379"``); with
    none, an already initialised Ray session is used, else ``RAY_ADDRESS``, else a local instance is
    started (``local_cpus`` CPUs, all by default; on loopback only) and shut down by :meth:`close`.
    ``runtime_env``: Ray's per-task runtime environment (``{"env_vars": {...}}``, ``working_dir``, ...).
    """

    name = "ray"

    def __init__(self, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0,
                 max_retries: int = DEFAULT_MAX_RETRIES, local_cpus: int | None = None,
                 runtime_env: dict[str, Any] | None = None) -> None:
        if num_cpus < 0 or num_gpus < 0:
            raise HsgprofError(f"num_cpus={num_cpus}, num_gpus={num_gpus}: resources per task must be >= 0")
        if max_retries < 0:
            raise HsgprofError(f"max_retries={max_retries} is not accepted; give 0 or more")
        if not address and not os.environ.get("RAY_ADDRESS"):
            # A local instance started for this command serves this machine only: keep it on loopback
            # (read when ray is first imported; Ray's switch for single-machine use).
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray = import_ray()
        self.num_cpus, self.num_gpus, self.max_retries = num_cpus, num_gpus, max_retries
        self.runtime_env = runtime_env
        self._owns = False
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {"address": address} if address else {}
            if not address and not os.environ.get("RAY_ADDRESS") and local_cpus is not None:
                kwargs["num_cpus"] = local_cpus
            try:
                ray.init(**kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = f"the Ray cluster at {address!r}" if address else "Ray"
                raise HsgprofError(f"cannot start or reach {where} ({type(exc).__name__}: {str(exc).splitlines()[0]}); "
                                   "start a cluster with `ray start --head` and pass --address auto, or omit "
                                   "--address for a local instance") from None
            self._owns = True
        self.address = ray.get_runtime_context().gcs_address

    def imap_unordered(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[int, Any]]:
        import ray
        from ray.exceptions import RayTaskError

        options: dict[str, Any] = {"num_cpus": self.num_cpus, "num_gpus": self.num_gpus,
                                   "max_retries": self.max_retries, "retry_exceptions": False}
        if self.runtime_env:
            options["runtime_env"] = self.runtime_env
        remote = ray.remote(_call).options(**options)
        fn_ref = ray.put(fn)
        refs = {remote.remote(fn_ref, item): i for i, item in enumerate(items)}
        pending = list(refs)
        try:
            while pending:
                done, pending = ray.wait(pending, num_returns=1)
                i = refs[done[0]]
                try:
                    yield i, ray.get(done[0])
                except RayTaskError as exc:             # the function raised: re-raise its own error
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, BaseException):
                        raise cause from None
                    raise
                except ray.exceptions.RayError as exc:  # worker died more often than max_retries, node lost
                    raise HsgprofError(f"task {i} failed on Ray after {self.max_retries} retries "
                                       f"({type(exc).__name__}: {str(exc).splitlines()[0]}); rerunning resumes "
                                       "from what finished") from None
        except BaseException:
            for ref in pending:
                ray.cancel(ref)
            raise

    def describe(self) -> dict[str, Any]:
        import ray

        return {"backend": self.name, "address": self.address, "num_cpus_per_task": self.num_cpus,
                "num_gpus_per_task": self.num_gpus, "max_retries": self.max_retries,
                "cluster_cpus": ray.cluster_resources().get("CPU", 0.0),
                "cluster_gpus": ray.cluster_resources().get("GPU", 0.0)}

    def close(self) -> None:
        if self._owns:
            import ray

            ray.shutdown()
            self._owns = False


def get_executor(backend: str = "local", workers: int | None = None, address: str | None = None,
                 device: str = "cpu", gpus_per_task: float = 1.0, max_retries: int = DEFAULT_MAX_RETRIES
                 ) -> Executor:
    """The executor a CLI switch names.

    ``local``: ``workers`` processes (default: CPU count on CPU, 1 on a GPU). ``ray``: tasks of one
    CPU each, plus ``gpus_per_task`` GPUs when ``device`` is CUDA (a fraction packs several tiny
    runs on one GPU); ``workers`` sizes a local Ray instance started for this call.
    """
    if backend not in BACKENDS:
        raise HsgprofError(f"backend {backend!r} is not accepted; choose {' or '.join(BACKENDS)}")
    if workers is not None and workers < 1:
        raise HsgprofError(f"--workers {workers} is not accepted; give 1 or more")
    if backend == "local":
        if address is not None:
            raise HsgprofError(f"--address {address!r} needs --backend ray (the local backend has no cluster)")
        if workers is None:
            workers = (os.cpu_count() or 1) if device == "cpu" else 1
        return LocalExecutor(workers)
    if address is not None and workers is not None:
        raise HsgprofError("--workers sizes a local Ray instance; a cluster at --address has its own size "
                           "(give one of them)")
    if not gpus_per_task > 0:
        raise HsgprofError(f"--gpus-per-run {gpus_per_task} is not accepted; give a number above 0 (e.g. 0.25)")
    cuda = str(device).startswith("cuda")
    return RayExecutor(address, num_cpus=1, num_gpus=gpus_per_task if cuda else 0, max_retries=max_retries,
                       local_cpus=workers)
