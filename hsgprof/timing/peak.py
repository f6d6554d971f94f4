"""The device's matmul rate for a precision, measured in the run that uses it (never typed in).

A square matmul of ``n`` (8192 on CUDA, 1024 on the CPU by default) in the precision's compute
dtype (fp16 for fp16 and fp16 AMP, bf16 for bf16 and bf16 AMP, fp32 otherwise, with whatever TF32
setting is in force, recorded beside it), timed after warm-up: median of ``repeat`` calls, CUDA
events on a GPU. FLOPs = 2·n³. This is what a well-shaped GEMM achieves on this device with this
software, the yardstick each component's achieved TFLOP/s is divided by; it is not the
datasheet's peak.
"""

from __future__ import annotations

import statistics
from typing import Any

import torch

from hsgprof.memory.steps import get_precision


def compute_dtype(precision: str) -> torch.dtype:
    """The dtype matmuls and convolutions run in under ``precision``."""
    prec = get_precision(precision)
    return prec.autocast_dtype or prec.param_dtype


def matmul_peak(device: str | torch.device, precision: str, n: int | None = None, warmup: int = 3,
                repeat: int = 10) -> dict[str, Any]:
    """Measured TFLOP/s of an n×n×n matmul: {"tflops", "n", "dtype", "median_ms", "tf32_matmul", ...}."""
    from hsgprof.timing.clock import Timer

    dev = torch.device(device)
    n = n or (8192 if dev.type == "cuda" else 1024)
    dtype = compute_dtype(precision)
    g = torch.Generator(device=dev).manual_seed(0)
    a = torch.randn(n, n, generator=g, device=dev).to(dtype)
    b = torch.randn(n, n, generator=g, device=dev).to(dtype)
    timer = Timer(dev)
    for _ in range(warmup):
        torch.mm(a, b)
    seconds = [timer(lambda: torch.mm(a, b)) for _ in range(repeat)]
    med = statistics.median(seconds)
    return {"precision": precision, "dtype": str(dtype).removeprefix("torch."), "n": n, "flops": 2.0 * n ** 3,
            "median_ms": med * 1e3, "tflops": 2.0 * n ** 3 / med / 1e12, "repeat": repeat,
            "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32) if dev.type == "cuda" else None,
            "device": str(dev)}
