"""The analytic backend (the referee): closed-form formulas on every op, on the meta device.

It runs the model under :class:`~hsgprof.counting.counter.CountingMode` (meta tensors where the
model allows, real tensors where it does not), attributes each op to the innermost running module,
and prices every op twice: with :mod:`hsgprof.counting.formulas` and with FlopCounterMode's own
formula registry. :func:`fcm_check` turns the second price into the cross-check: GEMM work must
agree op by op; an op FCM has no formula for is listed as FCM's miss.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import torch

from hsgprof.counting import formulas as F
from hsgprof.counting.backends.base import Backend, BackendResult, Job, grad_context, timed_run
from hsgprof.counting.counter import CountingMode, Tally
from hsgprof.counting.tracker import ModuleStack

TALLY_COLUMNS = ("phase", "module", "op", "family", "calls", "macs", "flops", "other_flops", "fcm_flops", "unknown")


def tally_frame(tally: Tally) -> pd.DataFrame:
    """One row per (phase, module, op): MACs, GEMM FLOPs (2 × MACs), other FLOPs, FCM's FLOPs."""
    rows = [{"phase": ph, "module": mod, "op": op, "family": s.family, "calls": s.calls, "macs": s.macs,
             "flops": 2 * s.macs, "other_flops": s.flops, "fcm_flops": s.fcm_flops, "unknown": s.unknown}
            for (ph, mod, op), s in tally.stats.items()]
    return pd.DataFrame(rows, columns=list(TALLY_COLUMNS))


def run_counted(model: torch.nn.Module, fn: Any, grad: str = "no_grad") -> tuple[Tally, Any]:
    """Call ``fn()`` (which runs ``model``) under the counting mode; returns the tally and fn's result."""
    tally = Tally()
    with grad_context(grad), ModuleStack(model) as stack, CountingMode(stack, tally):
        out = fn()
    return tally, out


def fcm_check(frame: pd.DataFrame) -> dict[str, Any]:
    """Compare the referee with FlopCounterMode's formulas op by op (same calls, same shapes).

    ``agree``: both price the op's GEMM work identically. ``fcm_missing``: GEMM work FCM has no
    formula for (its miss, not a disagreement). ``disagree``: both price it, differently (a bug in
    one of them). Status is ``agree`` (every op agrees), ``explained`` (only FCM misses) or ``disagree``.
    """
    gemm = frame[(frame.macs > 0) | frame.fcm_flops.notna()]
    rows = []
    for r in gemm.itertuples():
        fcm = None if pd.isna(r.fcm_flops) else int(r.fcm_flops)
        verdict = "fcm_missing" if fcm is None else ("agree" if fcm == 2 * r.macs else "disagree")
        rows.append({"phase": r.phase, "module": r.module, "op": r.op, "calls": int(r.calls),
                     "referee_flops": 2 * int(r.macs), "fcm_flops": fcm, "verdict": verdict})
    df = pd.DataFrame(rows, columns=["phase", "module", "op", "calls", "referee_flops", "fcm_flops", "verdict"])
    n_dis = int((df.verdict == "disagree").sum()) if len(df) else 0
    n_miss = int((df.verdict == "fcm_missing").sum()) if len(df) else 0
    status = "disagree" if n_dis else ("explained" if n_miss else "agree")
    missing = (df[df.verdict == "fcm_missing"].groupby("op").agg(calls=("calls", "sum"),
                                                                 missed_flops=("referee_flops", "sum"))
               .reset_index().to_dict(orient="records")) if n_miss else []
    return {"status": status, "ops_compared": int(len(df)), "ops_agree": int((df.verdict == "agree").sum()),
            "fcm_missing": missing,
            "disagree": df[df.verdict == "disagree"].to_dict(orient="records") if n_dis else [],
            "rule": "GEMM FLOPs (2 × MACs) of every op call must equal FlopCounterMode's formula on the same call"}


class AnalyticBackend(Backend):
    """Closed-form formulas per aten op (GEMM and non-GEMM), module-attributed; the referee."""

    unit = "MAC"
    description = ("closed-form formulas per aten op on the meta device; GEMM MACs plus non-GEMM FLOPs under a "
                   "declared per-element convention; identical on every execution path")

    def __init__(self, device: str = "auto") -> None:
        if device not in ("auto", "meta", "cpu"):
            raise ValueError(f"device={device!r} is not accepted; choose auto, meta or cpu")
        self.device = device
        self.name = "analytic" if device == "auto" else f"analytic@{device}"

    def count(self, job: Job) -> tuple[Tally, str, list[str]]:
        """The tally of one forward, the device it ran on, and notes (why it left the meta device)."""
        notes: list[str] = []
        if self.device in ("auto", "meta"):
            model = job.meta_model()
            x = job.meta_input()
            try:
                tally, _ = run_counted(model, lambda: job.forward(model, x), job.grad)
                return tally, "meta", notes
            except Exception as exc:
                if self.device == "meta":
                    raise
                notes.append(f"meta run failed ({type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}); "
                             "counted with real tensors")
        model = job.real_model()
        x = job.real_input()          # drawn before counting starts: making the input is not the model's work
        tally, _ = run_counted(model, lambda: job.forward(model, x), job.grad)
        return tally, "cpu", notes

    def run(self, job: Job) -> BackendResult:
        def go() -> BackendResult:
            tally, device, notes = self.count(job)
            frame = tally_frame(tally)
            macs = int(frame.macs.sum())
            skipped = [{"what": op, "calls": int(n), "missed_flops": None, "why": "no formula (counted 0)"}
                       for op, n in sorted(tally.unknown.items())]
            res = BackendResult(self.name, self.unit, float(macs), float(2 * macs), device, 0.0, frame,
                                skipped=skipped, notes=notes)
            res.check = fcm_check(frame)
            return res

        return timed_run(self.name, self.unit, job.model, go)


def families_doc() -> dict[str, str]:
    """The op families and which of them are GEMM (what the tables group by)."""
    return {f: ("GEMM" if f in F.GEMM_FAMILIES else "non-GEMM") for f in F.FAMILIES}
