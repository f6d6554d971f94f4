"""Budget fit: is there any reading of the seed's open choices that meets BOTH its budgets?

The seed promises ~38.5M parameters and ~570 GFLOPs at 1080×1920. :func:`evaluate` turns one
configuration (HSG-Det config overrides on the ``hsgdet-l-v8`` base, i.e. the dataclass defaults) into
one row: parameters, GEMM FLOPs (2 × MACs, referee, meta device, native 1080 rows), per-group figures
and whether each budget is met within ±5%. It is a pure function of its arguments (the cache only
saves work: a component counted before is recalled, see :mod:`hsgprof.counting.cache`), so a search
can be mapped over workers. :func:`search` runs a space; :func:`summary` answers the question, and
:func:`pareto_figure` draws params against GFLOPs with the seed's point and every reading marked.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Iterable, Iterator

import pandas as pd

from hsgprof.claims.seed import SEED_COMPONENT_PARAMS, SEED_FLOPS
from hsgprof.errors import HsgprofError

BASE = "hsgdet-l-v8"                 # the dataclass defaults: every other choice is an override
TOLERANCE = 0.05                     # "meets the budget": within ±5% of the seed's figure (issue 15)
PARAMS_BUDGET = SEED_COMPONENT_PARAMS["Total"]
FLOPS_BUDGET = SEED_FLOPS["total_gflops"] * 1e9
INPUT = (1, 3, *SEED_FLOPS["input_hw"])

# What a chassis fixes together: the stem and the PAN come with the family.
FAMILY = {"v8": {"stem_kernel": 3, "pan": "v8", "depths": (3, 6, 6, 3)},
          "v5": {"stem_kernel": 6, "pan": "v5", "depths": (3, 6, 9, 3)}}

# The open choices, and the values a search takes. ``width_mult`` 1.0 is the seed's channel plan; the
# other widths are the "channel plan free" half of a search. ``default`` is sized to run in a few
# minutes on 2 CPU cores (each configuration builds a model on the meta device, ~0.3-0.6 s).
SPACES: dict[str, dict[str, tuple]] = {
    "default": {"family": ("v8", "v5"), "csp_block": ("c2f", "c3"), "depth_mult": (0.33, 0.67, 1.0),
                "neck_depth": (1, 3), "dense_head": ("decoupled", "anchor"), "decoder_ffn": (256, 2048),
                "global_dim": (256,), "width_mult": (0.75, 1.0)},
    "full": {"family": ("v8", "v5"), "csp_block": ("c2f", "c3"), "depth_mult": (0.33, 0.5, 0.67, 1.0),
             "neck_depth": (1, 2, 3), "dense_head": ("decoupled", "anchor"), "decoder_ffn": (256, 1024, 2048),
             "global_dim": (128, 256, 512), "width_mult": (0.5, 0.625, 0.75, 0.875, 1.0)},
    "tiny": {"family": ("v8", "v5"), "csp_block": ("c2f",), "depth_mult": (0.33,), "neck_depth": (1,),
             "dense_head": ("decoupled",), "decoder_ffn": (256, 2048), "global_dim": (256,), "width_mult": (0.75, 1.0)},
}
FIELDS = tuple(SPACES["default"])


def overrides(config: dict[str, Any]) -> dict[str, Any]:
    """HSG-Det config overrides of a fit configuration (``family`` expands to stem, PAN and base depths)."""
    unknown = set(config) - set(FIELDS)
    if unknown:
        raise HsgprofError(f"unknown fit field(s) {', '.join(sorted(unknown))}; accepted: {', '.join(FIELDS)}")
    fam = config.get("family", "v8")
    if fam not in FAMILY:
        raise HsgprofError(f"family={fam!r} is not accepted; choose {' or '.join(FAMILY)}")
    return {**FAMILY[fam], **{k: v for k, v in config.items() if k != "family"}}


def evaluate(config: dict[str, Any], cache: Any = None, input_shape: tuple[int, ...] = INPUT) -> dict[str, Any]:
    """One configuration -> one row (params, GEMM FLOPs at 1080×1920 native, per group, budget checks).

    ``input_shape`` other than the seed's is for tests (the budget checks are only meaningful at 1080p).
    """
    import torch

    from hsgprof.adapters.hsgdet import COMPONENTS, build
    from hsgprof.counting.cache import ComponentCache

    cache = cache if cache is not None else ComponentCache()
    with torch.device("meta"):
        model = build(BASE, **overrides(config)).eval()
    pieces = cache.count(model, torch.empty(tuple(input_shape), device="meta"))
    params = sum(p.params for p in pieces.values())
    flops = 2 * sum(p.macs for p in pieces.values())
    row = {**config, "params": params, "flops": flops,
           "other_flops": sum(p.other_flops for p in pieces.values())}
    for group in COMPONENTS.groups:
        paths = [path for c in COMPONENTS.components if c.group == group for path in c.paths]
        row[f"{group.lower()}_params"] = sum(pieces[p].params for p in paths if p in pieces)
        row[f"{group.lower()}_flops"] = 2 * sum(pieces[p].macs for p in paths if p in pieces)
    row["params_dev"] = params / PARAMS_BUDGET - 1
    row["flops_dev"] = flops / FLOPS_BUDGET - 1
    row["params_ok"] = abs(row["params_dev"]) <= TOLERANCE
    row["flops_ok"] = abs(row["flops_dev"]) <= TOLERANCE
    row["both_ok"] = row["params_ok"] and row["flops_ok"]
    row["distance"] = max(abs(row["params_dev"]), abs(row["flops_dev"]))   # to the seed's point, in budget units
    row["anchor_free"] = config.get("dense_head", "decoupled") == "decoupled"
    row["seed_channels"] = config.get("width_mult", 1.0) == 1.0
    return row


def configurations(space: dict[str, tuple], free: bool = True) -> Iterator[dict[str, Any]]:
    """Every configuration of ``space``; ``free=False`` keeps only the seed's channel plan (width 1.0)."""
    space = dict(space) if free else {**space, "width_mult": (1.0,)}
    keys = list(space)
    for values in itertools.product(*(space[k] for k in keys)):
        yield dict(zip(keys, values))


def _evaluate_chunk(configs: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int, int]:
    """One worker's share: its configurations in order, with one cache; rows, components counted, recalled."""
    from hsgprof.counting.cache import ComponentCache

    cache = ComponentCache()
    rows = [evaluate(c, cache) for c in configs]
    return rows, cache.misses, cache.hits


def _chunks(configs: list[dict[str, Any]], n: int) -> list[list[dict[str, Any]]]:
    """Split configurations so that those sharing a backbone land in one worker (its cache then hits)."""
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for c in configs:
        groups.setdefault(tuple(c.get(k) for k in ("family", "csp_block", "depth_mult", "width_mult")), []).append(c)
    chunks: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for i, g in enumerate(sorted(groups.values(), key=len, reverse=True)):
        min(chunks, key=len).extend(g)
    return [c for c in chunks if c]


def search(space: str | dict[str, tuple] = "default", free: bool = True, cache: Any = None,
           progress: Any = None, workers: int = 1) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Evaluate every configuration of a space (seed plan, and every width when ``free``); rows + timing.

    ``workers`` > 1 maps :func:`evaluate` over that many processes (configurations sharing a backbone go
    to the same worker, each worker has its own component cache); rows come back in configuration order.
    """
    from hsgprof.counting.cache import ComponentCache

    if isinstance(space, str):
        if space not in SPACES:
            raise HsgprofError(f"--space {space!r} is not accepted; choose one of {', '.join(SPACES)}")
        space = SPACES[space]
    if workers < 1:
        raise HsgprofError(f"workers={workers!r} is not accepted; it must be >= 1")
    configs = list(configurations(space, free))
    t0 = time.perf_counter()
    if workers == 1:
        cache = cache if cache is not None else ComponentCache()
        rows = []
        for i, c in enumerate(configs):
            rows.append(evaluate(c, cache))
            if progress:
                progress(i + 1, len(configs))
        misses, hits = cache.misses, cache.hits
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        chunks = _chunks(configs, workers)
        with ProcessPoolExecutor(len(chunks), mp_context=mp.get_context("spawn")) as pool:
            results = list(pool.map(_evaluate_chunk, chunks))
        order = {id(c): i for i, c in enumerate(configs)}
        flat = sorted(((order[id(c)], r) for chunk, (rs, _, _) in zip(chunks, results) for c, r in zip(chunk, rs)),
                      key=lambda t: t[0])
        rows = [r for _, r in flat]
        misses, hits = sum(m for _, m, _ in results), sum(h for _, _, h in results)
        if progress:
            progress(len(configs), len(configs))
    seconds = time.perf_counter() - t0
    stats = {"configurations": len(configs), "seconds": round(seconds, 1), "workers": workers,
             "components_counted": misses, "components_recalled": hits,
             "hit_rate": round(hits / max(hits + misses, 1), 3)}
    return pd.DataFrame(rows), stats


def readings_points() -> pd.DataFrame:
    """Every reading of the seed (hybrid) as a point: params and GEMM FLOPs at 1080×1920 native."""
    from hsgprof.claims.readings import READINGS
    from hsgprof.counting import count

    rows = []
    for name, r in READINGS.items():
        res = count(r.preset, INPUT, "native", "analytic", **r.overrides)
        rows.append({"reading": name, "params": res.params, "flops": res.flops})
    return pd.DataFrame(rows)


def pareto(df: pd.DataFrame) -> pd.DataFrame:
    """The front facing the seed's point: configurations that no other beats with fewer parameters AND more
    FLOPs. The seed asks for few parameters at many FLOPs; a point below this front is out of reach of the
    searched space (more FLOPs per parameter than any configuration has)."""
    ordered = df.sort_values(["flops", "params"], ascending=[False, True]).reset_index(drop=True)
    best, keep = float("inf"), []
    for i, p in enumerate(ordered["params"]):
        if p < best:
            keep.append(i)
            best = p
    return ordered.loc[keep].sort_values("flops").reset_index(drop=True)


def summary(df: pd.DataFrame, top: int = 5) -> dict[str, Any]:
    """The answer: how many configurations meet both budgets (seed plan fixed / free; anchor-free or not) and
    the closest ones."""
    cols = [c for c in (*FIELDS, "params", "flops", "params_dev", "flops_dev", "distance") if c in df]
    out: dict[str, Any] = {"tolerance": TOLERANCE, "params_budget": PARAMS_BUDGET, "flops_budget": FLOPS_BUDGET}
    for label, part in (("seed_plan", df[df.seed_channels]), ("free_plan", df)):
        for head, sub in (("anchor_free", part[part.anchor_free]), ("any_head", part)):
            key = f"{label}_{head}"
            out[key] = {"configurations": int(len(sub)), "meet_params": int(sub.params_ok.sum()),
                        "meet_flops": int(sub.flops_ok.sum()), "meet_both": int(sub.both_ok.sum()),
                        "closest": sub.nsmallest(top, "distance")[cols].to_dict(orient="records")}
    seed_af = out["seed_plan_anchor_free"]["meet_both"]
    free_af = out["free_plan_anchor_free"]["meet_both"]
    out["answer"] = (f"{'yes' if seed_af else 'no'}: {seed_af} configuration(s) with the seed's channel plan and its "
                     f"anchor-free head meet both budgets within ±{TOLERANCE:.0%}; with the channel plan free, "
                     f"{free_af} do")
    return out


def pareto_figure(df: pd.DataFrame, readings: pd.DataFrame | None = None):
    """Params (M) against GEMM GFLOPs at 1080×1920 (native): every configuration, the Pareto front, the ±5%
    box around the seed's point, the seed's point and every reading. Returns a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    for plan, colour in ((False, "#9db7d5"), (True, "#2f5d8a")):
        part = df[df.seed_channels == plan]
        if len(part):
            ax.scatter(part.flops / 1e9, part.params / 1e6, s=6, alpha=0.5, color=colour,
                       label="seed channel plan" if plan else "width multiplier < 1 (plan free)")
    front = pareto(df)
    ax.plot(front.flops / 1e9, front.params / 1e6, color="black", lw=1,
            label="Pareto front toward the seed (fewest params at more FLOPs)")
    f0, p0 = FLOPS_BUDGET / 1e9, PARAMS_BUDGET / 1e6
    ax.add_patch(Rectangle((f0 * (1 - TOLERANCE), p0 * (1 - TOLERANCE)), 2 * TOLERANCE * f0, 2 * TOLERANCE * p0,
                           fill=False, ec="#c8553d", lw=1.2, ls="--", label="seed ±5% (both budgets)"))
    ax.scatter([f0], [p0], marker="*", s=160, color="#c8553d", zorder=5, label="seed: 38.5M, 570 GFLOPs")
    if readings is not None:
        for r in readings.itertuples():
            ax.scatter([r.flops / 1e9], [r.params / 1e6], marker="D", s=40, color="#e0a030", edgecolor="black",
                       zorder=6)
            ax.annotate(r.reading, (r.flops / 1e9, r.params / 1e6), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")
    ax.set_xlabel("GEMM GFLOPs at 1080×1920, native (FLOPs = 2 × MACs)")
    ax.set_ylabel("parameters [M]")
    ax.set_title("Budget fit: every configuration of the open choices (referee, meta device)", fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def as_rows(df: pd.DataFrame) -> Iterable[dict[str, Any]]:
    """Rows for a results file (tuples as lists)."""
    return df.assign(**{c: df[c].map(lambda v: list(v) if isinstance(v, tuple) else v)
                        for c in df.columns if df[c].dtype == object}).to_dict(orient="records")
