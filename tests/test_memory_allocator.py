"""The caching-allocator model: rounding, pools, best fit, splitting, merging, limits, replay."""

from __future__ import annotations

import pytest

from hsgprof.memory.allocator import (LARGE_BUFFER, MIN_BLOCK, ROUND_LARGE, SMALL_BUFFER, SMALL_SIZE,
                                      CachingAllocatorModel, OutOfMemory, replay, round_size, segment_size)

MiB = 1 << 20


@pytest.mark.parametrize("n, expected", [(1, 512), (512, 512), (513, 1024), (0, 512), (10 * MiB + 1, 10 * MiB + 512)])
def test_round_size(n, expected):
    assert round_size(n) == expected


@pytest.mark.parametrize("rounded, expected", [
    (512, SMALL_BUFFER), (SMALL_SIZE, SMALL_BUFFER), (SMALL_SIZE + 512, LARGE_BUFFER),
    (10 * MiB - 512, LARGE_BUFFER), (10 * MiB, 10 * MiB), (11 * MiB, 12 * MiB), (25 * MiB + 512, 26 * MiB)])
def test_segment_size(rounded, expected):
    assert segment_size(rounded) == expected


def test_small_requests_share_a_2mib_segment():
    a = CachingAllocatorModel()
    for i in range(4):
        a.malloc(i, 1000)                        # rounds to 1024
    assert a.allocated == 4 * 1024
    assert a.reserved == SMALL_BUFFER
    assert a.num_segments_created == 1


def test_mid_sized_requests_carve_a_20mib_segment_and_split():
    a = CachingAllocatorModel()
    a.malloc("x", 3 * MiB)
    a.malloc("y", 3 * MiB)
    assert a.reserved == LARGE_BUFFER
    assert a.allocated == 6 * MiB


def test_large_request_gets_its_own_segment_rounded_to_2mib():
    a = CachingAllocatorModel()
    a.malloc("x", 21 * MiB + 5)
    assert a.reserved == 22 * MiB
    # Less than 1 MiB would remain, so the block is not split: the whole segment counts as allocated.
    assert a.allocated == 22 * MiB


def test_freed_block_is_cached_and_reused_best_fit():
    a = CachingAllocatorModel()
    a.malloc("big", 40 * MiB)
    a.malloc("small", 12 * MiB)
    a.free("big")
    a.free("small")
    assert a.reserved == 40 * MiB + 12 * MiB       # cached, not returned
    assert a.allocated == 0
    a.malloc("z", 11 * MiB)                         # best fit: the 12 MiB block, not the 40 MiB one
    assert a.reserved == 52 * MiB
    # The 12 MiB block keeps its 1 MiB tail unsplit (large pool splits only when > 1 MiB remains):
    assert a.allocated == 12 * MiB


def test_unsplit_remainder_counts_as_allocated_but_split_does_not():
    a = CachingAllocatorModel()
    a.malloc("a", 40 * MiB)
    a.free("a")
    a.malloc("b", 30 * MiB)                          # 10 MiB remain > 1 MiB: split
    assert a.allocated == 30 * MiB
    a.malloc("c", 10 * MiB)                          # reuses the split-off 10 MiB exactly
    assert a.reserved == 40 * MiB


def test_free_merges_neighbours_back_into_one_block():
    a = CachingAllocatorModel()
    a.malloc("a", 40 * MiB)
    a.free("a")
    for k in ("x", "y", "z"):
        a.malloc(k, 10 * MiB)
    for k in ("y", "x", "z"):
        a.free(k)
    a.malloc("w", 40 * MiB)                          # only possible if the three merged back
    assert a.reserved == 40 * MiB


def test_limit_flushes_cache_then_raises_oom():
    a = CachingAllocatorModel(limit_bytes=50 * MiB)
    a.malloc("a", 30 * MiB)
    a.free("a")                                      # 30 MiB cached
    a.malloc("b", 40 * MiB)                          # needs a new segment: flush the cached one first
    assert a.num_cache_flushes == 1
    assert a.reserved == 40 * MiB
    with pytest.raises(OutOfMemory):
        a.malloc("c", 12 * MiB)


def test_zero_byte_requests_take_nothing():
    a = CachingAllocatorModel()
    assert a.malloc("z", 0) == 0
    assert a.reserved == 0


def test_replay_reports_last_iteration_and_phases():
    prefix = [("alloc", 0, 8 * MiB)]
    step = [("phase", "forward"), ("alloc", 1, 30 * MiB), ("alloc", 2, 4 * MiB), ("phase", "backward"),
            ("free", 2), ("alloc", 3, 30 * MiB), ("free", 1), ("free", 3), ("phase", "end")]
    r = replay(prefix, step, iterations=2)
    assert not r.oom
    assert r.peak_allocated == 8 * MiB + 30 * MiB + 30 * MiB
    assert r.phases["forward"].peak_allocated == 8 * MiB + 34 * MiB
    assert r.phases["backward"].peak_allocated == 68 * MiB
    assert r.end_allocated == 8 * MiB
    assert r.peak_reserved >= r.peak_allocated


def test_replay_under_a_limit_reports_oom_and_phase():
    step = [("phase", "forward"), ("alloc", 1, 30 * MiB), ("alloc", 2, 30 * MiB), ("free", 1), ("free", 2)]
    assert replay([], step, limit_bytes=100 * MiB).oom is False
    r = replay([], step, limit_bytes=50 * MiB)
    assert r.oom and r.oom_phase == "forward"


def test_min_block_and_round_large_constants_match_pytorch():
    assert MIN_BLOCK == 512 and SMALL_SIZE == MiB and SMALL_BUFFER == 2 * MiB
    assert LARGE_BUFFER == 20 * MiB and ROUND_LARGE == 2 * MiB
