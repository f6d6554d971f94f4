"""Timing: latency and throughput, end-to-end and per component, on the CPU or with CUDA events."""

from hsgprof.timing.latency import compare_latency, component_latency, latency_rows, summarize

__all__ = ["compare_latency", "component_latency", "latency_rows", "summarize"]
