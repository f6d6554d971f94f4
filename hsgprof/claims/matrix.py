"""The readings × claims matrix: every parameter, FLOP and memory claim judged under every reading.

Each reading's measurements come from the readings analysis (``analyses/readings.py``: counts on
the meta device, memory from the estimator), in results kinds ``readings.*`` with a ``reading``
column. :class:`ReadingView` shows one reading's rows to the ledger's own measures in the shape
they read for hsgdet-l, so every cell is judged by the same measure and rule as the main verdict
table (no second copy of either). GPU results enter a reading's cells only when they were measured
on that reading's config (:func:`hsgprof.claims.readings.measured_on`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from .evaluate import judge
from .ledger import LEDGER, Claim
from .readings import FAMILIES, READINGS, Reading
from .rules import REFUTED, SUPPORTED

# The ledger's kinds -> the readings analysis' kinds holding the same rows for every reading.
VIEW_KINDS = {"count.components": "readings.components", "count.seed_audit": "readings.seed_audit",
              "count.validation": "readings.references", "memory.hsgdet.estimates": "readings.memory_estimates",
              "memory.hsgdet.max_batch": "readings.max_batch"}
GPU_KINDS = ("memory-cuda", "max-batch-16gb", "latency-cuda")

# The claims in the matrix: parameters, FLOPs and memory (shapes are fixed by the channel plan every
# reading shares; latency, experiments and theory claims are not reading-dependent counts).
MATRIX_PREFIXES = ("params.", "flops.", "share.global_flops", "memory.")
HEADLINES = ("params.total", "flops.total", "params.pan", "params.backbone", "flops.backbone",
             "flops.yolo_l_640", "params.yolo_l_scale", "memory.fp16_params", "memory.train_activations",
             "memory.inference_activations", "memory.16gb")


def matrix_claims() -> list[Claim]:
    return [c for c in LEDGER if c.id.startswith(MATRIX_PREFIXES)]


class ReadingView:
    """One reading's results, shaped as the ledger's measures read hsgdet-l's."""

    def __init__(self, store: Any, r: Reading) -> None:
        self.base, self.reading = store, r
        self.subject = r.preset
        self.yolo_l = FAMILIES[r.family]["l"]
        self.results_dir = getattr(store, "results_dir", None)
        self._origin: dict[int, dict[str, Any]] = {}
        self._cache: dict[str, dict[str, Any] | None] = {}

    def get(self, kind: str, prefer_gpu: bool = False) -> dict[str, Any] | None:
        if kind in VIEW_KINDS:
            if kind not in self._cache:
                doc = self.base.get(VIEW_KINDS[kind])
                view = None
                if doc is not None:
                    rows = [r for r in doc["rows"] if r.get("reading", self.reading.name) == self.reading.name]
                    view = {**doc, "rows": rows} if rows else None
                    if view is not None:
                        self._origin[id(view)] = doc
                self._cache[kind] = view
            return self._cache[kind]
        if kind in GPU_KINDS and prefer_gpu:
            return self.base.get(kind, prefer_gpu=True)
        return None

    def path_of(self, doc: dict[str, Any]) -> str:
        return self.base.path_of(self._origin.get(id(doc), doc))


def readings_matrix(store: Any, readings: dict[str, Reading] | None = None) -> pd.DataFrame:
    """One row per (claim, reading): the verdict, measured value and reason, as the ledger judges them."""
    from hsgprof.adapters.hsgdet import primary

    readings = readings or READINGS
    main = primary()
    rows = []
    for r in readings.values():
        view = ReadingView(store, r)
        for c in matrix_claims():
            v = judge(c, view)
            rows.append({"claim": c.id, "statement": c.statement, "reading": r.name, "primary": r.name == main,
                         "claimed": v["claimed"], "measured": v["measured"], "verdict": v["verdict"],
                         "reason": v["reason"], "source": v["source"], "estimate": v["estimate"]})
    return pd.DataFrame(rows)


def headline(verdicts: pd.Series) -> str:
    """"holds under a, b; refuted under c" / "refuted under every reading" for one claim's verdicts by reading."""
    held = [r for r, v in verdicts.items() if v == SUPPORTED]
    refuted = [r for r, v in verdicts.items() if v == REFUTED]
    other = [f"{v} under {r}" for r, v in verdicts.items() if v not in (SUPPORTED, REFUTED)]
    if refuted and len(refuted) == len(verdicts):
        return "refuted under every reading"
    if held and len(held) == len(verdicts):
        return "holds under every reading"
    parts = ([f"holds under {', '.join(held)}"] if held else []) + \
            ([f"refuted under {', '.join(refuted)}"] if refuted else []) + other
    return "; ".join(parts)


def headlines(matrix: pd.DataFrame) -> pd.DataFrame:
    """Per claim: its statement and the one-line summary over readings (headline claims first)."""
    out = []
    for claim_id, part in matrix.groupby("claim", sort=False):
        out.append({"claim": claim_id, "statement": part["statement"].iloc[0], "claimed": part["claimed"].iloc[0],
                    "headline": claim_id in HEADLINES,
                    "summary": headline(part.set_index("reading")["verdict"]),
                    "primary_verdict": part.loc[part["primary"], "verdict"].iloc[0] if part["primary"].any() else ""})
    df = pd.DataFrame(out)
    order = {c: i for i, c in enumerate(HEADLINES)}
    return df.sort_values("claim", key=lambda s: s.map(lambda c: order.get(c, len(order)))).reset_index(drop=True)


_COLOURS = {SUPPORTED: "#4c9a5b", REFUTED: "#c8553d"}


def matrix_figure(matrix: pd.DataFrame, claims: tuple[str, ...] | None = None):
    """A claims × readings grid coloured by verdict (green supported, red refuted, grey otherwise), with the
    measured value in each cell; the primary reading's column is marked. Returns a matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    ids = list(dict.fromkeys(matrix["claim"])) if claims is None else [c for c in claims if c in set(matrix["claim"])]
    readings = list(dict.fromkeys(matrix["reading"]))
    cell = matrix.set_index(["claim", "reading"])
    fig, ax = plt.subplots(figsize=(2.0 + 2.1 * len(readings), 0.9 + 0.32 * len(ids)))
    for i, cid in enumerate(ids):
        for j, rd in enumerate(readings):
            row = cell.loc[(cid, rd)]
            ax.add_patch(Rectangle((j, i), 1, 1, facecolor=_COLOURS.get(row["verdict"], "#bbbbbb"), edgecolor="white"))
            ax.text(j + 0.5, i + 0.5, str(row["measured"])[:18], ha="center", va="center", fontsize=7, color="white")
    primary = matrix.loc[matrix["primary"], "reading"]
    labels = [f"{r}\n(primary)" if len(primary) and r == primary.iloc[0] else r for r in readings]
    ax.set_xlim(0, len(readings))
    ax.set_ylim(len(ids), 0)
    ax.set_xticks([j + 0.5 for j in range(len(readings))], labels, fontsize=8)
    ax.xaxis.tick_top()
    ax.set_yticks([i + 0.5 for i in range(len(ids))], ids, fontsize=7)
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title("Seed claims under each reading (green supported, red refuted, grey not judged; cell: measured)",
                 fontsize=8, pad=24)
    fig.tight_layout()
    return fig
