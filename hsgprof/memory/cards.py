"""Training cards and their memory: the figure PyTorch's allocator starts from, and where it comes from.

"A 16 GB card" means the card's memory as the driver reports it (DESIGN.md): ``cudaDeviceProp.
totalGlobalMem``, which ``torch.cuda.get_device_properties(i).total_memory`` returns, deviceQuery
prints as "Total amount of global memory: N MBytes (B bytes)" and OOM messages print as "total
capacity". It is less than the vendor's GB figure (a datasheet's "40 GB" is marketing, not the
driver's bytes), and it is not one number per card: it moves with the driver version, ECC and the
system (the ``note`` of each card gives other published readings of the same card). Each card
below carries one published reading, verbatim in ``reported``, with its source; none is measured
here and none is typed from memory. Three kinds of reading:

- ``cuda``: ``totalGlobalMem`` in bytes (deviceQuery or ``total_memory``): the figure wanted;
- ``nvidia-smi``: ``memory.total`` in MiB. It counts memory the driver reserves, so it is *larger*
  than ``totalGlobalMem`` (an A10: nvidia-smi 23028 MiB, deviceQuery 22516 MiB): a budget built on
  it is optimistic by about that much;
- ``torch-oom``: the "total capacity" of a PyTorch out-of-memory message, GiB with two decimals
  (±0.005 GiB, about ±5 MiB).

The allocator can use ``total - context``: the CUDA context (runtime, cuBLAS/cuDNN kernels, loaded
lazily) takes memory before PyTorch's caching allocator sees any. It is measured on a GPU by the
GPU suite (``hsgprof gpu-suite``, ``context_bytes`` in its results); without a GPU,
:data:`DEFAULT_CONTEXT_BYTES` (512 MiB) is assumed and ``--context-mib`` overrides it.

This module imports no torch: ``hsgprof memory --help`` lists the cards from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hsgprof.errors import HsgprofError

MiB = 1 << 20
GiB = 1 << 30

DEFAULT_CARD = "V100-16GB"
DEFAULT_CONTEXT_BYTES = 512 * MiB
KINDS = ("cuda", "nvidia-smi", "torch-oom")


@dataclass(frozen=True)
class CardSpec:
    """One card's published memory reading and its source."""

    name: str
    total_bytes: int          # the reading in bytes (MiB x 2^20, GiB x 2^30 for the non-byte kinds)
    reported: str             # the reading exactly as published
    kind: str                 # one of KINDS
    device: str               # the device name the source shows
    driver: str               # the CUDA driver version the source shows ("" when it shows none)
    source: str               # URL, or GitHub owner/repo@commit:path
    note: str = ""

    def row(self) -> dict[str, Any]:
        return {"card": self.name, "total_bytes": self.total_bytes, "total_GiB": round(self.total_bytes / GiB, 3),
                "reported": self.reported, "kind": self.kind, "device": self.device, "driver": self.driver,
                "source": self.source, "note": self.note}


_THAMADA = "thamada/nvidia-smi@b09ef139265ffc7e3c78006346981de8e4d70499"
_ROUTER_GAO = "router-gao/cuda-demo@0e81cdd13591924eb46bced2a33846ac60b02515:cuda-samples/01-cuda-deviceQuery.md"

CARDS: dict[str, CardSpec] = {c.name: c for c in (
    CardSpec("A100-40GB", 42_481_811_456, "40514 MBytes (42481811456 bytes)", "cuda", "NVIDIA A100-SXM4-40GB",
             "12.2", _ROUTER_GAO,
             "another A100-SXM4-40GB (driver 12.2, runtime 11.4) reads 42298834944 bytes: "
             "https://github.com/bottlerocket-os/bottlerocket/pull/3873"),
    CardSpec("A100-80GB", 85_100_068_864, "81158 MBytes (85100068864 bytes)", "cuda", "NVIDIA A100-SXM4-80GB",
             "12.5", f"{_THAMADA}:gls/A100SXMx4_deviceQuery.py"),
    CardSpec("H100-80GB", 85_045_477_376, "81106 MBytes (85045477376 bytes)", "cuda", "NVIDIA H100 80GB HBM3",
             "12.7", "thamada/nvidia-smi@03fbe6e68c0bb4c28b72d5da786a9712a33cf408:nvsim/H100SXMx8_deviceQuery.py",
             "SXM; nvidia-smi reports 81559 MiB for an H100: https://github.com/modal-labs/modal-client/pull/2797"),
    CardSpec("L4", 23_570_219_008, "22478 MBytes (23570219008 bytes)", "cuda", "NVIDIA L4", "12.4",
             f"{_THAMADA}:gls/L4_deviceQuery.py"),
    CardSpec("A10G", 23_028 * MiB, "23028MiB", "nvidia-smi", "NVIDIA A10G", "570.172.08",
             "https://github.com/NVIDIA/TensorRT-LLM/issues/7818",
             "no published totalGlobalMem found for the A10G; nvidia-smi's total is larger than what CUDA reports "
             "(an A10, the same 24 GB GA102 board class: nvidia-smi 23028 MiB "
             "https://github.com/modal-labs/modal-client/pull/2797, deviceQuery 23609475072 bytes = 22516 MiB "
             "aalanwyr/face2cuda:step2cuda/README.md), so this budget is optimistic by about 0.5 GiB"),
    CardSpec("RTX-3090", 25_327_697_920, "24154 MBytes (25327697920 bytes)", "cuda", "NVIDIA GeForce RTX 3090",
             "12.6", f"{_THAMADA}:gls/RTX3090_deviceQuery.py",
             "another RTX 3090 reads 25286672384 bytes: Jumperkables/cuda-benchmarking:00_deviceQuery/README.md"),
    CardSpec("RTX-4090", 25_386_352_640, "24210 MBytes (25386352640 bytes)", "cuda", "NVIDIA GeForce RTX 4090",
             "12.4", f"{_THAMADA}:gls/RTX4090_deviceQuery.py"),
    CardSpec("T4", 15_843_721_216, "15110 MBytes (15843721216 bytes)", "cuda", "Tesla T4", "11.0",
             "https://chiemon.github.io/2024/12/25/%E6%98%BE%E5%8D%A1%E4%BF%A1%E6%81%AF.html",
             f"a T4 under driver 12.0 reads 15835398144 bytes: {_ROUTER_GAO}"),
    CardSpec("V100-16GB", 16_935_682_048, "16151 MBytes (16935682048 bytes)", "cuda", "Tesla V100-SXM2-16GB",
             "12.2", _ROUTER_GAO,
             "until this table, hsgprof used 16945512448 bytes, the deviceQuery reading of a V100-SXM2-16GB under "
             "CUDA driver 9.0 (AWS p3.2xlarge) in a 2018 blog post, 'Setting up tensorflow to run on a nvidia gpu', "
             "whose address could not be found; the GPU suite's committed measurements of 2026-11-25 emulated the "
             "card from it"),
    CardSpec("V100-32GB", round(31.74 * GiB), "31.74 GiB total capacity", "torch-oom", "V100 32GB", "",
             "https://github.com/liucongg/ChatGLM-Finetuning/issues/73",
             "no locatable deviceQuery byte figure found for the 32 GB V100; the OOM message gives two decimals"),
)}

@dataclass(frozen=True)
class Card:
    """A GPU's memory as PyTorch's allocator can use it: the card's total minus the CUDA context."""

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
        spec = CARDS.get(self.name)
        return {"card": self.name, "card_total_bytes": self.total_bytes, "context_bytes": self.context_bytes,
                "usable_bytes": self.usable_bytes, "usable_GiB": round(self.usable_bytes / GiB, 3),
                "card_total_kind": spec.kind if spec else "", "card_total_source": spec.source if spec else ""}


def card(name: str = DEFAULT_CARD, context_bytes: int | None = None) -> Card:
    """The card ``name`` (see :data:`CARDS`) with ``context_bytes`` (default 512 MiB) taken by the CUDA context."""
    spec = CARDS.get(name)
    if spec is None:
        raise HsgprofError(f"unknown card {name!r}; accepted: {', '.join(CARDS)}")
    if context_bytes is not None and not 0 <= context_bytes < spec.total_bytes:
        raise HsgprofError(f"a CUDA context of {context_bytes / MiB:.0f} MiB is not accepted for {spec.name}; "
                           f"give 0 to {spec.total_bytes // MiB - 1} MiB")
    return Card(spec.name, spec.total_bytes, DEFAULT_CONTEXT_BYTES if context_bytes is None else context_bytes)


def card_table() -> list[dict[str, Any]]:
    """One row per card: its reading, kind, device, driver and source (what the docs' card table shows)."""
    return [c.row() for c in CARDS.values()]
