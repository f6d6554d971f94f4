"""A model of PyTorch's CUDA caching allocator: from tensor bytes to "allocated" and "reserved".

``torch.cuda.max_memory_allocated`` counts the blocks handed to tensors; ``max_memory_reserved``
counts the segments the caching allocator obtained with ``cudaMalloc`` (what ``nvidia-smi`` and
an out-of-memory error see). This module replays a trace of tensor allocations and frees
through the allocator's documented rules (c10/cuda/CUDACachingAllocator.cpp, default config:
no ``expandable_segments``, no ``max_split_size_mb``, no ``roundup_power2_divisions``):

- every request is rounded up to a multiple of 512 bytes (at least 512);
- requests of at most 1 MiB come from the *small* pool, carved out of 2 MiB segments;
- larger requests come from the *large* pool: under 10 MiB from 20 MiB segments, otherwise a
  segment of the request rounded up to 2 MiB;
- a request takes the smallest cached free block that fits (best fit, lower address first);
  the rest is split off when it is at least 512 bytes (small pool) or more than 1 MiB (large);
  an unsplit block counts its whole size as allocated;
- a freed block merges with free neighbours of the same segment and stays cached;
- when a new segment would exceed the memory limit (``set_per_process_memory_fraction``) the
  allocator frees every wholly unused cached segment and retries; failing that it is an OOM.

Not modelled: several streams, CUDA graphs, ``expandable_segments``, the order of addresses
``cudaMalloc`` returns (segments are laid out in increasing order), workspaces that kernels
allocate internally (cuDNN, cuBLAS) unless they appear in the trace.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Iterable

MIN_BLOCK = 512                    # kMinBlockSize
SMALL_SIZE = 1 << 20               # kSmallSize: largest request served by the small pool
SMALL_BUFFER = 2 << 20             # kSmallBuffer: small-pool segment size
MIN_LARGE_ALLOC = 10 << 20         # kMinLargeAlloc
LARGE_BUFFER = 20 << 20            # kLargeBuffer: segment for 1 MiB < request < 10 MiB
ROUND_LARGE = 2 << 20              # kRoundLarge: larger segments are rounded up to 2 MiB


def round_size(nbytes: int) -> int:
    """Bytes a request of ``nbytes`` occupies (a multiple of 512, at least 512)."""
    if nbytes < MIN_BLOCK:
        return MIN_BLOCK
    return MIN_BLOCK * -(-nbytes // MIN_BLOCK)


def segment_size(rounded: int) -> int:
    """Size of the segment the allocator requests from the driver for a rounded request."""
    if rounded <= SMALL_SIZE:
        return SMALL_BUFFER
    if rounded < MIN_LARGE_ALLOC:
        return LARGE_BUFFER
    return ROUND_LARGE * -(-rounded // ROUND_LARGE)


class OutOfMemory(Exception):
    """The modelled allocator could not serve a request under its memory limit."""


@dataclass(eq=False)
class _Block:
    addr: int
    size: int
    small: bool
    segment: int
    allocated: bool = False
    prev: "_Block | None" = None
    next: "_Block | None" = None

    def key(self) -> tuple[int, int]:
        return (self.size, self.addr)


@dataclass
class PhaseStats:
    """Peaks seen while a phase ran (bytes)."""

    peak_allocated: int = 0
    peak_reserved: int = 0
    end_allocated: int = 0
    end_reserved: int = 0


class CachingAllocatorModel:
    """Replays ``malloc``/``free`` the way the CUDA caching allocator serves them (one stream)."""

    def __init__(self, limit_bytes: int | None = None) -> None:
        self.limit = limit_bytes
        self._free: dict[bool, list[tuple[int, int]]] = {True: [], False: []}   # small? -> sorted keys
        self._by_key: dict[tuple[int, int], _Block] = {}
        self._live: dict[object, _Block] = {}
        self._segments: dict[int, tuple[int, _Block]] = {}    # id -> (size, first block)
        self._next_addr = 0
        self._next_segment = 0
        self.allocated = 0
        self.reserved = 0
        self.peak_allocated = 0
        self.peak_reserved = 0
        self.num_allocs = 0
        self.num_segments_created = 0
        self.num_cache_flushes = 0

    # ---------------------------------------------------------------- free-block index
    def _insert_free(self, block: _Block) -> None:
        k = block.key()
        bisect.insort(self._free[block.small], k)
        self._by_key[k] = block

    def _remove_free(self, block: _Block) -> None:
        k = block.key()
        lst = self._free[block.small]
        i = bisect.bisect_left(lst, k)
        if i < len(lst) and lst[i] == k:
            lst.pop(i)
        self._by_key.pop(k, None)

    def _best_fit(self, small: bool, size: int) -> _Block | None:
        lst = self._free[small]
        i = bisect.bisect_left(lst, (size, -1))
        return self._by_key[lst[i]] if i < len(lst) else None

    # ---------------------------------------------------------------- segments
    def _new_segment(self, small: bool, size: int) -> _Block | None:
        if self.limit is not None and self.reserved + size > self.limit:
            return None
        seg = self._next_segment
        self._next_segment += 1
        block = _Block(self._next_addr, size, small, seg)
        self._next_addr += size
        self._segments[seg] = (size, block)
        self.reserved += size
        self.peak_reserved = max(self.peak_reserved, self.reserved)
        self.num_segments_created += 1
        return block

    def empty_cache(self) -> None:
        """Return every wholly unused segment to the driver (``torch.cuda.empty_cache``)."""
        for seg, (size, first) in list(self._segments.items()):
            if not first.allocated and first.next is None and first.prev is None:
                self._remove_free(first)
                del self._segments[seg]
                self.reserved -= size

    # ---------------------------------------------------------------- malloc / free
    def malloc(self, key: object, nbytes: int) -> int:
        """Serve a request of ``nbytes`` for ``key``; returns the block size counted as allocated."""
        if nbytes <= 0:
            return 0
        size = round_size(nbytes)
        small = size <= SMALL_SIZE
        block = self._best_fit(small, size)
        if block is not None:
            self._remove_free(block)
        else:
            block = self._new_segment(small, segment_size(size))
            if block is None:                       # over the limit: flush the cache, retry once
                self.num_cache_flushes += 1
                self.empty_cache()
                block = self._new_segment(small, segment_size(size))
                if block is None:
                    raise OutOfMemory(f"request of {size} bytes with {self.reserved} reserved "
                                      f"and limit {self.limit}")
        remaining = block.size - size
        split = remaining >= MIN_BLOCK if small else remaining > SMALL_SIZE
        if split:
            rest = _Block(block.addr + size, remaining, small, block.segment, prev=block, next=block.next)
            if block.next is not None:
                block.next.prev = rest
            block.next = rest
            block.size = size
            self._insert_free(rest)
        block.allocated = True
        self._live[key] = block
        self.allocated += block.size
        self.peak_allocated = max(self.peak_allocated, self.allocated)
        self.num_allocs += 1
        return block.size

    def free(self, key: object) -> None:
        """Return ``key``'s block to the cache, merging it with free neighbours."""
        block = self._live.pop(key, None)
        if block is None:
            return
        block.allocated = False
        self.allocated -= block.size
        for nb in (block.prev, block.next):
            if nb is not None and not nb.allocated:
                self._remove_free(nb)
                if nb is block.prev:
                    nb.size += block.size
                    nb.next = block.next
                    if block.next is not None:
                        block.next.prev = nb
                    block = nb
                else:
                    block.size += nb.size
                    block.next = nb.next
                    if nb.next is not None:
                        nb.next.prev = block
        self._insert_free(block)

    def reset_peak(self) -> None:
        self.peak_allocated = self.allocated
        self.peak_reserved = self.reserved


@dataclass
class Replay:
    """What replaying a trace through :class:`CachingAllocatorModel` gave (bytes)."""

    peak_allocated: int
    peak_reserved: int
    phases: dict[str, PhaseStats] = field(default_factory=dict)
    oom: bool = False
    oom_phase: str | None = None
    end_allocated: int = 0
    end_reserved: int = 0
    segments_created: int = 0


Event = tuple  # ("alloc", key, nbytes) | ("free", key) | ("phase", name)


def replay(prefix: Iterable[Event], step: list[Event], iterations: int = 2,
           limit_bytes: int | None = None) -> Replay:
    """Replay ``prefix`` once (parameters, optimizer state, input), then ``step`` ``iterations`` times.

    The peaks and per-phase figures are those of the LAST iteration, after ``reset_peak`` at its
    start, i.e. what ``torch.cuda.max_memory_*`` report for a measured step after warm-up steps.
    With ``limit_bytes`` an allocation that cannot be served marks the replay as OOM.
    """
    alloc = CachingAllocatorModel(limit_bytes)
    phase = "static"
    phases: dict[str, PhaseStats] = {}
    try:
        for ev in prefix:
            if ev[0] == "alloc":
                alloc.malloc(("p", ev[1]), ev[2])
            elif ev[0] == "free":
                alloc.free(("p", ev[1]))
        for it in range(iterations):
            last = it == iterations - 1
            if last:
                alloc.reset_peak()
            cur: PhaseStats | None = None
            for ev in step:
                kind = ev[0]
                if kind == "alloc":
                    alloc.malloc((it, ev[1]), ev[2])
                    if last and cur is not None:
                        cur.peak_allocated = max(cur.peak_allocated, alloc.allocated)
                        cur.peak_reserved = max(cur.peak_reserved, alloc.reserved)
                elif kind == "free":
                    alloc.free((it, ev[1]))
                elif kind == "phase":
                    phase = ev[1]
                    if last:
                        if cur is not None:
                            cur.end_allocated, cur.end_reserved = alloc.allocated, alloc.reserved
                        cur = phases.setdefault(phase, PhaseStats(alloc.allocated, alloc.reserved))
            if last and cur is not None:
                cur.end_allocated, cur.end_reserved = alloc.allocated, alloc.reserved
    except OutOfMemory:
        return Replay(alloc.peak_allocated, alloc.peak_reserved, phases, True, phase,
                      alloc.allocated, alloc.reserved, alloc.num_segments_created)
    return Replay(alloc.peak_allocated, alloc.peak_reserved, phases, False, None,
                  alloc.allocated, alloc.reserved, alloc.num_segments_created)
