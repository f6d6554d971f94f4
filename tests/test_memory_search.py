"""The bounded max-batch search: correct, never reports a batch it did not run, respects budgets."""

from __future__ import annotations

import itertools

import pytest

from hsgprof.memory.search import SearchError, search_max_batch


@pytest.mark.parametrize("limit, start", list(itertools.product([0, 1, 2, 3, 5, 13, 31, 32, 64, 200], [1, 4, 20, 64])))
def test_finds_the_largest_fitting_batch(limit, start):
    ran: list[int] = []

    def trial(b: int) -> bool:
        ran.append(b)
        return b <= limit

    r = search_max_batch(trial, 64, start=start)
    assert r.max_ok == min(limit, 64)
    assert r.exact
    assert r.capped == (limit >= 64)
    # every batch reported ran, with the outcome reported
    assert r.max_ok == 0 or r.max_ok in ran
    assert r.first_fail is None or r.first_fail in ran
    assert [t.batch for t in r.trials] == ran
    assert all(t.ok == (t.batch <= limit) for t in r.trials)
    assert len(set(ran)) == len(ran)                      # no batch tried twice


def test_from_one_it_doubles_then_bisects():
    r = search_max_batch(lambda b: b <= 13, 64)
    assert [t.batch for t in r.trials] == [1, 2, 4, 8, 16, 12, 14, 13]


def test_time_budget_stops_and_reports_only_what_ran():
    clock = itertools.count(0, 10)                        # each call of the clock: +10 s
    r = search_max_batch(lambda b: b <= 40, 64, time_budget_s=35, clock=lambda: next(clock))
    assert r.stopped == "time budget"
    assert all(t.ok for t in r.trials if t.batch <= r.max_ok)
    assert r.max_ok in [t.batch for t in r.trials]
    assert not r.exact


def test_a_non_oom_error_stops_the_search():
    def trial(b: int) -> bool:
        if b == 4:
            raise SearchError("RuntimeError: illegal memory access")
        return True

    r = search_max_batch(trial, 64)
    assert r.stopped == "error"
    assert r.max_ok == 2
    assert "illegal" in r.trials[-1].error


def test_trial_info_is_kept():
    r = search_max_batch(lambda b: (b <= 3, {"peak": b * 10, "error": "" if b <= 3 else "OOM"}), 8)
    assert r.max_ok == 3
    assert {t.batch: t.info["peak"] for t in r.trials}[3] == 30
    assert r.row()["trial_batches"].startswith("1 2 4✗")


@pytest.mark.parametrize("bad", [0, -1])
def test_bad_bounds(bad):
    with pytest.raises(ValueError):
        search_max_batch(lambda b: True, bad)


def test_real_search_survives_simulated_oom_on_cpu(monkeypatch, one_torch_thread):
    """The CUDA search's trial logic (catch, free, recover, go on) with out-of-memory simulated."""
    import torch

    from hsgprof.memory import cuda as cuda_mem
    from hsgprof.memory.runner import RealStep

    real_run = RealStep.run

    def run(self, x):
        if x.shape[0] > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real_run(self, x)

    monkeypatch.setattr(RealStep, "run", run)
    res = cuda_mem.search_cuda_max_batch("hsgdet-tiny", (64, 64), "train", "fp16-amp", None, max_batch=8,
                                         device="cpu")
    assert (res.max_ok, res.first_fail, res.stopped) == (3, 4, "done")
    assert all("OutOfMemoryError" in t.error for t in res.trials if not t.ok)


def test_real_search_stops_on_other_errors(monkeypatch, one_torch_thread):
    from hsgprof.memory import cuda as cuda_mem
    from hsgprof.memory.runner import RealStep

    def run(self, x):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(RealStep, "run", run)
    res = cuda_mem.search_cuda_max_batch("hsgdet-tiny", (64, 96), "inference", "fp32", None, max_batch=16,
                                         device="cpu")
    assert res.stopped == "error" and res.max_ok == 0
    assert "illegal memory access" in res.trials[0].error
