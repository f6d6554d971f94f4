"""The 16 GB question: which batch fits a 16 GB card, predicted from the estimate (no GPU needed).

A "16 GB card" is its memory as the driver reports it (DESIGN.md), minus what the CUDA context
takes before PyTorch's allocator sees any of it. Reference totals (``cudaDeviceProp.totalGlobalMem``,
what ``torch.cuda.get_device_properties(0).total_memory`` returns and OOM messages print as
"total capacity"):

- Tesla V100-SXM2/PCIe 16GB: 16,945,512,448 B = 15.78 GiB (the default here);
- Tesla T4: 15,843,721,216 B = 14.76 GiB (a tighter 16 GB-class card);

The allocator may use ``total - context``. The context (CUDA runtime, cuDNN/cuBLAS kernels,
lazily loaded) is measured on the GPU by the suite; without a GPU, 512 MiB is assumed. The GPU
suite emulates the card on a larger GPU with ``torch.cuda.set_per_process_memory_fraction``:
fraction = usable / total of the GPU it runs on; the limit applies to *reserved* memory (the
caching allocator's segments), which is also what decides an OOM on the real card.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hsgprof.errors import HsgprofError
from hsgprof.memory.estimate import MemoryEstimate, estimate_memory
from hsgprof.memory.search import SearchResult, search_max_batch

MiB = 1 << 20
GiB = 1 << 30

CARD_TOTAL_BYTES = {"V100-16GB": 16_945_512_448, "T4": 15_843_721_216}
DEFAULT_CARD = "V100-16GB"
DEFAULT_CONTEXT_BYTES = 512 * MiB


@dataclass(frozen=True)
class Card:
    """A GPU's memory as PyTorch's allocator can use it."""

    name: str
    total_bytes: int
    context_bytes: int

    @property
    def usable_bytes(self) -> int:
        return self.total_bytes - self.context_bytes

    def fraction_of(self, device_total_bytes: int) -> float:
        """``set_per_process_memory_fraction`` argument that emulates this card on a bigger GPU."""
        if device_total_bytes < self.usable_bytes:
            raise HsgprofError(f"this GPU has {device_total_bytes / GiB:.2f} GiB, less than the "
                               f"{self.usable_bytes / GiB:.2f} GiB to emulate")
        return self.usable_bytes / device_total_bytes

    def describe(self) -> dict[str, Any]:
        return {"card": self.name, "card_total_bytes": self.total_bytes, "context_bytes": self.context_bytes,
                "usable_bytes": self.usable_bytes, "usable_GiB": round(self.usable_bytes / GiB, 3)}


def card(name: str = DEFAULT_CARD, context_bytes: int | None = None) -> Card:
    if name not in CARD_TOTAL_BYTES:
        raise HsgprofError(f"unknown card {name!r}; accepted: {', '.join(CARD_TOTAL_BYTES)}")
    return Card(name, CARD_TOTAL_BYTES[name], DEFAULT_CONTEXT_BYTES if context_bytes is None else context_bytes)


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
