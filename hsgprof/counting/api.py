"""``count()``: params and FLOPs of any model, by every backend, beside the referee.

>>> from hsgprof.counting import count
>>> res = count("hsgdet-l", mode="native")                 # meta device: no allocation
>>> res.params, res.macs, res.flops, res.flops_all         # referee totals (FLOPs = 2 × MACs)
>>> res.table("component")                                  # a pandas DataFrame

A target is an HSG-Det preset, ``package.module:factory``, a :class:`~hsgprof.targets.Target`
or any ``nn.Module``. The referee (the analytic backend) always runs; the other backends are set
beside it with what they skipped.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import pandas as pd
import torch
from torch import nn

from hsgprof.adapters import hsgdet as hsgdet_adapter
from hsgprof.components import ComponentMap, param_count
from hsgprof.counting import backends as B
from hsgprof.counting.backends.base import BackendResult, Job
from hsgprof.counting.tables import component_table, module_table, op_table, global_share
from hsgprof.errors import HsgprofError
from hsgprof.targets import Target, load_target, parse_input

MODES = ("native", "padded")
GRAD_MODES = ("no_grad", "enable_grad", "inference_mode")
PAD_MULTIPLE = 32


@dataclass
class CountResult:
    """One count of one model at one input (one input mode): the referee and every backend run."""

    target: str
    input_shape: tuple[int, ...]
    mode: str
    network_input: tuple[int, ...]
    params: int
    backends: dict[str, BackendResult]
    components: ComponentMap | None = None
    model: nn.Module | None = field(default=None, repr=False)
    forward: Any = field(default=None, repr=False)
    seed_columns: bool = False
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def referee(self) -> BackendResult:
        return next(r for n, r in self.backends.items() if n.startswith("analytic"))

    @property
    def macs(self) -> int:
        """Referee GEMM MACs."""
        return int(self.referee.frame.macs.sum())

    @property
    def flops(self) -> int:
        """Referee GEMM FLOPs (2 × MACs): the headline figure, the convention of published counts."""
        return 2 * self.macs

    @property
    def other_flops(self) -> int:
        """Referee non-GEMM FLOPs under the declared per-element convention."""
        return int(self.referee.frame.other_flops.sum())

    @property
    def flops_all(self) -> int:
        """Referee GEMM + non-GEMM FLOPs."""
        return self.flops + self.other_flops

    @property
    def check(self) -> dict[str, Any]:
        """The referee's cross-check with FlopCounterMode (inline, and against the fcm run when it ran)."""
        out = dict(self.referee.check or {})
        fcm = self.backends.get("fcm")
        if fcm is not None and fcm.error is None and fcm.device == self.referee.device:
            out["fcm_run"] = compare_with_fcm_run(self.referee.frame, fcm.frame)
        return out

    @property
    def global_share(self) -> dict[str, float] | None:
        """Share of the global-reasoning components (seed's sense) in GEMM and in all FLOPs (HSG-Det only)."""
        return global_share(self) if self.seed_columns else None

    def table(self, by: str = "component", depth: int = 2) -> pd.DataFrame:
        """Per component (seed rows for HSG-Det), per module (to ``depth``), or per component and op family."""
        if by == "component":
            return component_table(self)
        if by == "module":
            return module_table(self, depth)
        if by == "op":
            return op_table(self)
        raise HsgprofError(f"--by {by!r} is not accepted; choose component, module or op")

    def to_dict(self, by: str = "component", depth: int = 2) -> dict[str, Any]:
        """JSON-ready: referee totals, the requested table, every backend's own figure and skips."""
        out = {"target": self.target, "input": list(self.input_shape), "mode": self.mode,
               "network_input": list(self.network_input), "params": self.params, "macs": self.macs,
               "flops": self.flops, "other_flops": self.other_flops, "flops_all": self.flops_all,
               "convention": "flops = GEMM FLOPs = 2 × macs (referee); flops_all adds non-GEMM work "
                             "under the per-element convention in docs/counting.md",
               "per_component": component_table(self).to_dict(orient="records"),
               "backends": {n: r.to_dict() for n, r in self.backends.items()},
               "check": self.check, "seconds": round(self.seconds, 3)}
        if by != "component":
            out[f"per_{by}"] = self.table(by, depth).to_dict(orient="records")
        if self.seed_columns:
            out["global_reasoning"] = {"components": list(hsgdet_adapter.GLOBAL_REASONING), **(self.global_share or {})}
        return out


def compare_with_fcm_run(referee: pd.DataFrame, fcm: pd.DataFrame) -> dict[str, Any]:
    """The referee's GEMM FLOPs against a FlopCounterMode run, per (module, op), on the same device."""
    ref = referee[referee.macs > 0].groupby(["module", "op"]).flops.sum()
    other = fcm.groupby(["module", "op"]).flops.sum()
    other = other[other != 0]
    joined = pd.concat([ref.rename("referee"), other.rename("fcm")], axis=1).fillna(0)
    bad = joined[joined.referee != joined.fcm]
    rows = [{"module": m, "op": op, "referee_flops": float(r.referee), "fcm_flops": float(r.fcm)}
            for (m, op), r in bad.iterrows()]
    return {"status": "agree" if not rows else "differ", "pairs_compared": int(len(joined)), "differences": rows}


def _hsgdet_preset(spec: str) -> bool:
    return spec in hsgdet_adapter.presets()


def _network_input(shape: tuple[int, ...], mode: str) -> tuple[int, ...]:
    if mode == "padded" and len(shape) != 4:
        raise HsgprofError(f"--mode padded needs an image input BxCxHxW, got shape {'x'.join(map(str, shape))}")
    if mode == "padded":
        b, c, h, w = shape
        return b, c, math.ceil(h / PAD_MULTIPLE) * PAD_MULTIPLE, math.ceil(w / PAD_MULTIPLE) * PAD_MULTIPLE
    return shape


def _as_target(target: str | Target | nn.Module, mode: str, overrides: dict[str, Any]) -> tuple[Target, Any]:
    """Resolve a target on the meta device, and a factory for a real-tensor copy (None: materialise)."""
    if isinstance(target, str):
        # A model built here from a name is counted in eval mode (inference, as published counts are);
        # a model the caller passes in is counted in whatever mode it is in, and left in it.
        ov = {"input_mode": mode, **overrides} if _hsgdet_preset(target) else dict(overrides)
        tgt = load_target(target, device="meta", **ov)
        tgt.model.eval()
        return tgt, (lambda: load_target(target, device="cpu", **ov).model.eval())
    if overrides:
        raise HsgprofError("config overrides apply to HSG-Det presets given by name only")
    if isinstance(target, Target):
        return target, None
    if isinstance(target, nn.Module):
        return Target(type(target).__name__, target, (1, 3, 224, 224)), None
    raise HsgprofError(f"cannot count a {type(target).__name__}; give a preset name, package.module:factory, "
                       "a Target or an nn.Module")


def count(target: str | Target | nn.Module, input: str | Sequence[int] | None = None, mode: str | None = None,
          backends: str | Sequence[str] | None = None, *, grad: str = "no_grad", seed: int = 0,
          forward: Any = None, **overrides: Any) -> CountResult:
    """Count ``target`` at ``input`` (a shape tuple, or text BxCxHxW / HxW; default: the target's) in ``mode``.

    ``mode``: ``native`` (the input as given) or ``padded`` (H, W rounded up to a multiple of 32:
    HSG-Det letterboxes inside the model, any other model is fed the padded size). ``backends``:
    names from :data:`hsgprof.counting.backends.NAMES`, ``"all"`` or a comma list; the referee
    always runs. ``grad``: the grad mode of counting runs (the referee's count does not depend on
    it). ``forward(model, x)``: how to call the model (default: the target's, ``model(x)``).
    Raises :class:`HsgprofError` (one line) when the target or input is rejected.
    """
    if grad not in GRAD_MODES:
        raise HsgprofError(f"grad={grad!r} is not accepted; choose one of {', '.join(GRAD_MODES)}")
    requested, mode = mode, mode or "native"
    if mode not in MODES:
        raise HsgprofError(f"--mode {mode!r} is not accepted; choose native or padded")
    names = B.parse_backends(backends)
    tgt, real_factory = _as_target(target, mode, overrides)
    if forward is not None:
        tgt.forward = forward
    if isinstance(input, str):
        shape = parse_input(input, tgt.default_input)
    elif input is None:
        shape = tuple(tgt.default_input)
    else:
        shape = tuple(int(d) for d in input)              # a tuple is the input shape as is (any rank)
        if not shape or any(d <= 0 for d in shape):
            raise HsgprofError(f"input {input!r} is not accepted; give the input shape as positive sizes")
    cfg = getattr(tgt.model, "cfg", None)
    hsgdet_like = cfg is not None and hasattr(cfg, "input_mode")
    if hsgdet_like and requested and cfg.input_mode != requested:
        raise HsgprofError(f"the given model was built with input_mode={cfg.input_mode!r}; build it with "
                           f"input_mode={mode!r} (or pass the preset name)")
    if hsgdet_like:
        mode = cfg.input_mode
        fed = shape                                  # the model pads internally
        net = _network_input(shape, mode)
    else:
        fed = net = _network_input(shape, mode)
    job = Job(tgt.model, tgt.forward, fed, real_factory=real_factory, seed=seed, grad=grad)
    t0 = time.perf_counter()
    results: dict[str, BackendResult] = {}
    for name in names:
        results[name] = B.make(name).run(job)
        if name.startswith("analytic") and results[name].error:
            raise HsgprofError(f"counting {tgt.name} at input {'x'.join(map(str, fed))} failed: {results[name].error}")
    seconds = time.perf_counter() - t0
    return CountResult(tgt.name, tuple(shape), mode, tuple(net), param_count(tgt.model), results, tgt.components,
                       tgt.model, tgt.forward, seed_columns=tgt.components is hsgdet_adapter.COMPONENTS,
                       config=dict(tgt.config), seconds=seconds)


def count_modes(target: str, input: str | Sequence[int] | None = None, modes: Sequence[str] = MODES,
                backends: str | Sequence[str] | None = None, **kwargs: Any) -> dict[str, CountResult]:
    """:func:`count` once per input mode (HSG-Det tables show both)."""
    return {m: count(target, input, m, backends, **kwargs) for m in modes}


def timed_referee(model: nn.Module, forward: Any, shape: Sequence[int], grad: str = "no_grad") -> tuple[float, int]:
    """Seconds for one referee count of a built model (and its GEMM MACs): what the benchmark times."""
    job = Job(model, forward, tuple(shape), grad=grad)
    t0 = time.perf_counter()
    res = B.make("analytic").run(job)
    dt = time.perf_counter() - t0
    if res.error:
        raise HsgprofError(f"referee failed: {res.error}")
    return dt, int(res.frame.macs.sum())


def count_torchvision(name: str, backends: str = "analytic,fcm") -> tuple[CountResult, Any, int]:
    """Count a torchvision classifier at its default weights' crop size, on meta.

    Returns the result, the weights enum (whose ``meta["_ops"]`` is torchvision's published GMACs
    and ``meta["num_params"]`` its parameter count) and the crop size: what the referee is
    validated against.
    """
    from torchvision.models import get_model, get_model_weights

    weights = get_model_weights(name).DEFAULT
    crop = weights.transforms().crop_size[0]
    with torch.device("meta"):
        model = get_model(name).eval()
    return count(model, (1, 3, crop, crop), backends=backends), weights, crop
