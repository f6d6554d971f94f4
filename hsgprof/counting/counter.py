"""The referee's counting mode: every aten op that runs is priced by :mod:`formulas` and attributed
to the innermost running module, and (in the same call) priced by FlopCounterMode's own formula
registry, so the two can be compared op by op.

Composite ops (CompositeImplicitAutograd) are always decomposed before they are priced, as autograd
does when grad is on, so ``no_grad``, ``enable_grad`` and ``inference_mode`` see the same op stream.
Dropout is recognised by its random mask, which the mode follows through the op stream
(:meth:`CountingMode._dropout`): only a bernoulli draw or a binarised uniform draw is a mask.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry as FCM_REGISTRY
from torch.utils.weak import WeakIdKeyDictionary

from hsgprof.counting import formulas as F
from hsgprof.counting.tracker import ModuleStack

aten = torch.ops.aten

# Metadata queries FlopCounterMode also passes through (they never carry work).
_PASS_THROUGH = {aten.sym_is_contiguous.default, aten.is_contiguous.default, aten.is_contiguous.memory_format,
                 aten.is_strides_like_format.default, aten.is_non_overlapping_and_dense.default,
                 aten.size.default, aten.sym_size.default, aten.stride.default, aten.sym_stride.default,
                 aten.storage_offset.default, aten.sym_storage_offset.default, aten.numel.default,
                 aten.sym_numel.default, aten.dim.default, torch.ops.prim.layout.default}

BACKWARD_MODULE = "(backward)"


@lru_cache(maxsize=None)
def _decomposes(func: Any) -> bool:
    """True when the overload has a CompositeImplicitAutograd kernel (autograd would decompose it)."""
    if func._overloadpacket in F.UNITS:
        return False
    try:
        return torch._C._dispatch_has_kernel_for_dispatch_key(func.name(), "CompositeImplicitAutograd")
    except RuntimeError:
        return False


def _shape(x: Any) -> Any:
    if isinstance(x, torch.Tensor):
        return x.shape
    if isinstance(x, (list, tuple)) and x and any(isinstance(i, torch.Tensor) for i in x):
        return type(x)(i.shape if isinstance(i, torch.Tensor) else i for i in x)
    return x


def _tensors(args: tuple, kwargs: dict) -> list[torch.Tensor]:
    out = []
    for a in (*args, *kwargs.values()):
        if isinstance(a, torch.Tensor):
            out.append(a)
        elif isinstance(a, (list, tuple)):
            out.extend(i for i in a if isinstance(i, torch.Tensor))
    return out


def _out_tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [o for o in out if isinstance(o, torch.Tensor)]
    return []


def _out_shape(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.shape
    if isinstance(out, (list, tuple)):
        return tuple(_out_shape(o) for o in out)
    return out


@dataclass
class OpStats:
    """Totals for one (module, op) pair."""

    family: str
    calls: int = 0
    macs: int = 0
    flops: int = 0                       # non-GEMM FLOPs
    fcm_flops: int | None = None         # FlopCounterMode's formula on the same calls (None: it has none)
    unknown: bool = False


@dataclass
class Tally:
    """What one counted run saw: per (phase, module, op) statistics and the ops nothing could price."""

    stats: dict[tuple[str, str, str], OpStats] = field(default_factory=dict)
    unknown: Counter = field(default_factory=Counter)

    def add(self, phase: str, module: str, op: str, family: str, macs: int, flops: int, fcm: int | None,
            unknown: bool = False) -> None:
        key = (phase, module, op)
        s = self.stats.get(key)
        if s is None:
            s = self.stats[key] = OpStats(family, unknown=unknown)
        s.calls += 1
        s.macs += macs
        s.flops += flops
        if fcm is not None:
            s.fcm_flops = (s.fcm_flops or 0) + fcm


class CountingMode(TorchDispatchMode):
    """Price every op with the analytic formulas (and FCM's, for the cross-check); attribute to modules."""

    def __init__(self, stack: ModuleStack | None = None, tally: Tally | None = None) -> None:
        super().__init__()
        self.stack = stack
        self.tally = tally if tally is not None else Tally()
        self.phase = "forward"
        self._masks = WeakIdKeyDictionary()    # random 0/1 tensors that gate data (dropout masks)
        self._draws = WeakIdKeyDictionary()    # uniform random draws not (yet) binarised into a mask

    def _module(self) -> str:
        if self.phase == "backward":
            return BACKWARD_MODULE
        return self.stack.current if self.stack is not None else ModuleStack.ROOT

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _PASS_THROUGH:
            return NotImplemented
        if _decomposes(func):
            with self:
                result = func.decompose(*args, **kwargs)
            if result is not NotImplemented:
                return result
        out = func(*args, **kwargs)
        self._price(func, args, kwargs, out)
        return out

    def _dropout(self, packet: Any, rule: F.Formula | None, inputs: list[torch.Tensor],
                 outputs: list[torch.Tensor]) -> bool:
        """Track random masks through the op stream; True when this op is dropout (priced 0).

        A *mask* is a random 0/1 tensor that gates data: the output of ``bernoulli`` / ``bernoulli_``
        (what torch's own dropout, DropBlock and stochastic depth draw), or a uniform draw (``rand``,
        ``rand_like``, ``uniform_``, possibly shifted, scaled, viewed or copied) binarised by a comparison
        or ``floor`` (``rand(...) < p``; ``floor(keep + rand(...))``, the classic drop-path idiom). A
        uniform draw that is never binarised is noise, and arithmetic on it is priced like any other op,
        so ``x + torch.rand_like(x)`` costs its add. A non-GEMM op that reads a mask is dropout (its output
        is a mask only when every tensor input is); a GEMM op (conv, matmul, attention) is always priced,
        whatever it reads. Arithmetic on a draw before it is binarised is priced: until then it cannot be
        told from noise (in the drop-path idiom that is 1 FLOP per sample). Tags follow tensor identity;
        an op that writes anything else into a tagged tensor (in place) clears its tag. Tensors made
        before counting starts (the input) carry no tag.
        """
        if packet in F.MASK_SOURCES:
            self._tag(outputs, mask=True)
            return True
        if packet in F.DRAW_SOURCES:
            self._tag(outputs, draw=True)
            return False
        masked = [t in self._masks for t in inputs] if self._masks else []
        if any(masked) and not (rule is not None and rule.family in F.GEMM_FAMILIES):
            self._tag(outputs, mask=all(masked))
            return True
        drawn = [t in self._draws for t in inputs] if self._draws else []
        if any(drawn) and packet in F.BINARISERS:
            self._tag(outputs, mask=True)
            return True
        keeps_draw = (len(drawn) == 1 and drawn[0] and rule is not None
                      and rule.family in (F.ELEMENTWISE, F.MEMORY))   # draw ± scalar, draw × scalar, views, copies
        self._tag(outputs, draw=keeps_draw)
        return False

    def _tag(self, outputs: list[torch.Tensor], mask: bool = False, draw: bool = False) -> None:
        for tags, on in ((self._masks, mask), (self._draws, draw)):
            for t in outputs:
                if on:
                    tags[t] = True
                elif tags:
                    tags.pop(t, None)

    def _price(self, func: Any, args: tuple, kwargs: dict, out: Any) -> None:
        packet = func._overloadpacket
        name = str(packet)
        module = self._module()
        inputs = _tensors(args, kwargs)
        outputs = _out_tensors(out)
        rule = F.lookup(packet)
        if self._dropout(packet, rule, inputs, outputs):
            self.tally.add(self.phase, module, name, F.DROPOUT, 0, 0, None)
            return
        fcm = None
        fcm_rule = FCM_REGISTRY.get(packet)
        if fcm_rule is not None:
            fcm = int(fcm_rule(*args, **kwargs, out_val=out))
        if rule is None:
            self.tally.unknown[name] += 1
            self.tally.add(self.phase, module, name, "unknown", 0, 0, fcm, unknown=True)
            return
        if not any(t.is_floating_point() or t.is_complex() for t in outputs):
            self.tally.add(self.phase, module, name, rule.family, 0, 0, fcm)   # integer/bool results: no FLOPs
            return
        macs, flops = rule.fn(*(_shape(a) for a in args), out=_out_shape(out),
                              **{k: _shape(v) for k, v in kwargs.items()})
        self.tally.add(self.phase, module, name, rule.family, int(macs), int(flops), fcm)
