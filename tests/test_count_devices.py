"""The referee counts the same with real tensors as on meta: the input is not a dropout mask, random
noise is priced, real dropout masks are not, and a model meta cannot run gets the right count."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from hsgprof.counting import count
from hsgprof.counting.backends.analytic import run_counted, tally_frame


def per_module(frame):
    """(macs, other FLOPs) per module: the kernels may differ by device (fused CPU attention), the sums may not."""
    return {m: (int(g.macs.sum()), int(g.other_flops.sum())) for m, g in frame.groupby("module")}


def test_resnet18_counts_the_same_on_cpu_as_on_meta(one_torch_thread):
    res = count(torchvision.models.resnet18().eval(), (1, 3, 64, 64), backends="analytic@meta,analytic@cpu,fcm@cpu")
    meta, cpu = res.backends["analytic@meta"], res.backends["analytic@cpu"]
    assert (meta.device, cpu.device) == ("meta", "cpu")
    assert per_module(cpu.frame) == per_module(meta.frame)
    assert cpu.frame.macs.sum() == 148_557_824                     # the stem conv (9.6M MACs at 64²) included
    assert cpu.flops == res.backends["fcm@cpu"].flops               # FlopCounterMode on the same real forward
    stem = cpu.frame[cpu.frame.module == "conv1"]
    assert stem.macs.sum() == 64 * 3 * 7 * 7 * 32 * 32 and set(stem.family) == {"conv"}


def test_hsgdet_tiny_counts_the_same_on_cpu_as_on_meta(one_torch_thread):
    shape = (1, 3, 128, 128)
    res = count("hsgdet-tiny", shape, mode="native", backends="analytic@meta,analytic@cpu")
    meta, cpu = (per_module(res.backends[n].frame) for n in ("analytic@meta", "analytic@cpu"))
    # The one difference is the model's own: it checks its input is finite on real tensors only
    # (isfinite decomposes to abs: 1 non-GEMM FLOP per input element, in the root module).
    macs, other = cpu.pop("")
    assert (macs, other - 3 * 128 * 128) == meta.pop("", (0, 0))
    assert cpu == meta
    assert res.backends["analytic@cpu"].frame.macs.sum() == res.backends["analytic@meta"].frame.macs.sum() > 0
    assert res.backends["analytic@cpu"].check["status"] in ("agree", "explained")


class ItemGate(nn.Module):
    """Calls ``.item()``: meta cannot run it, so the plain referee falls back to real tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(16, 8)

    def forward(self, x):                      # (B, 16)
        if x.sum().item() > -1e9:
            return self.fc(x)                  # (B, 8)
        return x[:, :8]


def test_a_model_meta_cannot_run_is_counted_with_real_tensors_correctly_and_says_so():
    res = count(ItemGate(), (4, 16), backends="analytic,fcm")
    ref, fcm = res.backends["analytic"], res.backends["fcm"]
    assert ref.device == fcm.device == "cpu"
    assert any("meta run failed" in n and "counted with real tensors" in n for n in ref.notes), ref.notes
    assert res.macs == 4 * 16 * 8                                   # addmm M·N·K
    assert res.flops == fcm.flops == 1024
    assert res.other_flops == 4 * 16 + 4 * 8                        # the sum, the bias add
    assert res.check["status"] == "agree"


# ------------------------------------------------------------------- which random tensors are masks
class Noise(nn.Module):
    def forward(self, x):
        return x + 0.1 * torch.rand_like(x)                            # noise: a scale and an add, priced


class RandomProjection(nn.Module):
    def forward(self, x):
        w = torch.bernoulli(torch.full((x.shape[-1], 8), 0.5, device=x.device))
        return x @ w                                                     # a GEMM on a 0/1 draw: priced


class HandDropout(nn.Module):
    def forward(self, x):
        keep = (torch.rand_like(x) < 0.7).to(x.dtype)                   # rand < p: a mask
        return x * keep


class OldDropPath(nn.Module):
    def forward(self, x):
        mask = 0.8 + torch.rand((x.shape[0], 1, 1), dtype=x.dtype, device=x.device)
        mask.floor_()                                                    # floor(keep + rand): a mask
        return x * mask


class OverwrittenDraw(nn.Module):
    def forward(self, x):
        u = torch.rand_like(x)
        u.mul_(x)                                                        # now data, not a draw
        return (u < 0.5).to(x.dtype) * x                                 # a data-dependent gate: priced


N = 2 * 4 * 16
CASES = {                                  # (GEMM MACs, non-GEMM FLOPs) of one call on a (2, 4, 16) input
    "noise": (Noise, 0, 2 * N),
    "random_projection": (RandomProjection, 2 * 4 * 16 * 8, 0),
    "hand_dropout": (HandDropout, 0, 0),
    "old_drop_path": (lambda: OldDropPath(), 0, 2),                    # keep + rand on the (2, 1, 1) draw
    "overwritten_draw": (OverwrittenDraw, 0, 2 * N),
    "nn_dropout": (lambda: nn.Dropout(0.3), 0, 0),
    "stochastic_depth": (lambda: torchvision.ops.StochasticDepth(0.2, "row"), 0, 0),
}


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_only_dropout_masks_are_free_and_noise_is_priced(name, device):
    build, macs, other = CASES[name]
    model = build().train()
    x = torch.randn(2, 4, 16, device=device)
    tally, _ = run_counted(model, lambda: model(x), "enable_grad")
    frame = tally_frame(tally)
    assert (int(frame.macs.sum()), int(frame.other_flops.sum())) == (macs, other), frame
