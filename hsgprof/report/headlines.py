"""The headline figures of the report's first pages: results files -> data -> a figure and its caption.

``HEADLINES`` is the list drawn, in order. Each entry reads what it needs from the results store
and returns a :class:`Drawn` (a matplotlib figure from :mod:`hsgprof.report.figures` and a
caption that names the convention, input size, device, date and source file, all read from the
results) or ``None`` when its results are absent; the page then says what is missing instead.
Adding a figure is one decorated function::

    @headline("my_figure", "What it shows", "what is missing when it is absent")
    def _my_figure(store) -> Drawn | None: ...

Claimed values (the seed's budgets, bounds and tolerances) are read from the claims ledger, never
typed here; measured values only from results files.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from hsgprof.claims.ledger import claim
from hsgprof.claims.rules import fmt

from . import figures
from .document import Block, Figure, FigureGrid, Paragraph
from .theory import scene_sizes, trained_on

DPI = 200


@dataclass(frozen=True)
class Drawn:
    figure: Any                 # matplotlib.figure.Figure
    caption: str


@dataclass(frozen=True)
class Headline:
    name: str                   # the PNG's file name (without .png)
    title: str                  # what it shows, in words
    draw: Callable[[Any], Drawn | None]
    absent: str                 # what the page says when ``draw`` returns None


HEADLINES: list[Headline] = []


def headline(name: str, title: str, absent: str) -> Callable:
    """Register ``fn(store) -> Drawn | None`` as a headline figure (drawn in registration order)."""
    def register(fn: Callable[[Any], Drawn | None]) -> Callable[[Any], Drawn | None]:
        HEADLINES.append(Headline(name, title, fn, absent))
        return fn
    return register


def png_bytes(fig: Any, dpi: int = DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def headline_blocks(store, figures_dir: Path, headlines: list[Headline] | None = None) -> list[Block]:
    """The drawn headline figures, two to a row, then one paragraph naming those not drawn and why.

    Each figure is held in memory as PNG bytes with the path (``figures_dir/<name>.png``, relative to
    the report) the caller writes it to.
    """
    drawn, missing = [], []
    for h in HEADLINES if headlines is None else headlines:
        got = h.draw(store)
        if got is None:
            missing.append(f"{h.title}: {h.absent}")
        else:
            drawn.append(Figure(Path(figures_dir) / f"{h.name}.png", got.caption, png_bytes(got.figure)))
    out: list[Block] = [FigureGrid(tuple(drawn))] if drawn else []
    if missing:
        out.append(Paragraph("Not drawn for lack of results: " + "; ".join(missing) + "."))
    return out


# --------------------------------------------------------------------------- shared wording

def _device(doc: dict[str, Any]) -> str:
    dev = doc["provenance"]["device"]
    return dev.get("gpu") or f"CPU ({dev.get('cpu', '?')})"


def _source(store, doc: dict[str, Any]) -> str:
    return f"from {store.path_of(doc)}, {doc['provenance']['date'][:10]}"


def _components(doc: dict[str, Any]) -> tuple[str, list[dict], dict | None]:
    """(mode, component rows, Total row) of a count.components file: native mode when it has one."""
    modes = list(dict.fromkeys(r["mode"] for r in doc["rows"]))
    mode = "native" if "native" in modes else modes[0]
    rows = [r for r in doc["rows"] if r["mode"] == mode]
    total = next((r for r in rows if r["component"] == "Total"), None)
    return mode, [r for r in rows if r["kind"] == "component"], total


def _input(row: dict[str, Any]) -> str:
    net = row.get("network_input")
    return row["input"] + (f" (network input {net})" if net and net != row["input"] else "")


def _model(doc: dict[str, Any]) -> str:
    return (doc["provenance"].get("config") or {}).get("preset") or "the model"


# --------------------------------------------------------------------------- the figures

@headline("params", "Parameters per component, seed vs measured",
          "no per-component counts (results kind count.components; `python analyses/count_hsgdet.py --quick`)")
def _params(store) -> Drawn | None:
    doc = store.get("count.components")
    if doc is None or not doc["rows"]:
        return None
    mode, rows, total = _components(doc)
    df = pd.DataFrame(rows)[["component", "params", "seed_params"]]
    title = f"{_model(doc)} parameters per component"
    if total is not None:
        title += f": {fmt(total['params'])} measured, seed {fmt(total['seed_params'])}"
    return Drawn(figures.params_per_component(df, title),
                 f"Parameters of each component of {_model(doc)} as built (blue) beside the seed's budget (grey); "
                 f"M = 1e6. Counted on the meta device (no compute), {mode} mode, input {_input(rows[0])}; "
                 f"{_source(store, doc)}.")


@headline("flop_share", "FLOP share per component",
          "no per-component counts (results kind count.components; `python analyses/count_hsgdet.py --quick`)")
def _flop_share(store) -> Drawn | None:
    doc = store.get("count.components")
    if doc is None or not doc["rows"]:
        return None
    mode, rows, total = _components(doc)
    members = set((doc.get("meta") or {}).get("global_reasoning") or ())
    df = pd.DataFrame({"component": [r["component"] for r in rows],
                       "flops": [r["referee_gemm_flops"] for r in rows],
                       "share": [r["share"] for r in rows],
                       "highlight": [r["component"] in members for r in rows]})
    share = df.loc[df["highlight"], "share"].sum()
    bound = claim("share.global_flops").claimed
    label = f"global reasoning: {share:.2%} in all (seed: < {bound:.0%})" if members else "global reasoning"
    title = f"{_model(doc)} FLOPs per component"
    if total is not None:
        title += f": {total['referee_gemm_flops'] / 1e9:.0f} G in all"
        if total.get("seed_flops"):
            title += f", seed {total['seed_flops'] / 1e9:.0f} G"
    return Drawn(figures.flop_share(df, title, label),
                 "Share of the model's FLOPs per component (FLOPs = 2 × MACs; referee closed-form count of "
                 f"convolution, matrix-product and attention work, 'GEMM'); {mode} mode, input {_input(rows[0])}; "
                 f"meta device (no compute); {_source(store, doc)}.")


@headline("memory_16gb", "Memory against a 16 GB card, with the largest batch",
          "no GPU max-batch search and no estimator max-batch results (results kinds max-batch-16gb, "
          "memory.hsgdet.max_batch; `python analyses/memory_hsgdet.py --quick`)")
def _memory(store) -> Drawn | None:
    gpu = store.get("max-batch-16gb", prefer_gpu=True)
    if gpu is not None and (gpu.get("meta") or {}).get("trials"):
        return _memory_measured(store, gpu)
    est, batch1 = store.get("memory.hsgdet.max_batch"), store.get("memory.hsgdet.estimates")
    if est is None or batch1 is None:
        return None
    return _memory_estimated(store, est, batch1)


def _memory_measured(store, doc: dict[str, Any]) -> Drawn:
    rows = {(r["mode"], r["precision"]): r for r in doc["rows"]}
    points = []
    for trial in doc["meta"]["trials"]:
        r = rows.get((trial["mode"], trial["precision"]))
        if r is None:
            continue
        label = (f"{r['mode']} {r['precision']}: max batch {r['measured_max_batch']} "
                 f"(estimator {r.get('predicted_max_batch', 'n/a')})")
        points += [{"config": label, "batch": t["batch"], "peak_GiB": t["peak_reserved_bytes"] / 2 ** 30,
                    "fits": bool(t["ok"])} for t in trial["measured"]]
    first = doc["rows"][0]
    return Drawn(figures.memory_against_card(pd.DataFrame(points), first["usable_GiB"], first["card"],
                                             f"{first['target']} at {first['input_hw']} on a {first['card']} card"),
                 f"Peak reserved memory (binary GiB: what the CUDA caching allocator held, what an OOM sees) of each "
                 f"batch the out-of-memory-safe search tried, measured on {_device(doc)} with the card emulated by "
                 f"set_per_process_memory_fraction; input {first['input_hw']} per image; training = one "
                 f"{first.get('optimizer') or 'optimizer'} step. Max batch measured, beside the estimator's "
                 f"prediction; {_source(store, doc)}.")


def _memory_estimated(store, est: dict[str, Any], batch1: dict[str, Any]) -> Drawn:
    peaks = {(r["mode"], r["precision"]): r for r in batch1["rows"] if r.get("batch") == 1}
    points = []
    for r in est["rows"]:
        p = peaks.get((r["mode"], r["precision"]))
        if p is not None:
            points.append({"config": f"{r['mode']} {r['precision']}: max batch {r['max_batch']} (estimate)",
                           "batch": 1, "peak_GiB": p["peak_reserved_bytes"] / 2 ** 30, "fits": True})
    if not points:
        return None
    first = est["rows"][0]
    return Drawn(figures.memory_against_card(pd.DataFrame(points), first["usable_GiB"], first["card"],
                                             f"{first['target']} at {first['input_hw']}: estimate, not measured "
                                             "on a GPU"),
                 "Not measured on a GPU: the estimator's predicted peak reserved memory at batch 1 (binary GiB, "
                 f"fake tensors, CUDA allocator model, computed on {_device(batch1)}) and its predicted largest "
                 f"batch on a {first['card']} card; input {first['input_hw']} per image; {_source(store, est)}.")


_LATENCY_KEYS = ("target", "precision", "batch", "compile", "backend")    # the columns a ratio row is named by


@headline("latency", "Latency ratios to the YOLO-l reference (GPU)",
          "not measured on a GPU (no latency-cuda results under reports/measurements/; run `hsgprof gpu-suite` "
          "on a CUDA machine)")
def _latency(store) -> Drawn | None:
    doc = store.get("latency-cuda", prefer_gpu=True)
    if doc is None:
        return None
    def shown(r: dict) -> bool:
        """Contiguous tensors; eager figures from the suite's eager step, not the eager runs beside a compile."""
        return r.get("memory_format", "contiguous") == "contiguous" and not (
            r.get("compile") in (None, "none", "eager") and r.get("step", "latency") != "latency")

    rows = [r for r in doc["rows"] if r.get("kind") == "ratio" and shown(r)]
    if not rows:
        return None

    def name(r: dict) -> str:
        r = {**r, "compile": None if r.get("compile") in (None, "none", "eager") else r["compile"]}
        return " ".join(f"b{r[k]}" if k == "batch" else str(r[k]) for k in _LATENCY_KEYS
                        if r.get(k) not in (None, ""))

    ratios = pd.DataFrame({"label": [name(r) for r in rows], "ratio": [r["ratio_median_of_rounds"] for r in rows],
                           "q1": [r["ratio_q1"] for r in rows], "q3": [r["ratio_q3"] for r in rows]})
    share_rows = [r for r in doc["rows"] if r.get("kind") == "global_share" and shown(r)]
    shares = pd.DataFrame({"label": [name({**r, "target": None}) for r in share_rows],
                           "time_share": [r["time_share"] for r in share_rows],
                           "flops_share": [r["flops_share"] for r in share_rows]}) if share_rows else None
    reference = (doc.get("meta") or {}).get("reference", "the reference")
    busy = (doc.get("meta") or {}).get("estimator_jobs_running_at_start") or 0
    inputs = ", ".join(dict.fromkeys(r["input"] for r in rows if r.get("input")))
    return Drawn(figures.latency_ratios(ratios, claim("latency.near_yolo_l").rule.rel_tol, shares,
                                        claim("share.global_time").claimed,
                                        f"latency / {reference}, {_device(doc)}, {doc['provenance']['date'][:10]}"),
                 f"Latency relative to {reference} timed in the same run (median of per-round ratios, IQR whiskers; "
                 "CUDA events; network without post-processing), with the ledger's 'near' tolerance shaded; right: "
                 "global reasoning's share of time beside its share of FLOPs (2 × MACs). Input "
                 f"{inputs or 'not recorded'}; measured on {_device(doc)}, {doc['provenance']['date'][:10]}"
                 + (f"; {busy} CPU estimator job(s) were running on the host when timing began" if busy else "")
                 + f"; {_source(store, doc)}.")


@headline("entropy", "Entropy comparison with its controls and interval",
          "no theory-experiment results (results kind experiments.entropy_summary; "
          "`hsgprof experiments run --quick`)")
def _entropy(store) -> Drawn | None:
    ent, summary = store.get("experiments.entropy_summary"), store.get("experiments.summary")
    if ent is None:
        return None
    rows = [r for r in ent["rows"] if r["quantity"] == "H[nll_bit]"]
    known = {r["quantity"]: r["value"] for r in ent["rows"] if r["quantity"].startswith("known[")}
    frame = [{"label": f"{r['variant']} ({r['head']} head)", "value": r["value"], "ci_low": r["ci_low"],
              "ci_high": r["ci_high"], "role": "variant", "primary": bool(r.get("primary"))} for r in rows]
    by = {r["measurement"]: r for r in (summary["rows"] if summary else [])}
    controls = [by[m] for m in ("control_positive", "control_negative") if m in by]
    frame += [{"label": c["measurement"].replace("control_", "") + " control", "value": c["value"],
               "ci_low": c.get("ci_low"), "ci_high": c.get("ci_high"), "role": "control", "primary": True}
              for c in controls]
    if not frame:
        return None
    diff = by.get("entropy_difference")
    title = "bit NLL per variant"
    if diff is not None and diff.get("ci_low") is not None:
        what = str(diff.get("unit", "")).rsplit(", ", 1)[-1] or "difference"      # "H_grid − H_hybrid"
        title = (f"{what} = {diff['value']:.3g} [{diff['ci_low']:.3g}, {diff['ci_high']:.3g}] nats: "
                 f"{diff['verdict']}")
    meta = ent.get("meta") or {}
    size = scene_sizes(ent).get("val", "not recorded")
    power = by.get("power")
    drawn = [c["measurement"].removeprefix("control_") for c in controls]
    note = (f"controls drawn as diamonds: {' and '.join(drawn)}" if drawn else "") + (
        "" if len(drawn) == 2 else ("; " if drawn else "") + "controls absent from these results (no "
        + "/".join(f"control_{k}" for k in ("positive", "negative") if k not in drawn)
        + " rows in the experiment summary)")
    return Drawn(figures.entropy_comparison(pd.DataFrame(frame), known.get("known[h_bit_given_x]"),
                                            known.get("known[h_bit_given_local]"), title),
                 f"Held-out bit negative log-likelihood (nats per object; an upper bound on H(bit|X)) of each "
                 f"variant and head (filled: the head a verdict uses), mean and 95% interval over seeds "
                 f"{meta.get('seeds', '?')}; {note}"
                 + (f"; minimum detectable Δ {power['value']:.3g} {power.get('unit', '')}".rstrip() if power else "")
                 + f". Synthetic scenes, preset {meta.get('config_name', '?')}, val set, input {size}; trained on "
                 f"{trained_on(ent)}; {_source(store, ent)}.")


@headline("readings", "Verdicts under each reading of the seed",
          "no readings matrix in these results (results kind readings.matrix: rows claim, reading, verdict)")
def _readings(store) -> Drawn | None:
    doc = store.get("readings.matrix")
    if doc is None or not doc["rows"]:
        return None
    df = pd.DataFrame(doc["rows"])
    if "primary" in df:
        df["reading"] = [f"{r} (primary)" if p else r for r, p in zip(df["reading"], df["primary"])]
    return Drawn(figures.readings_matrix(df[["claim", "reading", "verdict"]], "verdict per claim and reading"),
                 "Each claim's verdict (colour) under each reading of the choices the seed leaves open; "
                 f"computed on {_device(doc)}; {_source(store, doc)}.")
