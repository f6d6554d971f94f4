"""Attention on every path: the referee's count is identical in train/eval, every grad mode, meta/CPU,
fused kernels or not; the backends that miss a path say what they missed."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hsgprof.counting import count
from hsgprof.counting.backends import make
from hsgprof.counting.backends.analytic import run_counted, tally_frame
from hsgprof.counting.backends.base import Job

E, H, FFN = 16, 4, 32
GRADS = ("enable_grad", "no_grad", "inference_mode")


class MHA(nn.Module):
    def __init__(self, need_weights: bool, cross: bool = False) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(E, H, dropout=0.1, batch_first=True)
        self.need_weights, self.cross = need_weights, cross

    def forward(self, x):
        kv = x[:, :3] if self.cross else x
        return self.attn(x, kv, kv, need_weights=self.need_weights)[0]


class SDPA(nn.Module):
    def __init__(self, **kwargs) -> None:
        super().__init__()
        self.kwargs = kwargs

    def forward(self, q):
        kw = dict(self.kwargs)
        if "dropout_p" in kw and not self.training:
            kw["dropout_p"] = 0.0
        mask = kw.pop("mask", None)
        return F.scaled_dot_product_attention(q, q, q, attn_mask=mask, **kw)


class HandWritten(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv, self.out, self.drop = nn.Linear(E, 3 * E), nn.Linear(E, E), nn.Dropout(0.1)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, H, E // H).permute(2, 0, 3, 1, 4)   # 3 × (B, H, T, d)
        a = (q @ k.transpose(-2, -1) * (E // H) ** -0.5).softmax(-1)
        return self.out((self.drop(a) @ v).transpose(1, 2).reshape(b, t, E))


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layer = nn.TransformerDecoderLayer(E, H, FFN, batch_first=True)

    def forward(self, x):
        return self.layer(x, x[:, :3])


CASES = {
    "mha": (lambda: MHA(False), (2, 5, E)),
    "mha_need_weights": (lambda: MHA(True), (2, 5, E)),
    "mha_cross": (lambda: MHA(False, cross=True), (2, 5, E)),
    "sdpa": (lambda: SDPA(), (2, H, 5, 8)),
    "sdpa_dropout_causal": (lambda: SDPA(dropout_p=0.1, is_causal=True), (2, H, 5, 8)),
    "encoder_layer": (lambda: nn.TransformerEncoderLayer(E, H, FFN, batch_first=True), (2, 5, E)),
    "encoder_layer_gelu_prenorm": (lambda: nn.TransformerEncoderLayer(E, H, FFN, activation="gelu", norm_first=True,
                                                                       batch_first=True), (2, 5, E)),
    "decoder_layer": (Decoder, (2, 5, E)),
    "hand_written": (HandWritten, (2, 5, E)),
}


def referee_counts(name: str) -> dict[tuple, tuple[int, int, frozenset]]:
    build, shape = CASES[name]
    out = {}
    for device in ("meta", "cpu"):
        torch.manual_seed(0)
        with torch.device(device):
            model = build()
        x = torch.randn(shape, device=device)
        for train, grad in itertools.product((True, False), GRADS):
            model.train(train)
            tally, _ = run_counted(model, lambda: model(x), grad)
            frame = tally_frame(tally)
            out[(device, train, grad)] = (int(frame.macs.sum()), int(frame.other_flops.sum()), frozenset(frame.op))
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_referee_count_is_identical_on_every_path(name):
    counts = referee_counts(name)
    values = {k: v[:2] for k, v in counts.items()}
    assert len(set(values.values())) == 1, values
    macs, other = next(iter(values.values()))
    assert macs > 0 and other > 0


def test_fused_cpu_kernels_are_among_the_paths_counted():
    """The identity above covers the fused kernels: they run on CPU in eval + no_grad / inference_mode."""
    seen = set()
    for name in ("mha", "mha_need_weights", "encoder_layer", "sdpa"):
        for ops in (v[2] for v in referee_counts(name).values()):
            seen |= ops
    assert {"aten._native_multi_head_attention", "aten._transformer_encoder_layer_fwd",
            "aten._scaled_dot_product_flash_attention_for_cpu", "aten.bmm"} <= seen


def test_mha_matches_an_independent_closed_form():
    b, t, d = 2, 5, E // H
    proj = b * t * E * 3 * E + b * t * E * E                     # q, k, v in; out
    core = 2 * b * H * t * t * d                                 # QKᵀ and PV
    (macs, _other, _ops), *_ = referee_counts("mha").values()
    assert macs == proj + core
    (macs_tel, _o, _p), *_ = referee_counts("encoder_layer").values()
    assert macs_tel == proj + core + 2 * b * t * E * FFN


def test_sdpa_with_a_mask_counts_the_mask_add_on_every_path():
    mask = torch.randn(5, 5)
    for device in ("meta", "cpu"):
        m = SDPA(mask=mask.to(device))
        q = torch.randn(2, H, 5, 8, device=device)
        totals = set()
        for grad in GRADS:
            tally, _ = run_counted(m, lambda: m(q), grad)
            f = tally_frame(tally)
            totals.add((int(f.macs.sum()), int(f.other_flops.sum())))
        unmasked = tally_frame(run_counted(SDPA(), lambda: SDPA()(q), "no_grad")[0]).other_flops.sum()
        assert len(totals) == 1 and next(iter(totals))[1] == unmasked + 2 * H * 5 * 5


def test_fcm_on_cpu_names_the_fused_kernels_it_misses():
    model = nn.TransformerEncoderLayer(E, H, FFN, batch_first=True).eval()
    res = make("fcm@cpu").run(Job(model, lambda m, x: m(x), (2, 5, E)))
    missed = {s["what"]: s for s in res.skipped}
    assert "aten._transformer_encoder_layer_fwd" in missed
    referee = count(model, (2, 5, E), backends="analytic")
    assert missed["aten._transformer_encoder_layer_fwd"]["missed_flops"] == referee.flops
    assert res.flops == 0                                     # FCM alone would have said 0, silently


def test_fvcore_and_thop_rows_say_what_they_miss():
    pytest.importorskip("fvcore")
    pytest.importorskip("thop")
    res = count(SDPA(), (2, H, 5, 8), backends="fvcore,thop")
    fv = res.backends["fvcore"]
    assert any("scaled_dot_product_attention" in s["what"] for s in fv.skipped)
    assert res.backends["thop"].flops == pytest.approx(res.flops)     # thop counts SDPA's products
    res = count(nn.Sequential(nn.Linear(E, E), nn.SiLU()), (2, E), backends="thop")
    assert any(s["what"].startswith("SiLU") for s in res.backends["thop"].skipped)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (the fused CUDA attention kernels)")
@pytest.mark.parametrize("name", sorted(CASES))
def test_referee_count_is_identical_on_cuda_kernels(name):
    """Flash / memory-efficient / cuDNN SDPA and the CUDA MHA and encoder-layer fast paths price like meta."""
    expected = referee_counts(name)[("meta", False, "no_grad")][:2]
    build, shape = CASES[name]
    seen = set()
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        model = build().to(device="cuda", dtype=dtype)
        x = torch.randn(shape, device="cuda", dtype=dtype)
        for train, grad in itertools.product((True, False), GRADS):
            model.train(train)
            tally, _ = run_counted(model, lambda: model(x), grad)
            frame = tally_frame(tally)
            assert (int(frame.macs.sum()), int(frame.other_flops.sum())) == expected, (dtype, train, grad)
            seen |= set(frame.op)
    if name.startswith(("sdpa", "mha", "encoder")):
        assert any(op.startswith(("aten._scaled_dot_product_", "aten._native_multi_head", "aten._transformer_enc",
                                  "aten._flash_attention", "aten._efficient_attention")) for op in seen), seen
