"""The report's sections: each reads results from the store and returns document blocks.

Numbers are formatted here and nowhere else, from the results files' own values; a section
whose results are missing says so instead of disappearing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from .document import Block, Figure, Heading, PageBreak, Paragraph, Table

MiB = 2 ** 20


def num(x: Any, digits: int = 3) -> str:
    """The one way a number is printed in the report tables (tests read the PDF back with it)."""
    if x is None or (isinstance(x, float) and pd.isna(x)):
        return ""
    return f"{x:.{digits}f}"


def scaled(series: pd.Series, scale: float, digits: int = 3) -> pd.Series:
    return series.map(lambda v: num(None if v is None or pd.isna(v) else v / scale, digits))


def _missing(what: str, how: str) -> Paragraph:
    return Paragraph(f"Not measured: no {what} results were found. Produce them with `{how}`.")


def _figures(store, files: list[str], caption) -> list[Block]:
    """The figures among ``files`` (names under the results folder's ``figures/``) this report may use.

    In the default mode that is the figures the profile's stages wrote; with ``--from-results`` every
    figure in the folder.
    """
    if store.results_dir is None:
        return []
    pngs = [(name, Path(store.results_dir) / "figures" / f"{name}.png") for name in files]
    return [Figure(png, caption(name)) for name, png in pngs if store.has_file(png)]


def _device_name(doc: dict[str, Any]) -> str:
    dev = doc["provenance"]["device"]
    return dev.get("gpu") or f"CPU ({dev.get('cpu', '?')})"


def _provenance_line(doc: dict[str, Any], path: str) -> str:
    p = doc["provenance"]
    dev = p["device"]
    where = dev.get("gpu") or f"CPU: {dev.get('cpu', '?')}, {dev.get('torch_threads', '?')} threads"
    return (f"Source: {path} — {where}; torch {p['libraries'].get('torch')}"
            + (f", CUDA {dev['cuda_runtime']}, driver {dev.get('driver')}" if dev.get("gpu") else "")
            + f"; commit {p['commit'][:12]}; {p['date']}; command: {p['command']}")


def verdict_counts(verdicts: pd.DataFrame) -> str:
    """"43 claims: 9 supported, 20 refuted, ..." (every status, zeros included, in the ledger's order)."""
    from hsgprof.claims.rules import STATUSES

    counts = verdicts["verdict"].value_counts()
    return f"{len(verdicts)} claims: " + ", ".join(f"{int(counts.get(v, 0))} {v}" for v in STATUSES)


def verdict_section(verdicts: pd.DataFrame, store, profile: str) -> list[Block]:
    cols = ["id", "statement", "claimed", "measured", "verdict", "reason", "device"]
    return [PageBreak(), Heading("Verdicts in full"),
            Paragraph(f"{verdict_counts(verdicts)}. '[estimate]' marks a value from an estimator (memory "
                      "estimator, FLOP counts standing in for a GPU time) rather than a direct measurement. "
                      f"Report profile: {profile}."),
            Table(verdicts[cols], "Every claim beside its measurement and verdict",
                  (1.4, 2.2, 1.2, 1.0, 1.0, 4.0, 1.3))]


def provenance_section(store, run_provenance: dict[str, Any]) -> list[Block]:
    p = run_provenance
    libs = ", ".join(f"{k} {v}" for k, v in p["libraries"].items())
    rows = [{"kind": kind, "file": store.path_of(doc), "device": doc["provenance"]["device"].get("gpu")
             or "CPU", "commit": doc["provenance"]["commit"][:12], "date": doc["provenance"]["date"],
             "command": doc["provenance"].get("command", "")}
            for source in (store.cpu, store.gpu) for kind, doc in sorted(source.items())]
    files = pd.DataFrame(rows, columns=["kind", "file", "device", "commit", "date", "command"])
    return [Heading("Provenance"),
            Paragraph(f"Report built at commit {p['commit']} on {p['date']}, {p['device'].get('cpu')} "
                      f"({p['device'].get('cpu_count')} cores), Python {p['python']}; {libs}. "
                      f"Command: {p['command']}"),
            Table(files, "Results files this report read", (1.4, 3.2, 1.4, 0.9, 1.4, 3.2))]


def counting_section(store) -> list[Block]:
    doc = store.get("count.components")
    out: list[Block] = [PageBreak(), Heading("Parameters and FLOPs per component")]
    if doc is None:
        return out + [_missing("counting", "python analyses/count_hsgdet.py --quick")]
    df = pd.DataFrame(doc["rows"])
    out.append(Paragraph("Convention: FLOPs = 2 × MACs (one multiply-add is 2 FLOPs); parameters in M "
                         "(1e6), FLOPs in G (1e9). The referee is the closed-form count on the meta device, "
                         "cross-checked op by op with torch's FlopCounterMode; 'GEMM' is convolution, "
                         "matrix-product and attention-product work, 'all' adds elementwise, norm, softmax "
                         "and interpolation work under the declared per-element rules. Seed FLOPs apply "
                         "to 1080×1920. " + _provenance_line(doc, store.path_of(doc))))
    for mode, part in df.groupby("mode", sort=False):
        t = pd.DataFrame({
            "component": part["component"],
            "params [M]": scaled(part["params"], 1e6),
            "seed params [M]": scaled(part["seed_params"], 1e6),
            "Δ params %": scaled(part["params_delta_pct"], 1, 1),
            "GEMM GFLOPs": scaled(part["referee_gemm_flops"], 1e9),
            "all GFLOPs": scaled(part["referee_all_flops"], 1e9),
            "seed GFLOPs": scaled(part["seed_flops"], 1e9),
            "share %": scaled(part["share"], 0.01, 2)})
        for backend in ("fcm", "thop", "fvcore"):
            col = f"{backend}_flops"
            if col in part and part[col].notna().any():
                t[f"{backend} GFLOPs"] = scaled(part[col], 1e9)
        out.append(Table(t, f"hsgdet-l, {mode} mode: input {part['input'].iloc[0]}, network input "
                            f"{part['network_input'].iloc[0]}"))
    audit = store.get("count.seed_audit")
    if audit is not None and audit["rows"]:
        a = pd.DataFrame(audit["rows"])
        out += [Heading("Seed arithmetic audit", 2),
                Table(a[["claim", "seed_expression", "seed_value", "recomputed", "measured", "unit", "reason"]],
                      "Every formula of the seed recomputed, beside the measured value",
                      (1.6, 1.3, 0.9, 0.9, 0.9, 0.6, 4.0))]
    backends = store.get("count.backends")
    if backends is not None:
        b = pd.DataFrame(backends["rows"])
        keep = [c for c in ("target", "mode", "input", "backend", "unit", "raw", "flops", "ratio_to_referee", "device",
                            "skipped") if c in b]
        out += [Heading("What each counter counts", 2), Table(b[keep], "Raw figure in each counter's own unit, "
                                                                "normalised FLOPs, and what it skipped")]
    validation = store.get("count.validation")
    if validation is not None:
        out += [Heading("Referee validation against published counts", 2),
                Table(pd.DataFrame(validation["rows"])[["model", "input", "published", "published_unit",
                                                        "referee", "delta_pct"]],
                      "torchvision Weights.meta['_ops'] (GMACs) and Ultralytics' YOLOv8-l (2 × MACs)")]
    out += _figures(store, list(_COUNT_FIGURES),
                    lambda name: f"{name.replace('_', ' ')} (FLOPs = 2 × MACs; {_count_figure_input(store, name)}; "
                                 "meta device, counted without compute)")
    return out


# figure -> (results kind, the rows it plots); its input sizes are read from those rows
_COUNT_FIGURES = {
    "count_components": ("count.components", {}),
    "count_flops_vs_resolution": ("count.sweeps", {"sweep": "input"}),
    "count_flops_vs_num_tokens": ("count.sweeps", {"sweep": "num_tokens"}),
    "count_flops_vs_num_queries": ("count.sweeps", {"sweep": "num_queries"}),
    "count_flops_vs_decoder_layers": ("count.sweeps", {"sweep": "decoder_layers"}),
    "count_flops_vs_token_scales": ("count.sweeps", {"sweep": "token_scales"}),
    "count_forward_backward": ("count.training", {}),
}


def _count_figure_input(store, name: str) -> str:
    """"input 1x3x1080x1920 (native), 1x3x1088x1920 (padded)": the inputs of the rows a figure plots."""
    kind, match = _COUNT_FIGURES[name]
    doc = store.get(kind)
    rows = [r for r in (doc["rows"] if doc else []) if all(r.get(k) == v for k, v in match.items())]
    seen: dict[str, None] = {}
    for r in rows:
        if r.get("input") is not None:
            net = r.get("network_input")
            how = ", ".join(x for x in (r.get("mode"), f"network input {net}" if net and net != r["input"] else None)
                            if x)
            seen[f"{r['input']} ({how})" if how else str(r["input"])] = None
    return ("input " + ", ".join(seen)) if seen else "input not recorded in its results"


def readings_section(store) -> list[Block]:
    """The primary-reading rule and its scores, each reading's size, and the readings × claims matrix."""
    out: list[Block] = [PageBreak(), Heading("Readings of the seed: the verdicts under every chassis")]
    prim = store.get("readings.primary")
    if prim is None:
        return out + [_missing("readings", "python analyses/readings.py")]
    p = pd.DataFrame(prim["rows"])
    out.append(Paragraph(
        "The seed fixes the channel plan, K, N, d_model and the decoder depth and leaves the chassis open (CSP "
        "block and depths, stem, PAN, dense head). Each reading is one chassis carrying the seed's plan "
        "(docs/readings.md). The primary reading, which hsgdet-l is an alias of, is chosen by a rule declared "
        f"in hsgprof/claims/readings.py before any verdict under it was computed: {prim['meta'].get('rule', '')} "
        f"Primary reading: {prim['meta'].get('primary')}. " + _provenance_line(prim, store.path_of(prim))))
    scores = pd.DataFrame({
        "reading": p["reading"], "chassis reference": p["reference"],
        "its widths (stem, P3, P4, P5)": p["reference_channels"].map(lambda c: "/".join(map(str, c))),
        "grid-only GFLOPs @640": scaled(p["grid_flops_640"], 1e9, 1),
        "depths": p["depths_match"],
        **{k.removeprefix("score_"): p[k].map(lambda v: num(v, 2)) for k in p.columns if k.startswith("score_")},
        "total": p["total"].map(lambda v: num(v, 2)), "primary": p["primary"].map({True: "yes", False: ""})})
    out.append(Table(scores, "Premise scores (0 to 1 each, equal weights; GEMM FLOPs = 2 × MACs, referee on the "
                             "meta device, grid-only variant at 640×640)"))
    comps = store.get("readings.components")
    if comps is not None:
        c = pd.DataFrame(comps["rows"])
        tot = c[c["component"] == "Total"]
        size = tot.pivot_table(index="reading", columns=["input", "mode"], values="referee_gemm_flops",
                               aggfunc="first", sort=False)
        params = tot.groupby("reading", sort=False)["params"].first()
        t = pd.DataFrame({"reading": params.index, "params [M]": scaled(params, 1e6).values})
        for (inp, mode) in size.columns:
            t[f"GFLOPs {inp} {mode}"] = scaled(size[(inp, mode)], 1e9, 1).reindex(params.index).values
        out.append(Table(t, "Each reading, hybrid variant: parameters and GEMM GFLOPs (2 × MACs; referee, meta "
                            "device; network input 1088 rows in padded mode)"))
    from hsgprof.claims.matrix import headlines, readings_matrix

    m = readings_matrix(store)
    h = headlines(m)
    out += [Heading("Each claim under every reading", 2),
            Table(h[["claim", "claimed", "summary", "primary_verdict"]],
                  "Every parameter, FLOP and memory claim judged under every reading by the ledger's own measures and "
                  "rules (memory from the estimator: estimates; GPU results only where measured on that reading's "
                  "config)", (1.6, 1.6, 5.0, 1.2))]
    out += _figures(store, ["readings_matrix"],
                    lambda name: "Readings × claims (verdict colour, measured value; 1080×1920 native unless the "
                                 "claim says otherwise; counts on the meta device, memory from the estimator)")
    return out


def fit_section(store) -> list[Block]:
    """The budget fit's answer, the closest configurations and the Pareto figure."""
    out: list[Block] = [Heading("Budget fit: does any configuration meet both budgets?", 2)]
    doc = store.get("fit.hsgdet")
    if doc is None:
        return out + [_missing("budget fit", "python analyses/fit_hsgdet.py")]
    s, st = doc["meta"]["summary"], doc["meta"].get("search", {})
    out.append(Paragraph(
        f"Answer: {s['answer']}. Budgets: {s['params_budget'] / 1e6:g}M parameters and "
        f"{s['flops_budget'] / 1e9:g} GFLOPs at 1080×1920 (native, GEMM FLOPs = 2 × MACs, referee on the meta "
        f"device), each within ±{s['tolerance']:.0%}. {st.get('configurations')} configurations of the open choices "
        f"(docs/fit.md) in {st.get('seconds')} s; components counted {st.get('components_counted')}, recalled "
        f"from the cache {st.get('components_recalled')}. " + _provenance_line(doc, store.path_of(doc))))
    parts = [("seed_plan_anchor_free", "seed channel plan, anchor-free head"),
             ("seed_plan_any_head", "seed channel plan, any head"),
             ("free_plan_anchor_free", "channel plan free, anchor-free head"), ("free_plan_any_head", "free, any head")]
    counts = pd.DataFrame([{"search": label, "configurations": s[k]["configurations"], "meet params": s[k]["meet_params"],
                            "meet FLOPs": s[k]["meet_flops"], "meet both": s[k]["meet_both"]} for k, label in parts])
    out.append(Table(counts, "How many configurations meet each budget (±5%; 1080×1920 native)"))
    close = pd.DataFrame(s["free_plan_any_head"]["closest"])
    if len(close):
        close["params [M]"] = scaled(close.pop("params"), 1e6, 2)
        close["GFLOPs"] = scaled(close.pop("flops"), 1e9, 1)
        for c in ("params_dev", "flops_dev", "distance"):
            close[c] = close[c].map(lambda v: num(100 * v, 1))
        out.append(Table(close, "The closest configurations (distance = the larger relative deviation, %; "
                                "1080×1920 native)"))
    return out + _figures(store, ["fit_pareto"], lambda name: "Parameters against GEMM GFLOPs at 1080×1920 (native; "
                                                                "FLOPs = 2 × MACs): every configuration, the Pareto "
                                                                "front, the seed's ±5% box and every reading")


def memory_section(store) -> list[Block]:
    out: list[Block] = [PageBreak(), Heading("Memory")]
    est = store.get("memory.hsgdet.estimates")
    if est is None:
        out.append(_missing("memory estimator", "python analyses/memory_hsgdet.py --quick"))
    else:
        df = pd.DataFrame(est["rows"])
        cols = [c for c in ("target", "mode", "precision", "optimizer", "batch", "input", "params_MiB", "grads_MiB",
                            "optimizer_MiB", "saved_activations_MiB", "activation_peak_MiB", "peak_allocated_MiB",
                            "peak_reserved_MiB") if c in df]
        out += [Paragraph("Units: MiB (2^20 bytes). 'Allocated' is what tensors use; 'reserved' is what the CUDA "
                          "caching allocator holds (what nvidia-smi and OOMs see). These are the estimator's "
                          "predictions for a CUDA device, computed on fake tensors without a GPU. "
                          + _provenance_line(est, store.path_of(est))),
                Table(_mib(df[cols]), "Estimated memory of one step (estimate; MiB; input per row; "
                                      f"predicted for a CUDA device, computed on {_device_name(est)})")]
    gpu = store.get("memory-cuda", prefer_gpu=True)
    if gpu is None:
        out.append(Paragraph("GPU: not measured on a GPU. The figures above are CPU-side estimates."))
    else:
        g = _measured_targets(gpu, pd.DataFrame(gpu["rows"]))
        cols = [c for c in ("target", "mode", "precision", "batch", "phase", "measured_peak_allocated_MiB",
                            "predicted_peak_allocated_MiB", "allocated_ratio", "measured_peak_reserved_MiB",
                            "predicted_peak_reserved_MiB", "status") if c in g]
        out += [Heading("Measured on a GPU", 2),
                Paragraph(GPU_NAMES + _subject_note(store, gpu) + " " + _provenance_line(gpu, store.path_of(gpu))),
                Table(_mib(g[cols]), "CUDA max_memory_allocated / max_memory_reserved per phase vs the estimator "
                                     f"(MiB; input {_inputs(gpu)}; {_device_name(gpu)})")]
    mb_gpu = store.get("max-batch-16gb", prefer_gpu=True)
    mb_est = store.get("memory.hsgdet.max_batch")
    out.append(Heading("The 16 GB question", 2))
    if mb_gpu is not None:
        m = _measured_targets(mb_gpu, pd.DataFrame(mb_gpu["rows"]))
        cols = [c for c in ("target", "mode", "precision", "input_hw", "card", "usable_GiB", "measured_max_batch",
                            "predicted_max_batch", "measured_trial_batches") if c in m]
        out += [Paragraph(_provenance_line(mb_gpu, store.path_of(mb_gpu))),
                Table(m[cols], "Largest batch on an emulated 16 GB card (set_per_process_memory_fraction), "
                               "measured by an OOM-safe search, beside the estimator's prediction "
                               f"(input per row; {_device_name(mb_gpu)})")]
    else:
        out.append(Paragraph("Not measured on a GPU."))
    if mb_est is not None:
        m = pd.DataFrame(mb_est["rows"])
        cols = [c for c in ("target", "mode", "precision", "input_hw", "card", "usable_GiB", "max_batch",
                            "first_failing_batch") if c in m]
        out.append(Table(m[cols], "Largest batch predicted by the estimator without a GPU (estimate; input per "
                                  f"row; computed on {_device_name(mb_est)})"))
    return out


def _measured_targets(doc: dict[str, Any], df: pd.DataFrame) -> pd.DataFrame:
    """GPU rows with each target named by the config it was measured on (``hsgdet-l`` measured before it
    became the primary reading's alias shows as ``hsgdet-l-v8``; docs/readings.md)."""
    from hsgprof.claims.readings import measured_label

    if "target" not in df:
        return df
    return df.assign(target=df["target"].map(lambda t: measured_label(doc, t)))


def _subject_note(store, doc: dict[str, Any]) -> str:
    """A sentence when none of a GPU file's rows was measured on the subject's config (else empty)."""
    from hsgprof.claims.readings import measured_on

    subject = getattr(store, "subject", "hsgdet-l")
    if any(measured_on(doc, r.get("target", ""), subject) for r in doc["rows"]):
        return ""
    return (f" {subject} as it is defined today was not measured on a GPU: no row below is its config, and its "
            "claims use the CPU-side estimates.")


GPU_NAMES = ("GPU results name the model config they were measured on: a result whose preset has changed "
             "meaning since (hsgdet-l follows the primary reading) is shown under the reading it was measured "
             "on and is never used for today's preset.")


def _mib(df: pd.DataFrame) -> pd.DataFrame:
    """MiB and ratio columns printed with :func:`num` (one decimal for MiB)."""
    out = df.copy()
    for col in out.columns:
        if col.endswith("_MiB"):
            out[col] = out[col].map(lambda v: num(v, 1))
        elif col.endswith("_ratio"):
            out[col] = out[col].map(num)
    return out


def _inputs(doc: dict[str, Any]) -> str:
    """The distinct inputs of a results file's rows (``input`` or ``input_hw``), in order."""
    seen: dict[str, None] = {}
    for r in doc["rows"]:
        value = r.get("input", r.get("input_hw"))
        if value is not None:
            seen["x".join(map(str, value)) if isinstance(value, list) else str(value)] = None
    return ", ".join(seen) if seen else "not recorded"


LATENCY_MEASURES = ("latency_ratio_yolo", "latency_ratio_yolo_compiled", "global_share_time",
                    "global_share_time_compiled")
PATHS_NOTE = ("Paths: 'eager' is plain PyTorch; 'compiled:<mode>' is torch.compile of the whole network (mode "
              "reduce-overhead adds CUDA graphs: one launch replays a captured region); 'compiled:<mode>,split' is "
              "compiled with the graph broken at every component boundary, the only compiled form whose components "
              "can be timed (nothing is fused across a boundary). Outputs of every compiled run were compared with "
              "eager's (max |compiled − eager| within the stated tolerance × max |eager|, per output). A compiled "
              "step times each target eager too, beside its compiled run ('step' column); the eager verdicts read "
              "the eager step.")


def _latency_verdicts(store) -> pd.DataFrame:
    from hsgprof.claims.evaluate import judge
    from hsgprof.claims.ledger import LEDGER

    rows = [judge(c, store) for c in LEDGER if c.measure in LATENCY_MEASURES]
    return pd.DataFrame(rows)[["id", "statement", "measured", "verdict", "reason", "device"]]


def _formatted(df: pd.DataFrame, keep: tuple[str, ...], digits: int = 3) -> pd.DataFrame:
    """The ``keep`` columns present in ``df``; numbers printed with :func:`num` (labels left as they are)."""
    labels = ("step", "target", "path", "memory_format", "precision", "batch", "component", "outputs_equal",
              "sdpa_text",
              "graphs", "compiled_regions", "graph_breaks", "kernels")
    t = df[[c for c in keep if c in df]].copy()
    for col in t.columns:
        if col not in labels:
            t[col] = t[col].map(lambda v: num(v, digits) if isinstance(v, (int, float)) and not isinstance(v, bool)
                                else ("" if v is None else v))
    return t


def latency_section(store) -> list[Block]:
    out: list[Block] = [PageBreak(), Heading("Latency")]
    lat = store.get("latency-cuda", prefer_gpu=True)
    if lat is None:
        out.append(Paragraph("Not measured on a GPU: run `hsgprof gpu-suite` on a CUDA machine and commit its "
                             "folder under reports/measurements/. Beside it, the CPU-side estimate the verdict "
                             "table shows for the latency claims (FLOP counts, not times; no verdict is drawn "
                             "from them):"))
        return out + [Table(_latency_verdicts(store), "Latency claims, eager and compiled: not measured on a GPU; "
                                                      "CPU-side estimate (FLOPs)", (1.3, 1.8, 1.8, 1.0, 4.0, 1.4))]
    df = _measured_targets(lat, pd.DataFrame(lat["rows"]))
    for col, default in (("path", "eager"), ("memory_format", "contiguous")):
        df[col] = df[col].fillna(default) if col in df else default
    where = f"input {_inputs(lat)}; {_device_name(lat)}"
    busy = (lat.get("meta") or {}).get("estimator_jobs_running_at_start") or 0
    caveat = (f" Caveat recorded by the suite: {busy} CPU estimator job(s) were still running on the host when "
              "timing began; batch-1 timings are launch-bound and may be perturbed." if busy else "")
    compiled = df["path"].str.startswith("compiled").any()
    reference = (lat.get("meta") or {}).get("reference", "the reference")
    out += [Paragraph(GPU_NAMES + _subject_note(store, lat) + " Medians and inter-quartile ranges over repeated runs after warm-up, CUDA events, "
                      f"models timed side by side in interleaved rounds; input {_inputs(lat)} (batch as "
                      "shown), network without post-processing." + caveat + " "
                      + (PATHS_NOTE + " " if compiled else "No compiled run is in this file: the compiled "
                         "claims are not measured on a GPU. ") + _provenance_line(lat, store.path_of(lat))),
            Table(_formatted(df[df["kind"] == "end_to_end"],
                             ("step", "target", "path", "memory_format", "precision", "batch", "median_ms", "iqr_ms",
                              "throughput_img_s", "compile_s", "cpu_busy_fraction")),
                  f"End-to-end latency (ms; compile_s: seconds to compile, never in the latency; cpu_busy_fraction: "
                  f"share of all host CPUs busy while timing; {where})"),
            Table(_formatted(df[df["kind"].isin(["ratio", "vs_eager"])],
                             ("step", "target", "path", "memory_format", "precision", "batch", "component",
                              "ratio_median_of_rounds", "ratio_q1", "ratio_q3")),
                  "Latency ratios measured in the same run (median of per-round ratios, IQR): to "
                  f"{reference} on the same path, and to the same target's eager run ({where})"),
            Table(_formatted(df[df["kind"] == "global_share"],
                             ("target", "path", "precision", "batch", "median_ms", "time_share", "flops_share")),
                  "Global reasoning (global block, token extractor, token fusion, sparse head): share of time beside "
                  f"share of FLOPs (FLOPs = 2 × MACs; {where})")]
    comp = df[df["kind"] == "compile"]
    if len(comp):
        out.append(Table(_formatted(comp, ("target", "path", "precision", "batch", "compile_s", "graphs",
                                           "compiled_regions", "graph_breaks", "outputs_equal", "max_rel_diff",
                                           "tolerance")),
                         f"Compilation: seconds of the first call, graphs and graph breaks, outputs against eager "
                         f"({where})"))
    att = df[df["kind"] == "attention"]
    if len(att):
        out.append(Table(att[[c for c in ("target", "path", "memory_format", "precision", "batch", "sdpa_text")
                              if c in att]],
                         f"Attention kernels that ran, per forward (from the profiler's op names; {where})"))
    out += _profile_blocks(store)
    out.append(Table(_latency_verdicts(store), "Latency claims under each path (rules as declared in the ledger)",
                     (1.3, 1.8, 1.8, 1.0, 4.0, 1.4)))
    return out


def _profile_blocks(store) -> list[Block]:
    """The per-component kernel-time / TFLOP/s table, when the GPU folder has one."""
    prof = store.get("profile-cuda", prefer_gpu=True)
    if prof is None:
        return []
    df = pd.DataFrame(prof["rows"])
    peaks = df[df["kind"] == "peak"]
    peak_text = "; ".join(f"{r['precision']}: {num(r['tflops'], 1)} TFLOP/s ({r['dtype']} matmul, n = {int(r['n'])})"
                          for _, r in peaks.iterrows())
    table = df[df["kind"].isin(["profile_total", "profile_component"])].copy()
    if "flops" in table:
        table["GFLOPs"] = table["flops"].map(lambda v: None if v is None or pd.isna(v) else v / 1e9)
    return [Heading("Where the time goes: per component, against the measured peak", 2),
            Paragraph("torch.profiler with a record_function range per component; device_ms is the summed duration "
                      "of the CUDA kernels launched inside the range, host_ms the range's CPU time (Python and "
                      "launches). A component whose host time exceeds its kernel time leaves the GPU idle: launch "
                      "overhead, not arithmetic. Achieved TFLOP/s = GEMM FLOPs (2 × MACs) / kernel time; the peak "
                      f"is a matmul measured in the same run ({peak_text or 'not measured'}). A whole-graph compile "
                      "keeps no component ranges, so its rows are totals only. "
                      + _provenance_line(prof, store.path_of(prof))),
            Table(_formatted(table, ("target", "path", "component", "device_ms", "host_ms", "kernels", "GFLOPs",
                                     "achieved_tflops", "fraction_of_peak", "time_share")),
                  f"Per-component kernel time and achieved TFLOP/s (input {_inputs(prof)}; {_device_name(prof)})")]


METHOD_NOTES = [
    ("FLOPs", "One multiply-add = 2 FLOPs; MACs are called MACs. The seed's GFLOPs derive from YOLO-l's published "
              "figure, which Ultralytics computes as 2 × thop MACs, so FLOPs are compared as 2 × MACs. Counts are of "
              "the network without post-processing (NMS, matching), as YOLO's are. Counters disagree: each "
              "backend's raw figure, unit and skipped ops are shown; the referee is closed-form and path-independent."),
    ("Input modes", "1080×1920 is not divisible by 32: stride-2 convs give 540, 270, 135, 68, 34 rows, so P4 is "
                    "68×120 (the seed says 67). 'native' keeps 1080 rows and the neck resizes by one row; 'padded' "
                    "letterboxes to 1088 as YOLO inference does. Tables say which."),
    ("Memory", "Binary units (MiB, GiB). Allocated = tensors; reserved = the caching allocator's segments (what an "
               "OOM sees). The estimator runs the step on fake tensors and models the allocator; it is scored "
               "against CUDA measurements where they exist. The seed's MB/GB are read as decimal."),
    ("Latency", "Timed on a GPU only (a CPU time says nothing about 'near YOLO-l' on the hardware the seed means); "
                "medians, IQR, side-by-side ratios from one run. Each latency claim is judged twice, under the same "
                "rule: on eager PyTorch and under torch.compile (ids ending in .compiled), so a verdict on the design "
                "is told apart from a verdict on the framework's launch overhead. Time shares differ from FLOP "
                "shares: top-K, gather and small attention kernels are memory- and launch-bound."),
    ("Verdicts", "Each claim's rule and tolerance are declared in the ledger before measuring: '≈' numbers within "
                 "±10%, 'comparable'/'near' within ±25%, bounds as stated; differences with confidence intervals are "
                 "supported only when the interval excludes zero. 'not measurable as stated' says why; 'not "
                 "measured' means the results were missing from this run, or (latency claims) that no GPU "
                 "measurement exists and only a CPU-side FLOP estimate is shown, which gets no verdict."),
    ("Entropy", "H(Y|X;θ) is estimated as held-out negative log-likelihood on a declared discrete representation "
                "of Y, which upper-bounds the true conditional entropy. Because the queries Q are a deterministic "
                "function of X, I(Y; Q | X) = 0 exactly; the quantity carrying the seed's intent is I(Y; Q | G), "
                "G the grid branch's features, estimated with estimators validated on known ground truth."),
]


def method_section() -> list[Block]:
    return [PageBreak(), Heading("Method notes: what each measurement can and cannot show"),
            Table(pd.DataFrame(METHOD_NOTES, columns=["topic", "note"]), "", (1.0, 8.0))]
