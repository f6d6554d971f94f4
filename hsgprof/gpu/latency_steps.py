"""The suite's timed sections: eager latency, compiled latency, and the per-component profile.

- ``latency``  every target eager, side by side (CUDA events, median and IQR), fp16 AMP, bf16 and
               fp32 at batch 1 and 8, channels-last beside contiguous for fp16 AMP;
               per-component times and the global-reasoning share of time beside its FLOP share;
               which SDPA backend ran -> ``latency.json``
- ``compiled`` per (precision, batch), in order of importance: every target compiled whole-graph
               (``--compile-mode``, default reduce-overhead) and timed beside its eager run in the
               same rounds; compile time apart; outputs checked against eager's -> ``latency.json``
- ``profile``  the measured matmul peak; every target eager under ``torch.profiler`` with a range
               per component, then compiled split at component boundaries: kernel time, FLOPs,
               achieved TFLOP/s and fraction of the peak per component -> ``profile.json``; the
               split compile's component clock (the compiled global-reasoning share) -> ``latency.json``

Targets: hsgdet-l, hsgdet-l-grid and every preset whose name ends in ``-ref`` (discovered when the
suite runs); hsgdet-l's "YOLO-l", its family's reference preset (``yolov5l-ref`` while hsgdet-l is
the v5-chassis reading, docs/readings.md), is the reference of every ratio. A compile starts only when the time left
covers the longest compile seen so far (``--compile-estimate`` before the first one).
"""

from __future__ import annotations

import time
from typing import Any



def family_yolo_l() -> str:
    """hsgdet-l's "YOLO-l": the reference preset of the primary reading's family (docs/readings.md)."""
    from hsgprof.adapters.hsgdet import primary
    from hsgprof.claims.readings import FAMILIES, READINGS

    return FAMILIES[READINGS[primary()].family]["l"]


REFERENCE = family_yolo_l()
EAGER_CONFIGS = tuple((p, b) for p in ("fp16-amp", "bf16", "fp32") for b in (1, 8))     # --quick: no bf16
COMPILED_CONFIGS = (("fp16-amp", 1), ("fp16-amp", 8), ("bf16", 1), ("bf16", 8))          # --quick: the first two
PROFILE_CONFIG = ("fp16-amp", 1)
TIMING_ALLOWANCE_S = 10.0        # after a compile: warm-up, timed rounds, attention check


def suite_targets() -> list[str]:
    """hsgdet-l, the reference, hsgdet-l-grid, then every other ``-ref`` preset (in importance order)."""
    from hsgprof.adapters.hsgdet import reference_presets

    refs = [p for p in reference_presets() if p != REFERENCE]
    return ["hsgdet-l", REFERENCE, "hsgdet-l-grid", *refs]


def _repeats(suite: Any) -> tuple[int, int]:
    if suite.device == "cpu":
        return 1, 2
    return (5, 15) if suite.quick else (10, 30)


def _log_rows(suite: Any, rows: list[dict[str, Any]]) -> None:
    for r in rows:
        if r["kind"] == "end_to_end":
            extra = f", compiled in {r['compile_s']:.1f} s" if r.get("compile_s") else ""
            suite.log(f"  {r['target']} [{r['path']}, {r['memory_format']}]: median {r['median_ms']:.2f} ms "
                      f"(IQR {r['iqr_ms']:.2f}){extra}")
        elif r["kind"] in ("ratio", "vs_eager"):
            suite.log(f"  {r['target']} [{r['path']}, {r['memory_format']}] {r['component']} = "
                      f"{r['ratio_median_of_rounds']:.3f}")
        elif r["kind"] == "compile":
            suite.log(f"  {r['target']} compile: {r['compile_s']:.1f} s, {r['graphs']} graphs, {r['graph_breaks']} "
                      f"breaks, outputs equal eager: {r['outputs_equal']} (max rel diff {r['max_rel_diff']:.2e})")
        elif r["kind"] == "attention":
            unfused = " (NOT a fused kernel)" if "unfused" in r["sdpa_text"] else ""
            suite.log(f"  {r['target']} [{r['path']}, {r['memory_format']}] attention: {r['sdpa_text']}{unfused}")


def section_latency(suite: Any, budget: float) -> None:
    from hsgprof.adapters.hsgdet import GLOBAL_REASONING
    from hsgprof.timing.latency import latency_rows

    end = time.monotonic() + budget
    h, w = suite.hw
    plan = [c for c in EAGER_CONFIGS if not (suite.quick and c[0] == "bf16")]
    warmup, repeat = _repeats(suite)
    suite.meta["latency"].update(targets=suite.targets, reference=REFERENCE, warmup=warmup, repeat=repeat,
                                 timer="CUDA events" if suite.device == "cuda" else "perf_counter",
                                 global_reasoning=list(GLOBAL_REASONING),
                                 estimator_jobs_running_at_start=suite.jobs_running(),
                                 note="end-to-end = the network without post-processing (raw head outputs)")
    for i, (prec, b) in enumerate(plan):
        left = end - time.monotonic()
        if left < 5:
            suite.skip("latency", plan[i:], "latency")
            break
        per = left / (len(plan) - i)
        cl = prec == "fp16-amp" and not suite.quick
        suite.log(f"latency (eager): {prec} batch {b}{' + channels_last' if cl else ''} ({per:.0f} s)")
        rows = suite.guarded(f"latency {prec} b{b}", lambda: latency_rows(
            suite.targets, (b, 3, h, w), prec, suite.device, warmup=warmup, repeat=repeat, components=True,
            reference=REFERENCE, global_components=GLOBAL_REASONING, time_budget_s=per * 0.3,
            channels_last=cl, attention=True))
        suite.add_rows("latency", rows, {"precision": prec, "batch": b})
        if isinstance(rows, list):
            _log_rows(suite, rows)
        suite.free()


def compile_available(suite: Any) -> str | None:
    """None when the suite's compile mode works here (a one-op module compiled and run), else why not."""
    import torch

    from hsgprof.timing.compiled import compile_module, reset_compiled

    class Probe(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.sin(x) * 2

    try:
        fn = compile_module(Probe(), suite.compile_mode)
        x = torch.randn(64, device=suite.device)
        outs = [fn(x).clone() for _ in range(3)]         # reduce-overhead: warm-up, record, replay
        ok = all(bool(torch.allclose(o, torch.sin(x) * 2, atol=1e-5)) for o in outs)
        return None if ok else "a compiled sin(x)·2 differed from eager"
    except Exception as exc:        # noqa: BLE001 - any failure means: no compiled measurements
        return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    finally:
        reset_compiled()


def section_compiled(suite: Any, budget: float, prec: str, batch: int) -> None:
    from hsgprof.timing.compiled import reset_compiled
    from hsgprof.timing.clock import base_labels
    from hsgprof.timing.latency import attention_rows, time_runnables
    from hsgprof.timing.runnable import prepare

    end = time.monotonic() + budget
    mode = suite.compile_mode
    where = {"precision": prec, "batch": batch, "compile": mode}
    if suite.compile_problem is not None:
        suite.add_rows("latency", [{**where, "kind": "skipped", "status": f"torch.compile unavailable: "
                                                                            f"{suite.compile_problem}"}])
        return
    h, w = suite.hw
    shape = (batch, 3, h, w)
    warmup, repeat = _repeats(suite)
    runnables = []
    suite.log(f"compiled ({mode}): {prec} batch {batch} ({budget:.0f} s)")
    for t in suite.targets:
        need = suite.compile_estimate(t) + TIMING_ALLOWANCE_S
        if end - time.monotonic() < need:
            suite.log(f"  {t}: skipped (a compile takes ~{need - TIMING_ALLOWANCE_S:.0f} s; "
                      f"{max(end - time.monotonic(), 0):.0f} s left in this step)")
            suite.add_rows("latency", [{**where, "target": t, "kind": "skipped", "status": "skipped: time budget"}])
            continue
        eager = suite.guarded(f"eager {t} {prec} b{batch}", lambda: prepare(t, shape, prec, suite.device))
        comp = suite.guarded(f"compile {t} {prec} b{batch}",
                             lambda: prepare(t, shape, prec, suite.device, compile=mode))
        if isinstance(comp, Exception) or isinstance(eager, Exception):
            suite.add_rows("latency", [{**where, "target": t, "kind": "error", "status": repr(comp)[:300]}])
            continue
        suite.compile_times.setdefault(t, []).append(comp.compile_info["compile_s"])
        suite.log(f"  {t}: compiled in {comp.compile_info['compile_s']:.1f} s")
        runnables += [eager, comp]
    if runnables:
        def measure() -> list[dict[str, Any]]:
            rows = time_runnables(runnables, warmup, repeat, max(end - time.monotonic(), 5) * 0.5, REFERENCE)
            rows += attention_rows(runnables, base_labels(shape, prec, runnables[0].x.device))
            if (prec, batch) == PROFILE_CONFIG:
                rows += _whole_graph_profile(suite, runnables, shape, prec)
            return rows

        rows = suite.guarded(f"compiled {prec} b{batch}", measure)
        suite.add_rows("latency", [r for r in rows if r["kind"] != "profile_total"] if isinstance(rows, list)
                       else rows, where)
        if isinstance(rows, list):
            suite.rows["profile"].extend(r for r in rows if r["kind"] == "profile_total")
            suite.write("profile")
            _log_rows(suite, rows)
    runnables.clear()                       # the closure above holds the same list: free the models now
    reset_compiled()
    suite.free()


def _whole_graph_profile(suite: Any, runnables: list[Any], shape: tuple[int, ...], prec: str) -> list[dict[str, Any]]:
    """Kernel time of the whole-graph compiled runs (totals only: no component ranges survive)."""
    from hsgprof.counting.fast import component_flops
    from hsgprof.timing.clock import base_labels
    from hsgprof.timing.profile import attribution_rows, profile_runnable

    peak = suite.peak(prec)
    rows = []
    for r in runnables:
        if r.compile == "none":
            continue
        flops, source = component_flops(r.name, shape, None)
        res = profile_runnable(r, None, calls=5)
        base = {**base_labels(shape, prec, r.x.device), **r.labels(), "ranges": False, "sdpa": res["sdpa"],
                "flops_source": source, "note": "whole-graph compile: component ranges do not survive it"}
        rows += attribution_rows(res, flops, peak.get("tflops") if peak else None, base)
    return rows


def section_profile(suite: Any, budget: float) -> None:
    from hsgprof.adapters.hsgdet import GLOBAL_REASONING
    from hsgprof.timing.compiled import reset_compiled
    from hsgprof.timing.profile import profile_target

    end = time.monotonic() + budget
    prec, batch = PROFILE_CONFIG
    h, w = suite.hw
    shape = (batch, 3, h, w)
    peak = suite.peak(prec)
    tflops = peak.get("tflops") if peak else None
    suite.meta["profile"].update(precision=prec, batch=batch, compile=suite.compile_mode, calls=5,
                                 attribution="CUDA kernel time launched inside each component's record_function "
                                             "range (device_time_total); host_ms = the range's CPU duration",
                                 peak=peak)
    for t in suite.targets:                                   # eager: no compile, seconds each
        if end - time.monotonic() < 5:
            suite.log(f"profile: {t} eager skipped (time budget)")
            continue
        suite.log(f"profile: {t} eager")
        res = suite.guarded(f"profile {t} eager", lambda: profile_target(t, shape, prec, suite.device, "none",
                                                                         peak_tflops=tflops))
        if isinstance(res, tuple):
            suite.rows["profile"].extend(res[0])
            suite.write("profile")
    if suite.compile_problem is not None:
        suite.log(f"profile: no compiled profile (torch.compile unavailable: {suite.compile_problem})")
        return
    warmup, repeat = _repeats(suite)
    for t in suite.targets:                                   # compiled split: one compile each
        need = suite.compile_estimate(t) + TIMING_ALLOWANCE_S
        if end - time.monotonic() < need:
            suite.log(f"profile: {t} compiled split skipped (~{need:.0f} s needed, "
                      f"{max(end - time.monotonic(), 0):.0f} s left)")
            continue
        suite.log(f"profile: {t} compiled ({suite.compile_mode}, split at components)")
        res = suite.guarded(f"profile {t} compiled", lambda: profile_target(
            t, shape, prec, suite.device, suite.compile_mode, peak_tflops=tflops,
            global_components=GLOBAL_REASONING, warmup=warmup, repeat=repeat,
            time_budget_s=max(end - time.monotonic(), 5) * 0.3))
        if isinstance(res, tuple):
            prof, clock = res
            total = next((r for r in prof if r["kind"] == "profile_total"), {})
            if total.get("compile_s") is not None:
                suite.compile_times.setdefault(t, []).append(total["compile_s"])
            suite.rows["profile"].extend(prof)
            suite.add_rows("latency", clock, {"precision": prec, "batch": batch})
            suite.write("profile")
            share = next((r for r in clock if r["kind"] == "global_share"), None)
            if share:
                suite.log(f"  {t} split-compiled global reasoning: {share['time_share']:.1%} of time "
                          f"({share['flops_share']:.1%} of FLOPs)")
        reset_compiled()
        suite.free()
