"""Which batch fits a card, predicted from the estimate (no GPU needed).

The cards, their memory as the driver reports it and where each figure comes from are in
:mod:`hsgprof.memory.cards` (re-exported here): a card's allocator budget is its total minus the
CUDA context. The GPU suite emulates a card on a larger GPU with
``torch.cuda.set_per_process_memory_fraction``: fraction = usable / total of the GPU it runs on;
the limit applies to *reserved* memory (the caching allocator's segments), which is also what
decides an OOM on the real card.
"""

from __future__ import annotations

from typing import Any

from hsgprof.memory.cards import CARDS, DEFAULT_CARD, DEFAULT_CONTEXT_BYTES, Card, GiB, MiB, card  # noqa: F401
from hsgprof.memory.estimate import MemoryEstimate, estimate_memory
from hsgprof.memory.search import SearchResult, search_max_batch


def fits(est: MemoryEstimate, limit_bytes: int) -> bool:
    """Whether the step, replayed through the allocator model after warm-up, stays under the limit."""
    return not est.replay(limit_bytes=limit_bytes).oom


def predict_max_batch(target: str, hw: tuple[int, int], mode: str, precision: str, limit_bytes: int,
                      optimizer: str | None = "adamw", max_batch: int = 64, time_budget_s: float | None = None,
                      cache: dict[int, MemoryEstimate] | None = None,
                      **overrides: Any) -> tuple[SearchResult, dict[int, MemoryEstimate]]:
    """The largest batch the estimate says fits in ``limit_bytes`` of allocator memory.

    Starts from a linear guess (peak reserved at batch 1 and 2), then searches around it with
    the same bounded exponential/binary search the GPU uses. Returns the search and the
    estimates it made (batch -> estimate); ``cache`` may hold estimates made before (same
    target, size, mode, precision and optimizer, device "cuda").
    """
    h, w = hw
    cache = {} if cache is None else cache

    def est(b: int) -> MemoryEstimate:
        if b not in cache:
            cache[b] = estimate_memory(target, (b, 3, h, w), mode=mode, optimizer=optimizer,
                                       precision=precision, device="cuda", **overrides)
        return cache[b]

    def trial(b: int) -> tuple[bool, dict[str, Any]]:
        e = est(b)
        r = e.replay(limit_bytes=limit_bytes)
        return (not r.oom, {"predicted_peak_allocated_bytes": r.peak_allocated,
                            "predicted_peak_reserved_bytes": r.peak_reserved,
                            "error": f"predicted OOM in {r.oom_phase}" if r.oom else ""})

    start = 1
    if max_batch >= 2:
        p1 = est(1).replay().peak_reserved
        if p1 <= limit_bytes:
            p2 = est(2).replay().peak_reserved
            per_image = max(p2 - p1, 1)
            guess = int((limit_bytes - (p1 - per_image)) // per_image)
            start = max(1, min(max_batch, guess))
    res = search_max_batch(trial, max_batch, time_budget_s, start=start)
    return res, cache
