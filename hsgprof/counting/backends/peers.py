"""Optional peer counters beside the referee: ptflops (both engines), calflops, torchprofile.

Install them with ``pip install -e '.[peers]'``. Each reports a total in its own unit (all four count
MACs) and the ops it does not price, where that can be known:

* ``ptflops`` (engine ``pytorch``): per-module-type hooks plus patched ``torch.nn.functional`` and tensor
  ops; a called module type without a hook counts 0 (listed).
* ``ptflops-aten`` (engine ``aten``): a dispatch mode pricing a short list of aten ops (matrix products
  and convolutions); every other op the referee prices is listed with the FLOPs it misses.
* ``calflops``: per-module hooks plus patched functionals (the DeepSpeed profiler's design, which it cites;
  DeepSpeed itself is not a backend: docs/counting.md says why).
* ``torchprofile``: ``torch.jit.trace`` and per-operator handlers on the traced graph; it needs real
  tensors (the trace runs the model), so it runs on a CPU copy.

Every run is inside the guard (:func:`~hsgprof.counting.backends.base.timed_run`): a counter that
patches torch or the model is undone and the change is listed. A counter that is not installed
gives a row with its error, never a crash.
"""

from __future__ import annotations

import contextlib
import io

import pandas as pd
from torch import nn

from hsgprof.counting.backends.base import Backend, BackendResult, ForwardWrapper, Job, empty_frame, timed_run
from hsgprof.counting.tracker import CalledModules


def _missing_module_rules(model: nn.Module, called: set[int], mapping: dict) -> list[dict]:
    """Called leaf modules whose type has no rule in ``mapping`` (the counter prices them at 0)."""
    types: dict[str, int] = {}
    for m in model.modules():
        if id(m) in called and not list(m.children()) and not any(t in mapping for t in type(m).__mro__):
            types[type(m).__name__] = types.get(type(m).__name__, 0) + 1
    return [{"what": f"{t} (no rule)", "calls": n, "missed_flops": None, "why": "called module type without a rule"}
            for t, n in sorted(types.items(), key=lambda kv: -kv[1])]


def _missing_aten_ops(job: Job, priced: set[str]) -> list[dict]:
    """Ops the referee prices (on the meta device) that are not among ``priced`` aten packets, with the
    FLOPs (GEMM and other) the referee gives them."""
    from hsgprof.counting.backends.analytic import AnalyticBackend

    ref = AnalyticBackend("meta").run(job)
    if ref.error:
        return []
    f = ref.frame.assign(packet=ref.frame.op.map(lambda o: ".".join(str(o).split(".")[:2])))
    f = f[~f.packet.isin(priced) & ((f.flops > 0) | (f.other_flops > 0))]
    g = f.groupby("packet").agg(calls=("calls", "sum"), gemm=("flops", "sum"), other=("other_flops", "sum"))
    g = g.assign(total=g.gemm + g.other).sort_values("total", ascending=False)
    return [{"what": p, "calls": int(r.calls), "missed_flops": float(r.total),
             "why": "op not in the counter's table (GEMM " + f"{r.gemm / 1e9:.3g} G, other {r.other / 1e9:.3g} G)"}
            for p, r in g.iterrows()]


class _Peer(Backend):
    """Shared run logic: meta copy first, a real CPU copy if the tool cannot run on meta."""

    unit = "MAC"
    meta_ok = True
    package = ""

    def _count(self, model: nn.Module, x, job: Job) -> tuple[float, list[dict], list[str]]:
        raise NotImplementedError

    def run(self, job: Job) -> BackendResult:
        def go() -> BackendResult:
            __import__(self.package)                    # not installed: ModuleNotFoundError -> the row's error
            notes: list[str] = []
            if self.meta_ok:
                try:
                    model, x, device = job.meta_model(), job.meta_input(), "meta"
                    macs, skipped, more = self._count(model, x, job)
                    return BackendResult(self.name, self.unit, macs, 2 * macs, device, 0.0, empty_frame(),
                                         skipped=skipped, notes=notes + more)
                except Exception as exc:                # noqa: BLE001 - fall back, and say why
                    notes.append(f"meta run failed ({type(exc).__name__}); counted with real tensors")
            model, x = job.real_model(), job.real_input()
            macs, skipped, more = self._count(model, x, job)
            return BackendResult(self.name, self.unit, macs, 2 * macs, "cpu", 0.0, empty_frame(),
                                 skipped=skipped, notes=notes + more)

        return timed_run(self.name, self.unit, job.model, go)


class PtflopsBackend(_Peer):
    """ptflops ``get_model_complexity_info`` with engine ``pytorch`` or ``aten`` (native unit: MACs)."""

    package = "ptflops"

    def __init__(self, engine: str = "pytorch") -> None:
        if engine not in ("pytorch", "aten"):
            raise ValueError(f"engine={engine!r} is not accepted; choose pytorch or aten")
        self.engine = engine
        self.name = "ptflops" if engine == "pytorch" else "ptflops-aten"
        self.description = f"ptflops, {engine} engine"

    def _count(self, model, x, job):
        from ptflops import get_model_complexity_info

        wrapper = ForwardWrapper(model, job.forward)
        out = io.StringIO()
        with CalledModules() as called, contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            macs, _params = get_model_complexity_info(wrapper, tuple(x.shape[1:]), as_strings=False,
                                                      print_per_layer_stat=False, input_constructor=lambda _: x,
                                                      backend=self.engine, verbose=False)
        if macs is None:                               # ptflops catches its own failures and returns None
            lines = [ln for ln in out.getvalue().splitlines() if ln.strip()]
            raise RuntimeError(f"ptflops returned no count ({lines[-1][:200] if lines else 'no message'})")
        if self.engine == "aten":
            from ptflops.aten_ops import ATEN_OPS_MAPPING

            skipped = _missing_aten_ops(job, {str(op) for op in ATEN_OPS_MAPPING})
            notes = ["prices only the aten ops in its table (matrix products and convolutions); everything else is 0"]
        else:
            from ptflops.pytorch_ops import MODULES_MAPPING

            skipped = _missing_module_rules(model, called.ids, MODULES_MAPPING)
            notes = ["module hooks plus patched F.* / tensor ops; functional calls outside its table are not seen"]
        return float(macs), skipped, notes


class CalflopsBackend(_Peer):
    """calflops ``calculate_flops`` (native unit: MACs; its FLOPs are 2 × MACs)."""

    package = "calflops"
    name = "calflops"
    description = "calflops: module hooks plus patched functionals (DeepSpeed profiler design)"

    def _count(self, model, x, job):
        from calflops import calculate_flops

        wrapper = ForwardWrapper(model, job.forward)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            _flops, macs, _params = calculate_flops(wrapper, args=[x], print_results=False, print_detailed=False,
                                                    output_as_string=False)
        return float(macs), [], ["module hooks plus patched torch.nn.functional and tensor ops (as DeepSpeed's "
                                 "profiler); unpatched ops are not seen"]


class TorchprofileBackend(_Peer):
    """torchprofile ``profile_macs`` over a ``torch.jit.trace`` graph (native unit: MACs)."""

    package = "torchprofile"
    name = "torchprofile"
    description = "torchprofile: jit trace, per-operator handlers"
    meta_ok = False                                    # tracing runs the model: real tensors

    def _count(self, model, x, job):
        import warnings

        from torchprofile import profile_macs

        wrapper = ForwardWrapper(model, lambda m, t: tuple(_tensors(job.forward(m, t))))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            macs = profile_macs(wrapper, args=(x,))
        import re
        from collections import Counter

        # torchprofile warns 'No handlers found: "aten::xyz". Skipped.' once per traced node
        unknown = Counter(m.group(1) for w in caught
                          if (m := re.search(r'No handlers found: "([^"]+)"', str(w.message))))
        skipped = [{"what": op, "calls": n, "missed_flops": None, "why": "traced operator without a handler (counted 0)"}
                   for op, n in unknown.most_common()]
        return float(macs), skipped, ["counts the traced graph of a real CPU forward; operators without a handler "
                                      "count 0"]


def _tensors(out) -> list:
    """The tensors of a (nested) model output, in order (a trace needs tensors or tuples)."""
    import torch

    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        out = list(out.values())
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in _tensors(o)]
    return []
