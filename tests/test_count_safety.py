"""Counting never changes the user's model or torch, for every backend, also when the count raises midway.

The checks here are the test's own (not the guard's code): state_dict keys and values, every module's
train/eval flag, every module's hook dictionaries, torch's global module hooks, the functions of
torch / torch.nn.functional / torch.Tensor, and parameters' requires_grad.
"""

from __future__ import annotations

import types

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules import module as module_globals

from hsgprof.counting import count
from hsgprof.counting.backends import NAMES, make
from hsgprof.counting.backends.base import Job
from hsgprof.errors import HsgprofError

HOOKS = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks",
         "_forward_hooks_with_kwargs", "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called",
         "_state_dict_hooks", "_load_state_dict_pre_hooks")
GLOBAL_HOOKS = ("_global_forward_hooks", "_global_forward_pre_hooks", "_global_backward_hooks",
                "_global_backward_pre_hooks", "_global_forward_hooks_always_called")


class Net(nn.Module):
    """Conv + BN (running stats move in train mode) + attention + a sub-module left in eval mode."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = nn.Sequential(nn.Linear(8, 4), nn.SiLU())
        self.head.eval()                                      # mixed flags must survive
        self.fail = fail

    def forward(self, x):
        y = self.bn(self.conv(x))                             # (B, 8, H, W)
        t = y.flatten(2).transpose(1, 2)                      # (B, HW, 8)
        t = self.attn(t, t, t, need_weights=False)[0]
        if self.fail:
            raise RuntimeError("this model fails halfway through its forward")
        return self.head(F.interpolate(y, scale_factor=2.0).mean((2, 3)) + t.mean(1))


def snapshot(model: nn.Module) -> dict:
    return {
        "state": {k: (v.clone() if v.device.type != "meta" else (v.shape, v.dtype)) for k, v in model.state_dict().items()},
        "training": {n: m.training for n, m in model.named_modules()},
        "hooks": {(n, h): dict(getattr(m, h)) for n, m in model.named_modules() for h in HOOKS},
        "global": {h: dict(getattr(module_globals, h)) for h in GLOBAL_HOOKS},
        "functions": {ns.__name__: {k: v for k, v in vars(ns).items() if not isinstance(v, types.ModuleType)}
                      for ns in (torch, F, torch.Tensor)},
        "requires_grad": {n: p.requires_grad for n, p in model.named_parameters()},
        "attrs": {n: set(vars(m)) for n, m in model.named_modules()},
    }


def assert_unchanged(before: dict, model: nn.Module) -> None:
    after = snapshot(model)
    assert before["state"].keys() == after["state"].keys()
    for k, v in before["state"].items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(v, after["state"][k]), f"{k} values changed"
        else:
            assert v == after["state"][k], k
    assert before["training"] == after["training"]
    assert before["hooks"] == after["hooks"]
    assert before["global"] == after["global"]
    for ns, funcs in before["functions"].items():
        live = after["functions"][ns]
        changed = [k for k, v in funcs.items() if live.get(k) is not v]
        assert not changed, f"{ns}: {changed[:5]}"
    assert before["requires_grad"] == after["requires_grad"]
    assert before["attrs"] == after["attrs"]


def user_model(device: str, fail: bool = False) -> nn.Module:
    torch.manual_seed(0)
    with torch.device(device):
        model = Net(fail)
    model.train()
    model.head.eval()
    model.conv.register_forward_hook(lambda m, i, o: None)            # the user's own hooks stay, alone
    model.head.register_forward_pre_hook(lambda m, i: None)
    return model


def forward(model, x):
    return model(x)


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("name", NAMES)
def test_backend_leaves_the_model_and_torch_as_they_were(name, device):
    model = user_model(device)
    before = snapshot(model)
    res = make(name).run(Job(model, forward, (2, 3, 6, 6)))
    assert res.error is None, res.error
    assert res.flops and res.flops > 0
    assert_unchanged(before, model)


@pytest.mark.parametrize("device", ["cpu", "meta"])
@pytest.mark.parametrize("name", NAMES)
def test_backend_leaves_no_trace_when_the_forward_raises_midway(name, device):
    model = user_model(device, fail=True)
    before = snapshot(model)
    res = make(name).run(Job(model, forward, (2, 3, 6, 6)))
    assert res.error is not None and "halfway" in res.error
    assert_unchanged(before, model)


def test_count_with_every_backend_leaves_the_model_unchanged_and_fails_in_one_line():
    model = user_model("cpu")
    before = snapshot(model)
    res = count(model, (2, 3, 6, 6), backends="all")
    assert all(r.error is None for r in res.backends.values())
    assert_unchanged(before, model)

    broken = user_model("cpu", fail=True)
    before = snapshot(broken)
    with pytest.raises(HsgprofError) as info:
        count(broken, (2, 3, 6, 6), backends="all")
    assert "\n" not in str(info.value) and "halfway" in str(info.value)
    assert_unchanged(before, broken)


def test_the_guard_puts_back_what_a_misbehaving_tool_leaves(monkeypatch):
    """fvcore's trace fails on meta and leaves its scope hooks on every module: the guard removes them."""
    model = user_model("meta")
    before = snapshot(model)
    res = make("fvcore").run(Job(model, forward, (2, 3, 6, 6)))
    assert res.device == "cpu" and any("trace on meta failed" in n for n in res.notes)
    assert any("_forward_hooks" in r for r in res.restored)
    assert_unchanged(before, model)
