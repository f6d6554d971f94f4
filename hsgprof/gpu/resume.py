"""``gpu-suite --resume``: continue a run in its folder, running only the steps it has not measured."""

from __future__ import annotations

from typing import Any

from hsgprof.gpu import FILES


def load_previous(suite: Any) -> None:
    """``--resume``: the rows already in the folder, and the compile times they record."""
    from hsgprof.results import read_results

    for kind, (name, result_kind) in FILES.items():
        if (suite.out / name).is_file():
            doc = read_results(suite.out / name, result_kind)
            suite.rows[kind] = list(doc["rows"])
            suite.meta[kind] = {**(doc.get("meta") or {}),
                               "earlier_runs": [*(doc.get("meta") or {}).get("earlier_runs", []),
                                                doc["provenance"]["command"]]}
    for r in suite.rows["latency"]:
        if r.get("kind") == "compile" and r.get("compile_s"):
            suite.compile_times.setdefault(r["target"], []).append(r["compile_s"])


def already_done(suite: Any, step: Any) -> bool:
    """Whether the folder already holds this step's measurements (eager: the eager step's own rows)."""
    lat = [r for r in suite.rows["latency"] if r.get("kind") == "end_to_end"]
    if step.section == "latency":
        return any(r.get("path", "eager") == "eager" and r.get("step", "latency") == "latency" for r in lat)
    if step.section == "compiled":
        return any(r.get("path") == f"compiled:{suite.compile_mode}" and (r.get("precision"), r.get("batch"))
                   == step.args for r in lat)
    if step.section == "profile":
        return any(str(r.get("path", "")).endswith(",split") for r in suite.rows["profile"])
    if step.section == "snapshot":
        return (suite.out / "snapshot_hsgdet-l_inference_b1.pickle").is_file()
    return any(r.get("status") == "ok" for r in suite.rows[step.section])


def forget_skipped(suite: Any, step: Any) -> None:
    """Before a step runs again: drop the rows that said it was skipped or failed."""
    kind = step.section if step.section in ("memory", "maxbatch") else "latency"

    def stale(r: dict[str, Any]) -> bool:
        failed = r.get("kind") in ("skipped", "error") or str(r.get("status", "")).startswith(
            ("skipped", "measurement failed"))
        if step.section == "compiled":
            return failed and r.get("compile") == suite.compile_mode and (r.get("precision"), r.get("batch")) \
                == step.args
        return failed and (step.section != "latency" or "compile" not in r)

    suite.rows[kind] = [r for r in suite.rows[kind] if not stale(r)]
