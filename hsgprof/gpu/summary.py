"""The suite's ``summary.md``: the headline tables of every section that ran (also printed at the end)."""

from __future__ import annotations

import datetime as _dt
from typing import Any

from hsgprof.results import render_table

MiB = 1 << 20
GiB = 1 << 30


def md_table(df: Any) -> str:
    """A Markdown table; without ``tabulate`` (absent on some GPU hosts) a plain pipe table."""
    try:
        return render_table(df, "md")
    except ImportError:
        def cell(v: Any) -> str:
            if isinstance(v, float):
                return "" if v != v else f"{v:.4g}"
            return "" if v is None else str(v).replace("|", "/")

        cols = [str(c) for c in df.columns]
        lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
        lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
        return "\n".join(lines)


def _table(rows: list[dict[str, Any]], columns: tuple[str, ...], title: str) -> list[str]:
    import pandas as pd

    if not rows:
        return []
    df = pd.DataFrame(rows)
    return [f"## {title}", "", md_table(df[[c for c in columns if c in df]]), ""]


def summary_markdown(suite: Any) -> str:
    lines = [f"# hsgprof gpu-suite on {suite.gpu}", "",
             f"- command: `{suite.command}`",
             f"- date: {_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}",
             f"- input: {suite.hw[0]}x{suite.hw[1]}; steps: {', '.join(f'{k}={v}' for k, v in suite.status.items())}",
             f"- emulated card: {suite.card.name}, {suite.card.usable_bytes / GiB:.2f} GiB usable "
             f"(context {suite.card.context_bytes / MiB:.0f} MiB)" if hasattr(suite, "card") else "- card: n/a",
             f"- compiled path: torch.compile mode {suite.compile_mode}"
             + (f" (unavailable: {suite.compile_problem})" if getattr(suite, "compile_problem", None) else ""),
             "- memory in MiB (2^20 bytes); times in ms (median and IQR over repeated runs after warm-up); "
             "FLOPs = 2 × MACs", ""]
    mem = [r for r in suite.rows["memory"] if r.get("phase") == "step"]
    lines += _table(mem, ("target", "mode", "precision", "batch", "measured_peak_allocated_MiB",
                          "predicted_peak_allocated_MiB", "allocated_ratio", "measured_peak_reserved_MiB",
                          "predicted_peak_reserved_MiB", "status"), "Memory: predicted vs measured peak (whole step)")
    lines += _table(suite.rows["maxbatch"], ("mode", "precision", "measured_max_batch", "measured_first_failing_batch",
                                             "predicted_max_batch", "predicted_first_failing_batch", "agree", "status"),
                    "Largest batch on an emulated 16 GB card")
    lat = suite.rows["latency"]
    lines += _table([r for r in lat if r.get("kind") in ("end_to_end", "ratio", "vs_eager")],
                    ("step", "target", "path", "memory_format", "precision", "batch", "component", "median_ms",
                     "iqr_ms", "ratio_median_of_rounds", "compile_s", "cpu_busy_fraction"),
                    "Latency: eager and compiled, side by side")
    lines += _table([r for r in lat if r.get("kind") == "global_share"],
                    ("target", "path", "precision", "batch", "median_ms", "time_share", "flops_share"),
                    "Global reasoning: share of time beside share of FLOPs")
    lines += _table([r for r in lat if r.get("kind") == "compile"],
                    ("target", "path", "precision", "batch", "compile_s", "graphs", "compiled_regions", "graph_breaks", "outputs_equal",
                     "max_rel_diff", "tolerance", "graphs_compiled_while_timing"), "Compilation")
    lines += _table([r for r in lat if r.get("kind") in ("skipped", "error")],
                    ("target", "precision", "batch", "compile", "status"), "Not measured")
    prof = suite.rows["profile"]
    lines += _table([r for r in prof if r.get("kind") in ("peak", "profile_total", "profile_component")],
                    ("target", "path", "component", "device_ms", "host_ms", "kernels", "flops", "achieved_tflops",
                     "fraction_of_peak", "time_share", "tflops"),
                    "Per component: kernel time, achieved TFLOP/s, fraction of the measured matmul peak")
    return "\n".join(lines) + "\n"
