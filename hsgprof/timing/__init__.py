"""Timing: latency end to end and per component, eager and compiled, on the CPU or with CUDA events;
per-component profiler attribution beside FLOPs (``profile``); the optimised path (``compiled``)."""

from hsgprof.timing.clock import compare_latency, component_latency, summarize
from hsgprof.timing.latency import latency_rows

__all__ = ["compare_latency", "component_latency", "latency_rows", "summarize"]
