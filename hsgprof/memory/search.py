"""Largest batch that fits: exponential then binary search, bounded in batch and time.

The search only ever reports batches whose trial ran to the end: ``max_ok`` is the largest
batch that completed, ``first_fail`` the smallest that ran out of memory. A trial is a callable
``trial(batch) -> bool`` (True: it ran; False: out of memory); any other exception stops the
search and is reported. Used by the CUDA search (:mod:`hsgprof.memory.cuda`) and by the
prediction from the estimate (:mod:`hsgprof.memory.budget`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Trial:
    batch: int
    ok: bool
    seconds: float
    error: str = ""
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchResult:
    max_ok: int                 # largest batch that ran (0: not even the smallest tried)
    first_fail: int | None      # smallest batch that failed (None: none failed)
    exact: bool                 # first_fail == max_ok + 1, or max_ok reached the cap
    capped: bool                # max_ok == max_batch: the real limit may be higher
    stopped: str                # "done", "time budget", "error"
    trials: list[Trial]

    def row(self) -> dict[str, Any]:
        return {"max_batch": self.max_ok, "first_failing_batch": self.first_fail, "exact": self.exact,
                "capped": self.capped, "stopped": self.stopped, "trials": len(self.trials),
                "trial_batches": " ".join(f"{t.batch}{'' if t.ok else '✗'}" for t in self.trials)}


class SearchError(Exception):
    """A trial failed for a reason other than running out of memory."""


def search_max_batch(trial: Callable[[int], bool | tuple[bool, dict[str, Any]]], max_batch: int,
                     time_budget_s: float | None = None, start: int = 1,
                     clock: Callable[[], float] = time.monotonic) -> SearchResult:
    """Largest batch in [1, max_batch] whose trial passes, assuming passing is monotone in the batch."""
    if max_batch < 1 or start < 1:
        raise ValueError(f"max_batch ({max_batch}) and start ({start}) must be >= 1")
    t_start = clock()
    trials: list[Trial] = []
    lo, hi = 0, None
    stopped = "done"

    def out_of_time() -> bool:
        return time_budget_s is not None and clock() - t_start > time_budget_s

    def run(b: int) -> bool | None:
        nonlocal stopped
        if out_of_time():
            stopped = "time budget"
            return None
        t0 = clock()
        try:
            res = trial(b)
        except SearchError as exc:
            trials.append(Trial(b, False, clock() - t0, f"error: {exc}"))
            stopped = "error"
            return None
        ok, info = (res if isinstance(res, tuple) else (res, {}))
        trials.append(Trial(b, bool(ok), clock() - t0, "" if ok else info.get("error", "out of memory"), info))
        return bool(ok)

    # Gallop from ``start``: up by 1, 2, 4, ... while trials pass (from 1 this is doubling), or
    # down by 1, 2, 4, ... while they fail; then bisect the bracket.
    b = min(start, max_batch)
    r = run(b)
    if r is True:
        lo, step = b, 1
        while lo < max_batch:
            b = min(lo + step, max_batch)
            r = run(b)
            if r is None:
                break
            if r:
                lo, step = b, step * 2
            else:
                hi = b
                break
    elif r is False:
        hi, step = b, 1
        while hi > 1:
            b = max(hi - step, 1)
            r = run(b)
            if r is None:
                break
            if r:
                lo = b
                break
            hi, step = b, step * 2
    if stopped == "done" and hi is not None:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            r = run(mid)
            if r is None:
                break
            if r:
                lo = mid
            else:
                hi = mid
    capped = lo >= max_batch
    exact = capped or (hi is not None and hi == lo + 1)
    return SearchResult(lo, hi, exact and stopped == "done" or capped, capped, stopped, trials)
