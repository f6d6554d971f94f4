"""Tables of memory figures in binary units (MiB / GiB; the column names say which)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from hsgprof.memory.estimate import MemoryEstimate

MiB = 1 << 20
GiB = 1 << 30


def mib(nbytes: Any) -> float | None:
    return None if nbytes is None else round(float(nbytes) / MiB, 1)


def gib(nbytes: Any) -> float | None:
    return None if nbytes is None else round(float(nbytes) / GiB, 3)


HEADLINE = (
    ("params_bytes", "parameters"),
    ("buffers_bytes", "buffers"),
    ("grads_bytes", "gradients"),
    ("optimizer_bytes", "optimizer state"),
    ("input_bytes", "input batch"),
    ("saved_bytes", "activations saved for backward"),
    ("saved_weight_casts_bytes", "low-precision weight copies saved for backward (AMP)"),
    ("activation_peak_bytes", "activation peak (live above static, forward)"),
    ("peak_tensor_bytes", "peak of live tensor bytes"),
    ("peak_bytes", "peak allocated (predicted max_memory_allocated)"),
    ("peak_reserved_bytes", "peak reserved (predicted max_memory_reserved)"),
)


def headline_table(est: MemoryEstimate) -> pd.DataFrame:
    """One row per quantity: bytes, MiB, GiB."""
    s = est.summary()
    rows = []
    for key, label in HEADLINE:
        v = s.get(key)
        if v is None or (key in ("grads_bytes", "optimizer_bytes", "saved_bytes", "saved_weight_casts_bytes")
                             and est.mode != "train"):
            continue
        rows.append({"quantity": label, "key": key, "bytes": int(v), "MiB": mib(v), "GiB": gib(v)})
    return pd.DataFrame(rows)


def phase_table(est: MemoryEstimate) -> pd.DataFrame:
    df = est.per_phase.copy()
    out = pd.DataFrame({"phase": df.phase})
    for col in ("peak_tensor_bytes", "peak_allocated_bytes", "peak_reserved_bytes", "end_allocated_bytes"):
        if col in df:
            out[col.replace("_bytes", "_MiB")] = [mib(v) if v == v else None for v in df[col]]
    return out


def component_table(est: MemoryEstimate) -> pd.DataFrame:
    df = est.per_component.copy()
    out = pd.DataFrame({"component": df.component})
    for col in df.columns:
        if col.endswith("_bytes"):
            out[col.replace("_bytes", "_MiB")] = [mib(v) for v in df[col]]
    return out


def tidy_rows(est: MemoryEstimate) -> list[dict[str, Any]]:
    """Every figure of an estimate as one tidy row (section, name, quantity, bytes, MiB)."""
    base = {"target": est.target, "input": "x".join(map(str, est.input_shape)), "batch": est.input_shape[0],
            "mode": est.mode, "optimizer": est.optimizer, "precision": est.precision, "device": est.device}
    rows = []
    for r in headline_table(est).itertuples():
        rows.append({**base, "section": "total", "name": r.key, "bytes": r.bytes, "MiB": r.MiB})
    for r in est.per_phase.to_dict(orient="records"):
        for k, v in r.items():
            if k.endswith("_bytes") and v is not None and v == v:
                rows.append({**base, "section": "phase", "name": f"{r['phase']}:{k}", "bytes": int(v), "MiB": mib(v)})
    for r in est.per_component.to_dict(orient="records"):
        for k, v in r.items():
            if k.endswith("_bytes"):
                rows.append({**base, "section": "component", "name": f"{r['component']}:{k}", "bytes": int(v),
                             "MiB": mib(v)})
    return rows
