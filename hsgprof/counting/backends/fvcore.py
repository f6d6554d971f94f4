"""fvcore's FlopCountAnalysis: a JIT trace priced per traced op; it counts one "flop" per MAC.

Its trace fails on the meta device (the backend tries meta, then real tensors). It has no handle
for ``scaled_dot_product_attention`` (the path ``nn.MultiheadAttention`` takes with
``need_weights=False``) nor for the MHA fast path; those and every other op without a handle are
listed from its own ``unsupported_ops()``. Its norms and interpolation use fvcore's own per-element
costs; normalising doubles them like its GEMM counts.
"""

from __future__ import annotations

import logging
import warnings

import pandas as pd

from hsgprof.counting import formulas as F
from hsgprof.counting.backends.base import (Backend, BackendResult, ForwardWrapper, Job, exclusive_from_inclusive,
                                            strip_prefix, timed_run)

FAMILY = {"conv": F.CONV, "linear": F.MATMUL, "addmm": F.MATMUL, "matmul": F.MATMUL, "mm": F.MATMUL,
          "bmm": F.MATMUL, "einsum": F.MATMUL, "batch_norm": F.NORM, "group_norm": F.NORM, "layer_norm": F.NORM,
          "instance_norm": F.NORM, "upsample_nearest2d": F.INTERPOLATE, "upsample_bilinear2d": F.INTERPOLATE,
          "grid_sampler": F.INTERPOLATE, "adaptive_avg_pool2d": F.POOL}


class FvcoreBackend(Backend):
    """fvcore.nn.FlopCountAnalysis (native unit: MACs, which it calls flops)."""

    name = "fvcore"
    unit = "MAC"
    description = "fvcore.nn.FlopCountAnalysis: JIT trace, one 'flop' per multiply-add"

    def _analyse(self, model, x):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")            # fvcore's import touches deprecated torch.jit APIs
            from fvcore.nn import FlopCountAnalysis

        wrapper = ForwardWrapper(model, self._forward)
        quiet = logging.getLogger("fvcore")
        level = quiet.level
        quiet.setLevel(logging.ERROR)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fa = (FlopCountAnalysis(wrapper, (x,)).unsupported_ops_warnings(False)
                      .uncalled_modules_warnings(False).tracer_warnings("none"))
                total = float(fa.total())
                by_mo = fa.by_module_and_operator()
                unsupported = dict(fa.unsupported_ops())
                uncalled = sorted(fa.uncalled_modules())
        finally:
            quiet.setLevel(level)
        return total, by_mo, unsupported, uncalled

    def run(self, job: Job) -> BackendResult:
        self._forward = job.forward

        def go() -> BackendResult:
            notes: list[str] = []
            try:
                total, by_mo, unsupported, uncalled = self._analyse(job.meta_model(), job.meta_input())
                device = "meta"
            except Exception as exc:
                notes.append(f"trace on meta failed ({type(exc).__name__}); traced with real tensors")
                total, by_mo, unsupported, uncalled = self._analyse(job.real_model(), job.real_input())
                device = "cpu"
            inclusive = {}
            for name, ops in by_mo.items():
                path = strip_prefix(name, "model")
                if path is not None:
                    inclusive[path] = {op: float(v) for op, v in ops.items()}
            rows = [{"module": m, "family": FAMILY.get(op, "other"), "op": op, "flops": 2 * v, "calls": None}
                    for m, ops in exclusive_from_inclusive(inclusive).items() for op, v in ops.items()]
            frame = pd.DataFrame(rows, columns=["module", "family", "op", "flops", "calls"])
            skipped = [{"what": op, "calls": int(n), "missed_flops": None, "why": "no fvcore handle (counted 0)"}
                       for op, n in sorted(unsupported.items(), key=lambda kv: -kv[1])]
            if uncalled:
                notes.append(f"modules never called in the trace: {', '.join(strip_prefix(u, 'model') or u for u in uncalled[:8])}"
                             + (" …" if len(uncalled) > 8 else ""))
            notes.append("native unit is MACs (fvcore calls them flops); its norm/upsample costs are doubled too")
            return BackendResult(self.name, self.unit, total, 2 * total, device, 0.0, frame, skipped=skipped,
                                 notes=notes)

        return timed_run(self.name, self.unit, job.model, go)
