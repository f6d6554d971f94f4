"""The referee's formulas: closed forms on small layers, conventions, and no silent zeros."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hsgprof.counting import formulas
from hsgprof.counting.backends.analytic import fcm_check, run_counted, tally_frame


def referee(model: nn.Module, *inputs: torch.Tensor, grad: str = "no_grad"):
    model = model.to(inputs[0].device)
    tally, _ = run_counted(model, lambda: model(*inputs), grad)
    frame = tally_frame(tally)
    return frame, tally


def totals(frame) -> tuple[int, int]:
    return int(frame.macs.sum()), int(frame.other_flops.sum())


def test_conv_macs_and_bias_follow_the_closed_form():
    conv = nn.Conv2d(6, 8, 3, stride=2, padding=1, groups=2, bias=True)
    frame, _ = referee(conv, torch.empty(2, 6, 9, 11, device="meta"))
    ho, wo = (9 + 2 - 3) // 2 + 1, (11 + 2 - 3) // 2 + 1
    out = 2 * 8 * ho * wo
    assert totals(frame) == (out * (6 // 2) * 9, out)


def test_transposed_conv_counts_per_input_pixel():
    conv = nn.ConvTranspose2d(4, 6, 2, stride=2, bias=False)
    frame, _ = referee(conv, torch.empty(1, 4, 5, 7, device="meta"))
    assert totals(frame) == (1 * 4 * 5 * 7 * 6 * 4, 0)


def test_linear_matmul_einsum_and_bmm():
    lin = nn.Linear(10, 7)
    frame, _ = referee(lin, torch.empty(3, 5, 10, device="meta"))
    assert totals(frame) == (3 * 5 * 10 * 7, 3 * 5 * 7)

    class Products(nn.Module):
        def forward(self, a, b):
            return (a @ b).sum() + torch.einsum("bij,bjk->bik", a, b).sum() + torch.bmm(a, b).sum()

    a, b = torch.empty(2, 3, 4, device="meta"), torch.empty(2, 4, 5, device="meta")
    frame, _ = referee(Products(), a, b)
    assert int(frame.macs.sum()) == 3 * (2 * 3 * 4 * 5)


def test_attention_unit_closed_form():
    q = torch.empty(2, 4, 6, 8, device="meta")
    k = torch.empty(2, 4, 10, 8, device="meta")
    v = torch.empty(2, 4, 10, 5, device="meta")

    class Sdpa(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    frame, _ = referee(Sdpa(), q, k, v)
    scores = 2 * 4 * 6 * 10
    assert totals(frame) == (scores * 8 + scores * 5, 2 * 4 * 6 * 8 + 2 * 4 * 10 * 8 + 3 * scores)


def test_norms_activations_pools_interpolation_conventions():
    x = torch.empty(2, 3, 8, 8, device="meta")
    n = x.numel()
    cases = [(nn.BatchNorm2d(3).eval(), 2 * n), (nn.BatchNorm2d(3).train(), 2 * n), (nn.SiLU(), n), (nn.GELU(), n),
             (nn.GroupNorm(1, 3), 6 * n), (nn.LayerNorm(8), 6 * n), (nn.LayerNorm(8, elementwise_affine=False), 4 * n),
             (nn.MaxPool2d(2), (4 - 1) * n // 4), (nn.AvgPool2d(2), 4 * n // 4),
             (nn.Upsample(scale_factor=2, mode="nearest"), 0), (nn.Upsample(scale_factor=2, mode="bilinear"), 7 * 4 * n),
             (nn.Softmax(-1), 3 * n), (nn.Dropout(0.5).train(), 0)]
    for module, expected in cases:
        frame, tally = referee(module, x)
        assert totals(frame) == (0, expected), type(module).__name__
        assert not tally.unknown


def test_integer_and_boolean_work_is_free_and_topk_is_a_selection():
    class M(nn.Module):
        def forward(self, x):
            idx = torch.arange(x.shape[1], device=x.device) * 2 + 1      # integer arithmetic
            mask = x > 0                                                    # a predicate
            return x.topk(3, dim=1).values, idx, mask

    frame, tally = referee(M(), torch.empty(4, 10, device="meta"))
    assert totals(frame) == (0, 4 * 10)
    assert set(frame[frame.other_flops > 0].family) == {formulas.SELECTION}
    assert not tally.unknown


def test_an_op_without_a_rule_is_reported_not_silently_zero():
    class M(nn.Module):
        def forward(self, x):
            return torch.ops.aten.special_bessel_j0(x)

    frame, tally = referee(M(), torch.randn(3, 4))
    assert tally.unknown == {"aten.special_bessel_j0": 1}
    assert bool(frame[frame.op == "aten.special_bessel_j0"].unknown.iloc[0])


def test_every_rule_states_its_convention_in_one_line():
    rows = formulas.conventions()
    assert len(rows) > 100
    for r in rows:
        assert r["convention"] and "\n" not in r["convention"], r["op"]
        assert r["family"] in formulas.FAMILIES, r


def test_inline_check_agrees_with_flopcountermode_formulas_and_flags_a_wrong_one(monkeypatch):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    frame, _ = referee(model, torch.empty(2, 3, 8, 8, device="meta"))
    check = fcm_check(frame)
    assert check["status"] == "agree" and check["ops_agree"] == check["ops_compared"] >= 2

    wrong = formulas.FORMULAS[torch.ops.aten.addmm]
    monkeypatch.setitem(formulas.FORMULAS, torch.ops.aten.addmm,
                        formulas.Formula(lambda *a, **k: (1, 0), wrong.family, wrong.convention))
    frame, _ = referee(model, torch.empty(2, 3, 8, 8, device="meta"))
    check = fcm_check(frame)
    assert check["status"] == "disagree" and check["disagree"][0]["op"] == "aten.addmm"


def test_backward_gemm_is_counted_not_assumed():
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).to("meta")
    x = torch.empty(8, 16, device="meta")
    counter_tally, _ = run_counted(model, lambda: model(x).sum().backward(), "enable_grad")
    frame = tally_frame(counter_tally)
    fwd = 8 * 16 * 32 + 8 * 32 * 4
    # backward: grad wrt weights for both layers, grad wrt input only for the second (x needs none)
    assert int(frame.macs.sum()) == fwd + (8 * 16 * 32) + 2 * (8 * 32 * 4)
    assert fcm_check(frame)["status"] == "agree"


@pytest.mark.parametrize("grad", ["no_grad", "enable_grad", "inference_mode"])
def test_composite_ops_decompose_identically_in_every_grad_mode(grad):
    model = nn.Sequential(nn.Linear(8, 8), nn.LayerNorm(8), nn.GELU(), nn.Dropout(0.2))
    model.train()
    frame, tally = referee(model, torch.empty(3, 8, device="meta"), grad=grad)
    assert totals(frame) == (3 * 8 * 8, 3 * 8 + 6 * 3 * 8 + 3 * 8)
    assert not tally.unknown


def test_flash_kernel_head_dim_padding_is_undone_from_the_scale():
    """CUDA SDPA pads head dims to a multiple of 8 for the flash kernel and passes the original scale."""
    rule = formulas.FORMULAS[torch.ops.aten._scaled_dot_product_flash_attention].fn
    padded, real = torch.Size((2, 4, 5, 8)), torch.Size((2, 4, 5, 4))
    assert rule(padded, padded, padded, 0.0, False, False, scale=4 ** -0.5) == formulas.sdpa_cost(real, real, real, False)
    assert rule(padded, padded, padded, 0.0, False, False, scale=8 ** -0.5) == formulas.sdpa_cost(padded, padded, padded, False)
    assert rule(padded, padded, padded, 0.0, False, False, scale=None) == formulas.sdpa_cost(padded, padded, padded, False)


def _docs_rule_example() -> str:
    from pathlib import Path

    doc = (Path(__file__).resolve().parent.parent / "docs" / "counting.md").read_text()
    section = doc.split("## Adding a rule", 1)[1].split("\n# ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_docs_rule_example_registers_a_rule_and_the_referee_uses_it(monkeypatch):
    aten = torch.ops.aten
    registry = dict(formulas.FORMULAS)
    registry.pop(aten.logaddexp, None)                     # the example must work even once a rule ships
    monkeypatch.setattr(formulas, "FORMULAS", registry)

    class M(nn.Module):
        def forward(self, a, b):
            return torch.logaddexp(a, b)

    _, before = referee(M(), torch.randn(3, 5), torch.randn(3, 5))
    assert before.unknown == {"aten.logaddexp": 1}          # no rule yet: reported, not a silent zero
    exec(compile(_docs_rule_example(), "docs/counting.md:Adding a rule", "exec"), {})
    assert registry[aten.logaddexp].family == formulas.ELEMENTWISE
    frame, tally = referee(M(), torch.randn(3, 5), torch.randn(3, 5))
    assert not tally.unknown and totals(frame) == (0, 4 * 15)


def test_registering_an_unknown_op_raises_a_one_line_error(monkeypatch):
    monkeypatch.setattr(formulas, "FORMULAS", dict(formulas.FORMULAS))
    with pytest.raises(ValueError, match=r"'my_op' is not an aten op in torch .*aten op name") as err:
        formulas.formula("my_op", family=formulas.ELEMENTWISE)
    assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match=r"family 'elementwize' is not accepted; choose one of conv, "):
        formulas.formula(torch.ops.aten.logaddexp, family="elementwize")
    with pytest.raises(ValueError, match="cannot register a rule for 3"):
        formulas.formula(3, family=formulas.ELEMENTWISE)
    with pytest.raises(ValueError, match="no op given"):
        formulas.formula(family=formulas.ELEMENTWISE)
    with pytest.raises(RuntimeError, match="duplicate formula for aten.mm"):
        formulas.formula("mm", family=formulas.MATMUL)(lambda *a, **k: (0, 0))
    assert torch.ops.aten.logaddexp2 not in formulas.FORMULAS
    formulas.formula("aten.logaddexp2", torch.ops.aten.special_bessel_j0.default, family=formulas.ELEMENTWISE)(
        lambda *a, out=None, **k: (0, 1))                   # "aten." prefix and overloads name their packet
    assert {torch.ops.aten.logaddexp2, torch.ops.aten.special_bessel_j0} <= set(formulas.FORMULAS)
    n = len(formulas.FORMULAS)
    formulas.formula("no_such_op", family=formulas.MEMORY, if_present=True)(lambda *a, **k: (0, 0))
    assert len(formulas.FORMULAS) == n                    # the built-in rules' opt-out: skipped, knowingly
