"""Tables of a count: per component (the seed's rows for HSG-Det), per module, per component × op family.

Every table is a DataFrame in base SI units (params, FLOPs, MACs); :func:`for_display` scales a
copy to M / G for Markdown and LaTeX. Backend columns are each backend's figure normalised to
FLOPs = 2 × MACs; the referee gives GEMM FLOPs, non-GEMM FLOPs and their sum ("all").
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd
from torch import nn

from hsgprof.adapters import hsgdet as hsgdet_adapter
from hsgprof.claims.seed import SEED_COMPONENT_PARAMS, SEED_FLOPS
from hsgprof.components import ComponentMap, components_of, params_by_component


class Counted(Protocol):
    """What a table needs of a count (:class:`hsgprof.counting.api.CountResult` has it); tables never import
    the counting API, so the two modules do not import each other."""

    model: nn.Module
    components: ComponentMap | None
    backends: dict[str, Any]
    seed_columns: bool
    mode: str
    input_shape: tuple[int, ...]
    network_input: tuple[int, ...]

    @property
    def referee(self) -> Any: ...

OUTSIDE = "(not in a component)"


def seed_flops_by_row() -> dict[str, float]:
    """The seed's FLOP statements at 1080×1920, keyed by table row (section 4; 'ops' read as FLOPs)."""
    return {"Backbone": SEED_FLOPS["backbone_gflops"] * 1e9, "Total": SEED_FLOPS["total_gflops"] * 1e9,
            "Token fusion": SEED_FLOPS["token_attention_ops"], "Sparse head": SEED_FLOPS["decoder_ops"]}


def component_map(result: Counted) -> ComponentMap:
    """The target's components present in its model, else its top-level children as components."""
    return components_of(result.model, result.components)


def _assign(frame: pd.DataFrame, cmap: ComponentMap) -> pd.Series:
    cache: dict[str, str] = {}

    def comp(m: str) -> str:
        if m not in cache:
            cache[m] = cmap.component_of(m) or OUTSIDE
        return cache[m]

    return frame.module.map(comp) if len(frame) else pd.Series(dtype=object)


def _backend_columns(result: Counted) -> list[str]:
    return [n for n in result.backends if not n.startswith("analytic")]


def _label(result: Counted) -> dict[str, Any]:
    return {"mode": result.mode, "input": "x".join(map(str, result.input_shape)),
            "network_input": "x".join(map(str, result.network_input))}


def component_table(result: Counted) -> pd.DataFrame:
    """Rows: components, (not in a component), groups, Total. Columns: params vs seed, FLOPs by backend."""
    cmap = component_map(result)
    params = params_by_component(result.model, cmap).set_index("component")
    ref = result.referee.frame.assign(component=lambda f: _assign(f, cmap))
    sums = {"referee_macs": ref.groupby("component").macs.sum(),
            "referee_gemm_flops": ref.groupby("component").flops.sum(),
            "referee_other_flops": ref.groupby("component").other_flops.sum()}
    for name in _backend_columns(result):
        r = result.backends[name]
        if r.error is None and len(r.frame):
            f = r.frame.assign(component=lambda f: _assign(f, cmap))
            sums[f"{name}_flops"] = f.groupby("component").flops.sum()
        else:
            sums[f"{name}_flops"] = pd.Series(dtype=float)
    totals = {"referee_macs": float(ref.macs.sum()), "referee_gemm_flops": float(ref.flops.sum()),
              "referee_other_flops": float(ref.other_flops.sum())}
    for name in _backend_columns(result):
        totals[f"{name}_flops"] = result.backends[name].flops
    seed = result.seed_columns
    seed_fl = seed_flops_by_row() if seed and tuple(result.input_shape[-2:]) == SEED_FLOPS["input_hw"] else {}

    names = [c.name for c in cmap.components]
    has_outside = OUTSIDE in params.index or any(OUTSIDE in s.index and s.get(OUTSIDE, 0) for s in sums.values())
    if has_outside:
        names.append(OUTSIDE)
    rows = []
    for n in names:
        comp = next((c for c in cmap.components if c.name == n), None)
        row = {"component": n, "group": comp.group if comp else "", "kind": "component",
               "modules": ", ".join(comp.paths) if comp else "",
               "params": int(params.params.get(n, 0))}
        for col, s in sums.items():
            row[col] = float(s.get(n, 0.0))
        rows.append(row)
    for g in cmap.groups:
        members = [r for r in rows if r["group"] == g and r["kind"] == "component"]
        row = {"component": g, "group": g, "kind": "group", "modules": "", "params": int(params.params.get(g, 0))}
        for col in sums:
            row[col] = float(sum(m[col] for m in members))
        rows.append(row)
    total = {"component": "Total", "group": "", "kind": "total", "modules": "", "params": int(params.params["Total"])}
    total.update({c: (float(v) if v is not None else float("nan")) for c, v in totals.items()})
    rows.append(total)
    df = pd.DataFrame(rows)
    df["referee_all_flops"] = df.referee_gemm_flops + df.referee_other_flops
    if seed:
        df["seed_params"] = df.component.map(SEED_COMPONENT_PARAMS)
        df["params_delta_pct"] = (df.params - df.seed_params) / df.seed_params * 100
    grand, grand_all = totals["referee_gemm_flops"], totals["referee_gemm_flops"] + totals["referee_other_flops"]
    df["share"] = df.referee_gemm_flops / grand if grand else float("nan")
    df["share_all"] = df.referee_all_flops / grand_all if grand_all else float("nan")
    if seed:
        df["seed_flops"] = df.component.map(seed_fl) if seed_fl else float("nan")
        df["flops_delta_pct"] = (df.referee_gemm_flops - df.seed_flops) / df.seed_flops * 100
    for k, v in _label(result).items():
        df[k] = v
    order = ["component", "group", "kind", "params", "seed_params", "params_delta_pct", "referee_macs",
             "referee_gemm_flops", "referee_other_flops", "referee_all_flops",
             *[f"{n}_flops" for n in _backend_columns(result)], "seed_flops", "flops_delta_pct", "share", "share_all",
             "modules", "mode", "input", "network_input"]
    return df[[c for c in order if c in df.columns]]


def _inclusive(frame: pd.DataFrame, columns: list[str], depth: int) -> pd.DataFrame:
    acc: dict[str, dict[str, float]] = {}
    for rec in frame[["module", *columns]].itertuples(index=False):
        parts = rec[0].split(".") if rec[0] else []
        for d in range(0, min(len(parts), depth) + 1):
            key = ".".join(parts[:d])
            slot = acc.setdefault(key, dict.fromkeys(columns, 0.0))
            for i, c in enumerate(columns):
                v = rec[i + 1]
                if v == v and v is not None:
                    slot[c] += float(v)
    return pd.DataFrame.from_dict(acc, orient="index")


def module_table(result: Counted, depth: int = 2) -> pd.DataFrame:
    """Modules down to ``depth``: params and every backend's FLOPs summed over each subtree."""
    if depth < 0:
        from hsgprof.errors import HsgprofError

        raise HsgprofError(f"--depth {depth} is not accepted; it must be >= 0")
    from hsgprof.components import module_tree

    tree = module_tree(result.model, depth).set_index("path")
    ref = _inclusive(result.referee.frame, ["macs", "flops", "other_flops"], depth)
    ref.columns = ["referee_macs", "referee_gemm_flops", "referee_other_flops"]
    parts = [ref]
    for name in _backend_columns(result):
        r = result.backends[name]
        if r.error is None and len(r.frame):
            inc = _inclusive(r.frame, ["flops"], depth)
            inc.columns = [f"{name}_flops"]
            parts.append(inc)
    flops = pd.concat(parts, axis=1).fillna(0.0)
    flops.index = ["(model)" if i == "" else i for i in flops.index]
    df = tree.join(flops, how="left").fillna({c: 0.0 for c in flops.columns}).reset_index()
    df["referee_all_flops"] = df.referee_gemm_flops + df.referee_other_flops
    for k, v in _label(result).items():
        df[k] = v
    return df


def _attention_paths(model) -> tuple[str, ...]:
    from torch import nn

    return tuple(n for n, m in model.named_modules() if isinstance(m, nn.MultiheadAttention))


def _by_module_family(frame: pd.DataFrame, paths: tuple[str, ...]) -> pd.DataFrame:
    """Work done inside an nn.MultiheadAttention is family ``attention`` whatever the path took (fused
    kernel, SDPA, or bmm + softmax), so backends that price it differently line up in one row."""
    if not paths or not len(frame):
        return frame
    inside = frame.module.map(lambda m: any(m == p or m.startswith(p + ".") for p in paths))
    return frame.assign(family=frame.family.where(~inside, "attention"))


def op_table(result: Counted) -> pd.DataFrame:
    """Rows: (component, op family). The referee's GEMM and other FLOPs with its aten ops, and each backend's figure.

    Everything inside an ``nn.MultiheadAttention`` counts as family ``attention`` (projections, both
    products, softmax), so the MHA path a backend saw (fused kernel or decomposition) does not split the row.
    Zero-cost data movement (views, copies, indexing) is left out.
    """
    cmap = component_map(result)
    attn = _attention_paths(result.model)
    ref = result.referee.frame
    ref = _by_module_family(ref[ref.family != "memory"], attn).assign(component=lambda f: _assign(f, cmap))
    keys = ["component", "family"]
    g = ref.groupby(keys)
    df = pd.DataFrame({"referee_calls": g.calls.sum(), "referee_gemm_flops": g.flops.sum(),
                       "referee_other_flops": g.other_flops.sum()})
    df["referee_ops"] = g.apply(lambda x: ", ".join(f"{o.split('.', 1)[-1]}×{int(c)}" for o, c in
                                                    x.groupby("op").calls.sum().sort_values(ascending=False).items()),
                                include_groups=False)
    for name in _backend_columns(result):
        r = result.backends[name]
        if r.error is None and len(r.frame):
            f = _by_module_family(r.frame, attn).assign(component=lambda f: _assign(f, cmap))
            df = df.join(f.groupby(keys).flops.sum().rename(f"{name}_flops"), how="outer")
    df = df.reset_index()
    df["referee_all_flops"] = df.referee_gemm_flops.fillna(0) + df.referee_other_flops.fillna(0)
    order = {c.name: i for i, c in enumerate(cmap.components)}
    df = df.sort_values(["component", "family"], key=lambda s: s.map(order).fillna(len(order)) if s.name == "component"
                        else s).reset_index(drop=True)
    df = df[~((df.referee_all_flops == 0) & (df.drop(columns=[c for c in df.columns if not c.endswith("_flops")])
                                               .fillna(0).abs().sum(axis=1) == 0))]
    for k, v in _label(result).items():
        df[k] = v
    return df.reset_index(drop=True)


def global_share(result: Counted) -> dict[str, float]:
    """The global-reasoning components' share of the total, GEMM and all FLOPs (HSG-Det's seed claim)."""
    t = component_table(result)
    parts = t[t.component.isin(hsgdet_adapter.GLOBAL_REASONING)]
    total = t[t.kind == "total"].iloc[0]
    return {"gemm_flops": float(parts.referee_gemm_flops.sum()), "all_flops": float(parts.referee_all_flops.sum()),
            "share": float(parts.referee_gemm_flops.sum() / total.referee_gemm_flops) if total.referee_gemm_flops else 0.0,
            "share_all": float(parts.referee_all_flops.sum() / total.referee_all_flops) if total.referee_all_flops else 0.0}


_SCALE = {"params": (1e6, "M"), "seed_params": (1e6, "M"), "referee_macs": (1e9, "G")}


def for_display(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A copy for reading: params in M, MACs/FLOPs in G, shares and deltas in %; headers say so."""
    out = df.copy()
    rename = {}
    for c in out.columns:
        if c in _SCALE:
            div, unit = _SCALE[c]
        elif c.endswith("_flops") or c == "seed_flops":
            div, unit = 1e9, "G"
        elif c in ("share", "share_all"):
            out[c] = (out[c] * 100).round(2)
            rename[c] = f"{c} [%]"
            continue
        elif c.endswith("_pct"):
            out[c] = out[c].round(1)
            rename[c] = c.replace("_pct", " [%]")
            continue
        else:
            continue
        out[c] = (pd.to_numeric(out[c], errors="coerce") / div).round(digits)
        rename[c] = f"{c.replace('_flops', '')} [{unit}{'FLOPs' if c.endswith('flops') else ('MACs' if 'macs' in c else '')}]"
    out = out.drop(columns=[c for c in ("kind", "modules", "input", "network_input") if c in out.columns])
    out = out.rename(columns=rename)
    return out.astype(object).where(out.notna(), "")        # no value (no seed figure): an empty cell
