"""ultralytics-thop's ``profile``: per-module-type rules (MACs) plus a few functional products.

It prices modules by type (conv MACs without the bias, linear, norms at 2 or 4 per element,
softmax, pools, nn.MultiheadAttention) and, through a TorchFunctionMode, matmul/bmm/einsum/linear/
SDPA/MHA calls made outside a module with a rule. It has no rule for SiLU, GELU and other
activations, and does not see functional calls outside that list (``F.interpolate``, ``F.silu``,
``topk``, elementwise arithmetic). It works on the meta device.
"""

from __future__ import annotations

import pandas as pd
from torch import nn

from hsgprof.counting import formulas as F
from hsgprof.counting.backends.base import Backend, BackendResult, ForwardWrapper, Job, timed_run
from hsgprof.counting.tracker import CalledModules


def _rule_of(module_type: type):
    from thop.profile import register_hooks

    for t in module_type.__mro__:
        if t in register_hooks:
            return register_hooks[t]
    return None


def _family(module: nn.Module) -> str:
    if isinstance(module, nn.modules.conv._ConvNd):
        return F.CONV
    if isinstance(module, (nn.Linear, nn.Bilinear, nn.RNNBase, nn.RNNCellBase)):
        return F.MATMUL
    if isinstance(module, nn.MultiheadAttention):
        return F.ATTENTION
    if isinstance(module, (nn.modules.batchnorm._NormBase, nn.LayerNorm, nn.GroupNorm)) or \
            type(module).__name__ == "RMSNorm":
        return F.NORM
    if isinstance(module, (nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.Softmax2d)):
        return F.SOFTMAX
    if isinstance(module, (nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd)):
        return F.POOL
    if isinstance(module, nn.Upsample):
        return F.INTERPOLATE
    if isinstance(module, nn.PReLU):
        return F.ACTIVATION
    return "other"


class ThopBackend(Backend):
    """ultralytics-thop ``profile`` (native unit: MACs)."""

    unit = "MAC"
    description = "ultralytics-thop profile: per-module-type rules in MACs plus functional matmul/attention"

    def __init__(self, device: str = "auto") -> None:
        if device not in ("auto", "meta", "cpu"):
            raise ValueError(f"device={device!r} is not accepted; choose auto, meta or cpu")
        self.device = device
        self.name = "thop" if device == "auto" else f"thop@{device}"

    @staticmethod
    def _profile(model: nn.Module, x, job: Job):
        import thop

        wrapper = ForwardWrapper(model, job.forward)
        with CalledModules() as called:
            total, _params, tree = thop.profile(wrapper, inputs=(x,), verbose=False, ret_layer_info=True)
        return float(total), tree, called.ids

    def run(self, job: Job) -> BackendResult:
        def go() -> BackendResult:
            notes: list[str] = []
            model = None
            if self.device in ("auto", "meta"):
                model = job.meta_model()
                try:
                    total, tree, called = self._profile(model, job.meta_input(), job)
                    device = "meta"
                except Exception as exc:
                    if self.device == "meta":
                        raise
                    notes.append(f"meta run failed ({type(exc).__name__}); counted with real tensors")
                    model = None
            if model is None or self.device == "cpu":
                model = job.real_model()
                total, tree, called = self._profile(model, job.real_input(), job)
                device = "cpu"
            modules = dict(model.named_modules())
            rows = []

            def walk(children: dict, prefix: str) -> float:
                inclusive_sum = 0.0
                for name, (ops, _p, sub) in children.items():
                    path = f"{prefix}.{name}" if prefix else name
                    own = ops - walk(sub, path)
                    if own:
                        m = modules.get(path)
                        rows.append({"module": path, "family": _family(m) if m is not None else "other",
                                     "op": type(m).__name__ if m is not None else "?", "flops": 2 * own,
                                     "calls": None})
                    inclusive_sum += ops
                return inclusive_sum

            model_tree = tree.get("model", (0.0, 0.0, {}))
            root_own = model_tree[0] - walk(model_tree[2], "")
            if root_own:
                rows.append({"module": "", "family": _family(model), "op": type(model).__name__,
                             "flops": 2 * root_own, "calls": None})
            functional = total - model_tree[0]
            if functional:
                rows.append({"module": "", "family": F.MATMUL, "op": "functional products (unattributed)",
                             "flops": 2 * functional, "calls": None})
            no_rule: dict[str, int] = {}
            for m in model.modules():
                if id(m) in called and not list(m.children()) and _rule_of(type(m)) is None:
                    no_rule[type(m).__name__] = no_rule.get(type(m).__name__, 0) + 1
            skipped = [{"what": f"{t} (no rule)", "calls": n, "missed_flops": None,
                        "why": "called module type without a rule (counted 0)"}
                       for t, n in sorted(no_rule.items(), key=lambda kv: -kv[1])]
            notes.append("functional calls other than matmul/bmm/einsum/linear/SDPA/MHA are not seen "
                         "(F.interpolate, F.silu, topk, elementwise arithmetic)")
            frame = pd.DataFrame(rows, columns=["module", "family", "op", "flops", "calls"])
            return BackendResult(self.name, self.unit, total, 2 * total, device, 0.0, frame, skipped=skipped,
                                 notes=notes)

        return timed_run(self.name, self.unit, job.model, go)
