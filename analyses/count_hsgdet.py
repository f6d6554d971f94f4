"""HSG-Det by count: per-component tables (both input modes, every backend), sweeps, forward/backward
and training-step FLOPs, the seed's arithmetic audit, a depth calibration, and the referee's validation.

    python analyses/count_hsgdet.py --quick        # the report's mode: a few points per sweep (~1-2 min, 2 cores)
    python analyses/count_hsgdet.py                # the full sweeps (resolutions 640² … 2160×3840, K, N, layers,
                                                   # token scales) and a real training step with loss and matching

From Python (the report): ``from analyses.count_hsgdet import run; paths = run(quick=True)``.

Writes tidy results with provenance to ``reports/results/count_*.json`` and figures (PNG and PDF) to
``reports/results/figures/``; a Markdown digest of the tables goes to ``reports/results/count_hsgdet.md``.
FLOPs = 2 × MACs throughout; the referee's GEMM FLOPs are the headline figure.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:                      # `python analyses/count_hsgdet.py` from anywhere
    sys.path.insert(0, str(REPO))

from hsgprof.adapters.hsgdet import synthetic_targets  # noqa: E402
from hsgprof.adapters.hsgdet import primary  # noqa: E402
from hsgprof.claims.readings import FAMILIES, READINGS  # noqa: E402
from hsgprof.claims.seed import SEED_COMPONENT_PARAMS, SEED_FLOPS  # noqa: E402
from hsgprof.components import param_count  # noqa: E402
from hsgprof.counting import count, count_modes, count_torchvision  # noqa: E402
from hsgprof.counting.audit import reference_validation, seed_audit  # noqa: E402
from hsgprof.counting.figures import components_figure, sweep_figure, training_figure  # noqa: E402
from hsgprof.counting.sweep import count_step, sweep_config, sweep_inputs  # noqa: E402
from hsgprof.counting.tables import for_display  # noqa: E402
from hsgprof.results import atomic_write_text, render_table, write_results  # noqa: E402
from hsgprof.targets import load_target, output_loss  # noqa: E402

PRESET = "hsgdet-l"
YOLO_L = FAMILIES[READINGS[primary()].family]["l"]      # the YOLO-l reference of hsgdet-l's chassis family
SEED_INPUT = "x".join(map(str, SEED_FLOPS["input_hw"]))

FULL = {
    "resolutions": ["640x640", "720x1280", "1080x1920", "1440x2560", "2160x3840"],
    "num_tokens": [32, 64, 128, 256, 512, 1024, 2040],
    "num_queries": [50, 100, 200, 300, 500, 900],
    "decoder_layers": [1, 2, 3, 6, 9, 12],
    "token_scales": [("p5",), ("p4", "p5"), ("p3", "p4", "p5")],
    "backward_inputs": ["640x640", "1080x1920", "2160x3840"],
    "real_step_input": "1x3x320x320",
    "table_backends": "all",                       # fcm@cpu and fvcore run real forwards at 1080p
    "comparison_input": None,
    "depths": range(1, 13),
}
QUICK = {
    "resolutions": ["640x640", "1080x1920", "2160x3840"],
    "num_tokens": [64, 256, 1024],
    "num_queries": [100, 200, 900],
    "decoder_layers": [1, 6, 12],
    "token_scales": [("p5",), ("p3", "p4", "p5")],
    "backward_inputs": ["640x640", "1080x1920"],
    "real_step_input": None,
    "table_backends": "analytic,fcm,thop",         # meta-device backends only at 1080p ...
    "comparison_input": "640x640",                 # ... and every backend (real forwards) at 640²
    "depths": range(1, 9),
}


# ------------------------------------------------------------------------------------------ tables
def component_tables(backends: str) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """hsgdet-l at 1080×1920 in both modes: component table, op table, backend rows."""
    results = count_modes(PRESET, backends=backends)
    comps = pd.concat([r.table("component") for r in results.values()], ignore_index=True)
    ops = pd.concat([r.table("op") for r in results.values()], ignore_index=True)
    brow = []
    for mode, r in results.items():
        for name, b in r.backends.items():
            brow.append({"target": PRESET, "mode": mode, "input": SEED_INPUT, "backend": name, "unit": b.unit, "raw": b.raw, "flops": b.flops,
                         "referee_flops": r.flops, "ratio_to_referee": (b.flops / r.flops) if b.flops else None,
                         "device": b.device, "seconds": b.seconds, "skipped": b.skipped_text(),
                         "notes": "; ".join(b.notes), "left_behind_and_restored": "; ".join(b.restored),
                         "error": b.error})
    return results, comps, ops, pd.DataFrame(brow)


COMPARISON_TARGETS = (PRESET, "yolov5l-ref")


def backend_comparison(inp: str) -> pd.DataFrame:
    """Every backend and every optional peer on hsgdet-l and yolov5l-ref at ``inp`` (native): raw figure, unit,
    normalised FLOPs, what each skipped (a peer that is not installed gives a row with its error)."""
    rows = []
    for target in COMPARISON_TARGETS:
        r = count(target, inp, "native", "all,peers")
        rows += [{"target": target, "mode": r.mode, "input": inp, "backend": n, "unit": b.unit, "raw": b.raw,
                  "flops": b.flops, "referee_flops": r.flops,
                  "ratio_to_referee": (b.flops / r.flops) if b.flops else None,
                  "device": b.device, "seconds": b.seconds, "skipped": b.skipped_text(),
                  "notes": "; ".join(b.notes), "left_behind_and_restored": "; ".join(b.restored),
                  "error": b.error} for n, b in r.backends.items()]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ sweeps
def sweeps(cfg: dict[str, Any]) -> pd.DataFrame:
    rows = sweep_inputs(PRESET, cfg["resolutions"], modes=("native", "padded"), backends="analytic,fcm")
    for field in ("num_tokens", "num_queries", "decoder_layers", "token_scales"):
        rows += sweep_config(PRESET, field, cfg[field], SEED_INPUT, modes=("native",), backends="analytic,fcm")
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------- training
def network_loss(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Network only (no matching or loss terms): forward in train mode, the sum of the raw outputs."""
    from hsgdet.detector import flat_raw

    xp, _ = model.preprocess(x)
    return output_loss(flat_raw(model.forward_raw(xp)))


def training(cfg: dict[str, Any]) -> pd.DataFrame:
    """Forward vs backward FLOPs, measured by the referee and by FlopCounterMode (never assumed 2×)."""
    rows = []
    for inp in cfg["backward_inputs"]:
        target = load_target(PRESET, device="meta")
        model = target.model.train()
        shape = (1, 3, *map(int, inp.split("x")))
        r = count_step(model, network_loss, torch.empty(shape, device="meta"))
        rows.append({"what": "network fwd+bwd (meta)", "input": inp, "device": "meta", **r})
    if cfg["real_step_input"]:
        target = load_target(PRESET, device="cpu")
        model = target.model.train()
        shape = tuple(int(v) for v in cfg["real_step_input"].split("x"))
        x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
        # The synthetic targets are drawn here, outside the counted step: making data is not training work.
        targets = synthetic_targets(shape[0], shape[2], shape[3], model.cfg.num_classes, seed=0)
        r = count_step(model, lambda m, xb: m(xb, targets)["loss"], x)
        rows.append({"what": "training step with loss + matching (cpu)",
                     "input": "x".join(map(str, shape[-2:])), "device": "cpu", **r})
    df = pd.DataFrame(rows)
    df["unknown_ops"] = df.unknown_ops.map(lambda d: ", ".join(f"{k}×{v}" for k, v in d.items()))
    return df


# ------------------------------------------------------------------------------------ calibration
def calibration(cfg: dict[str, Any]) -> pd.DataFrame:
    """Which CSP depths (and global-block layers) meet the seed's per-stage parameter budgets, and the
    FLOPs the closest configuration implies. Channels stay the seed's; only depths and the block type move."""
    from hsgdet import get_config
    from hsgdet.backbone import GlobalBlock, csp_stage
    from hsgdet.layers import SPPF, ConvBNAct

    c = get_config(PRESET)
    c0, c1, c3, c4, c5 = c.channels
    rows = []
    with torch.device("meta"):
        stem = param_count(ConvBNAct(3, c0, 3, 2))
        for block in ("c2f", "c3"):
            s4 = {n: param_count(csp_stage(c0, c1, n, block)) for n in cfg["depths"]}
            s8 = {n: param_count(csp_stage(c1, c3, n, block)) for n in cfg["depths"]}
            p4 = {n: param_count(csp_stage(c3, c4, n, block)) for n in cfg["depths"]}
            sppf = param_count(SPPF(c5, c5))
            p5 = {n: param_count(csp_stage(c4, c5, n, block)) + sppf for n in cfg["depths"]}
            p3 = {(a, b): s4[a] + s8[b] for a in cfg["depths"] for b in cfg["depths"]}
            best: dict[str, Any] = {}
            for stage, table, budget in (("P3 stage", p3, SEED_COMPONENT_PARAMS["P3 stage"]),
                                         ("P4 stage", p4, SEED_COMPONENT_PARAMS["P4 stage"]),
                                         ("P5 stage", p5, SEED_COMPONENT_PARAMS["P5 stage"])):
                depth, params = min(table.items(), key=lambda kv: (abs(kv[1] - budget), kv[0]))
                best[stage] = depth
                rows.append({"kind": "stage", "csp_block": block, "row": stage, "depths": str(depth),
                             "params": params, "seed_params": budget, "delta_pct": (params - budget) / budget * 100,
                             "min_params": min(table.values()), "within_10pct": abs(params - budget) <= 0.1 * budget,
                             "shipped_depths": str({"P3 stage": tuple(c.depths[:2]), "P4 stage": c.depths[2],
                                                    "P5 stage": c.depths[3]}[stage])})
            rows.append({"kind": "stage", "csp_block": block, "row": "Stem", "depths": "-", "params": stem,
                         "seed_params": SEED_COMPONENT_PARAMS["Stem"],
                         "delta_pct": (stem - SEED_COMPONENT_PARAMS["Stem"]) / SEED_COMPONENT_PARAMS["Stem"] * 100,
                         "min_params": stem, "within_10pct": False, "shipped_depths": "-"})
            glob = {n: param_count(GlobalBlock(c5, c.global_dim, c.global_heads, c.global_ffn, n)) for n in range(1, 7)}
            g_layers, g_params = min(glob.items(), key=lambda kv: abs(kv[1] - SEED_COMPONENT_PARAMS["Global block"]))
            budget = SEED_COMPONENT_PARAMS["Global block"]
            rows.append({"kind": "stage", "csp_block": block, "row": "Global block", "depths": f"{g_layers} layers",
                         "params": g_params, "seed_params": budget, "delta_pct": (g_params - budget) / budget * 100,
                         "min_params": min(glob.values()), "within_10pct": abs(g_params - budget) <= 0.1 * budget,
                         "shipped_depths": f"{c.global_layers} layers"})
            depths = (*best["P3 stage"], best["P4 stage"], best["P5 stage"])
            for mode in ("native", "padded"):
                res = count(PRESET, None, mode, "analytic", depths=depths, csp_block=block, global_layers=g_layers)
                t = res.table("component").set_index("component")
                rows.append({"kind": "model", "csp_block": block, "row": f"calibrated model ({mode})",
                             "depths": f"{depths}, global {g_layers}", "params": res.params,
                             "seed_params": SEED_COMPONENT_PARAMS["Total"],
                             "delta_pct": (res.params - SEED_COMPONENT_PARAMS["Total"]) / SEED_COMPONENT_PARAMS["Total"] * 100,
                             "flops": res.flops, "flops_all": res.flops_all,
                             "backbone_flops": float(t.loc["Backbone", "referee_gemm_flops"]),
                             "seed_flops": SEED_FLOPS["total_gflops"] * 1e9,
                             "global_share": (res.global_share or {}).get("share"), "mode": mode})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------- validation
def validation() -> pd.DataFrame:
    """The referee against published counts: torchvision ``_ops`` (GMACs) and the YOLO references (GFLOPs at 640,
    parameters)."""
    rows = []
    for name in ("resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "vit_b_16", "swin_t"):
        res, w, crop = count_torchvision(name)
        pub = w.meta["_ops"] * 1e9
        rows.append({"model": f"torchvision {name}", "input": f"{crop}x{crop}", "published": pub,
                     "published_unit": "MACs (torchvision _ops)", "referee": res.macs,
                     "delta_pct": (res.macs - pub) / pub * 100, "check": res.check["status"]})
    return pd.concat([pd.DataFrame(rows), reference_validation("analytic,thop")], ignore_index=True)


# --------------------------------------------------------------------------------------------- run
def _save(fig, folder: Path, name: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        p = folder / f"{name}.{ext}"
        fig.savefig(p, dpi=150)
        paths.append(p)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return paths


def digest(results: dict[str, Any], comps: pd.DataFrame, backends: pd.DataFrame, audit: pd.DataFrame,
           calib: pd.DataFrame, valid: pd.DataFrame, train: pd.DataFrame, quick: bool) -> str:
    """A Markdown digest of the tables (for people; the JSON files are the data)."""
    out = [f"# HSG-Det by count ({'quick' if quick else 'full'} run)", "",
           "FLOPs = 2 × MACs; the referee's GEMM FLOPs are the headline; params in M, FLOPs in G.", ""]
    for mode, r in results.items():
        t = comps[comps["mode"] == mode]
        out += [f"## Per component, {mode} (network input {'x'.join(map(str, r.network_input))})", "",
                render_table(for_display(t).drop(columns=["mode"], errors="ignore"), "md"), "",
                f"Global reasoning share: {r.global_share['share']:.2%} of GEMM FLOPs "
                f"({r.global_share['share_all']:.2%} of all FLOPs).", ""]
    out += ["## Backends", "", render_table(backends.drop(columns=["notes"]), "md"), "",
            "## Seed arithmetic audit", "", render_table(audit, "md"), "",
            "## Depth calibration", "", render_table(calib, "md"), "",
            "## Forward / backward", "", render_table(train, "md"), "",
            "## Validation of the referee", "", render_table(valid, "md"), ""]
    return "\n".join(out)


def run(quick: bool = True, out_dir: str | Path = REPO / "reports" / "results", figures: bool = True,
        backends: str | None = None) -> dict[str, Path]:
    """Run the study; returns the paths written (results JSON, digest, figures)."""
    cfg = QUICK if quick else FULL
    out = Path(out_dir)
    config = {"quick": quick, "preset": PRESET, "input": SEED_INPUT,
              **{k: [list(v) if isinstance(v, tuple) else v for v in val] if isinstance(val, (list, range)) else val
                 for k, val in cfg.items()}}
    command = f"python analyses/count_hsgdet.py{' --quick' if quick else ''}"
    paths: dict[str, Path] = {}
    t0 = time.perf_counter()

    results, comps, ops, brows = component_tables(backends or cfg["table_backends"])
    native = results["native"]
    if cfg["comparison_input"]:
        brows = pd.concat([brows, backend_comparison(cfg["comparison_input"])], ignore_index=True)
    meta = _meta(results)
    paths["components"] = write_results(out / "count_hsgdet_components.json", "count.components", comps, config,
                                        meta, command)
    paths["ops"] = write_results(out / "count_hsgdet_ops.json", "count.ops", ops, config, meta, command)
    paths["backends"] = write_results(out / "count_hsgdet_backends.json", "count.backends", brows, config, meta,
                                      command)
    sw = sweeps(cfg)
    paths["sweeps"] = write_results(out / "count_hsgdet_sweeps.json", "count.sweeps", sw, config, meta, command)
    train = training(cfg)
    paths["training"] = write_results(out / "count_hsgdet_training.json", "count.training", train, config, meta,
                                      command)
    h640 = count(PRESET, "640x640", backends="analytic")
    y640 = count(YOLO_L, "640x640", backends="analytic")
    y1080 = count(YOLO_L, SEED_INPUT, backends="analytic")
    if set(results) >= {"native", "padded"}:
        audit = seed_audit(native, results["padded"], h640, y640, y1080, reference=YOLO_L)
    else:
        audit = pd.DataFrame()
    paths["audit"] = write_results(out / "count_seed_audit.json", "count.seed_audit", audit, config, meta, command)
    calib = calibration(cfg)
    paths["calibration"] = write_results(out / "count_calibration.json", "count.calibration", calib, config, meta,
                                         command)
    valid = validation()
    paths["validation"] = write_results(out / "count_validation.json", "count.validation", valid, config, meta,
                                        command)
    if figures:
        fig_dir = out / "figures"
        px = [int(r.split("x")[0]) * int(r.split("x")[1]) / 1e6 for r in cfg["resolutions"]]
        figs = {"count_flops_vs_resolution": sweep_figure(sw, "input", "input megapixels", px),
                "count_flops_vs_num_tokens": sweep_figure(sw, "num_tokens", "K (tokens per scale)"),
                "count_flops_vs_num_queries": sweep_figure(sw, "num_queries", "N (queries)"),
                "count_flops_vs_decoder_layers": sweep_figure(sw, "decoder_layers", "decoder layers"),
                "count_flops_vs_token_scales": sweep_figure(sw, "token_scales", "token scales"),
                "count_forward_backward": training_figure(train),
                "count_components": components_figure(comps[comps["mode"] == "native"],
                                                      "HSG-Det-l per component, native 1080×1920")}
        for name, fig in figs.items():
            for i, p in enumerate(_save(fig, fig_dir, name)):
                paths[f"{name}.{p.suffix[1:]}"] = p
    text = digest(results, comps, brows, audit, calib, valid, train, quick)
    paths["digest"] = atomic_write_text(out / "count_hsgdet.md", text)
    paths["_seconds"] = time.perf_counter() - t0              # type: ignore[assignment]
    return paths


def _meta(results: dict[str, Any]) -> dict[str, Any]:
    from hsgprof.adapters.hsgdet import config_fingerprint

    return {"convention": "FLOPs = 2 x MACs; referee_gemm_flops is the headline",
            "primary_reading": primary(), "yolo_l_reference": YOLO_L,
            "config_fingerprint": config_fingerprint(PRESET),
            "global_reasoning": list(hsgdet_global()), "share": {m: r.global_share for m, r in results.items()}}


def component_results(out_dir: str | Path) -> list[Path]:
    """Only the per-component tables, referee on meta, both modes (seconds: the report's smoke profile)."""
    results, comps, _, _ = component_tables("referee")
    config = {"quick": True, "preset": PRESET, "input": SEED_INPUT, "table_backends": "referee"}
    return [write_results(Path(out_dir) / "count_hsgdet_components.json", "count.components", comps, config,
                          _meta(results), "analyses/count_hsgdet.py component_results")]


def hsgdet_global() -> tuple[str, ...]:
    from hsgprof.adapters.hsgdet import GLOBAL_REASONING

    return GLOBAL_REASONING


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few points per sweep (what the report runs)")
    p.add_argument("--out", default=str(REPO / "reports" / "results"), help="results folder")
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--backends", default=None, help="backends for the component tables (default: all five)")
    args = p.parse_args(argv)
    paths = run(args.quick, args.out, not args.no_figures, args.backends)
    seconds = paths.pop("_seconds")
    for k, v in paths.items():
        print(f"{k}: {v}")
    print(f"done in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
