"""The device-agnostic estimate: what each number holds, precisions, optimizers, bad input, no leaks."""

from __future__ import annotations

import torch
import torch.nn.functional as F
import pytest

from hsgprof.errors import HsgprofError
from hsgprof.memory import estimate_memory
from hsgprof.memory.allocator import round_size


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Real CPU compute here runs with one torch thread (conftest)."""


TINY = (2, 3, 96, 128)
RESNET = "torchvision.models:resnet18"


@pytest.fixture(scope="module")
def tiny_train():
    return estimate_memory("hsgdet-tiny", TINY, mode="train", optimizer="adamw", precision="fp32", device="cuda")


def test_summary_has_the_issue_fields(tiny_train):
    s = tiny_train.summary()
    for key in ("params_bytes", "grads_bytes", "optimizer_bytes", "activations_bytes", "peak_bytes",
                "peak_reserved_bytes", "per_component", "per_phase"):
        assert key in s
    assert {r["phase"] for r in s["per_phase"]} == {"forward", "backward", "optimizer"}


def test_training_static_parts_follow_the_parameters(tiny_train):
    e = tiny_train
    assert e.params_bytes > 0
    assert e.grads_bytes == e.params_bytes                 # every parameter gets a gradient
    assert e.optimizer_bytes == 2 * e.params_bytes         # AdamW: exp_avg + exp_avg_sq
    assert e.activations_bytes == e.saved_bytes > 0
    assert e.peak_allocated_bytes >= e.peak_bytes          # 512-byte rounding only adds
    assert e.peak_reserved_bytes >= e.peak_allocated_bytes
    assert e.peak_bytes >= e.static_bytes + e.saved_bytes * 0.9


def test_per_component_rows_add_up(tiny_train):
    df = tiny_train.per_component
    assert df.params_bytes.sum() == tiny_train.params_bytes
    assert df.saved_bytes.sum() == tiny_train.saved_bytes
    assert "Global block" in set(df.component) and "(loss)" in set(df.component)


def test_inference_has_no_training_state():
    e = estimate_memory("hsgdet-tiny", TINY, mode="inference", precision="fp32", device="cuda")
    assert e.grads_bytes == 0 and e.optimizer_bytes == 0 and e.saved_bytes == 0
    assert e.activations_bytes == e.activation_peak_bytes > 0
    assert list(e.per_phase.phase) == ["forward"]


def test_optimizer_state_sizes():
    sgd = estimate_memory(RESNET, (1, 3, 64, 64), mode="train", optimizer="sgd", device="cuda")
    adam = estimate_memory(RESNET, (1, 3, 64, 64), mode="train", optimizer="adam", device="cuda")
    assert sgd.optimizer_bytes == sgd.params_bytes         # momentum buffer
    assert adam.optimizer_bytes == 2 * adam.params_bytes


def test_precisions_change_what_they_should():
    shape = (2, 3, 128, 128)
    fp32 = estimate_memory(RESNET, shape, mode="train", precision="fp32", device="cuda")
    bf16 = estimate_memory(RESNET, shape, mode="train", precision="bf16", device="cuda")
    amp = estimate_memory(RESNET, shape, mode="train", precision="fp16-amp", device="cuda")
    assert bf16.params_bytes * 2 == fp32.params_bytes
    assert bf16.optimizer_bytes * 2 == fp32.optimizer_bytes
    assert amp.params_bytes == fp32.params_bytes           # fp32 master weights
    assert amp.grads_bytes == fp32.grads_bytes
    assert 0.4 * fp32.saved_bytes < amp.saved_bytes < 0.75 * fp32.saved_bytes
    assert 0.4 * fp32.saved_bytes < bf16.saved_bytes < 0.6 * fp32.saved_bytes


def test_activations_scale_with_batch():
    e1 = estimate_memory(RESNET, (1, 3, 128, 128), mode="train", device="cpu")
    e4 = estimate_memory(RESNET, (4, 3, 128, 128), mode="train", device="cpu")
    assert e4.saved_bytes == pytest.approx(4 * e1.saved_bytes, rel=0.02)
    assert e4.params_bytes == e1.params_bytes


def test_cpu_prediction_is_unrounded_and_has_no_reserved():
    e = estimate_memory(RESNET, (1, 3, 64, 64), device="cpu")
    assert e.peak_reserved_bytes is None
    assert e.peak_allocated_bytes == e.peak_bytes


def test_cuda_attention_takes_the_fused_kernels():
    """fp32 on CUDA: memory-efficient attention saves no T×T matrix; the CPU math path would."""
    t = 1024
    shape = (1, 3, 32 * 32, 32 * 32)        # global block sees (32x32) = 1024 tokens
    e = estimate_memory("hsgdet-tiny", shape, mode="train", device="cuda")
    heads = 2
    attn_matrix = heads * t * t * 4
    gb = dict(zip(e.per_component.component, e.per_component.saved_bytes))["Global block"]
    assert gb < attn_matrix


def test_engine_and_python_backward_agree():
    for prec in ("fp32", "fp16-amp"):
        walk = estimate_memory("hsgdet-tiny", TINY, mode="train", precision=prec, device="cpu")
        engine = estimate_memory("hsgdet-tiny", TINY, mode="train", precision=prec, device="cpu",
                                 engine_backward=True)
        for a, b in zip(walk.per_phase.itertuples(), engine.per_phase.itertuples()):
            assert a.phase == b.phase
            assert a.peak_tensor_bytes == pytest.approx(b.peak_tensor_bytes, rel=0.03)
        assert walk.grads_bytes == engine.grads_bytes


def test_replay_under_a_small_limit_is_oom(tiny_train):
    assert tiny_train.replay(limit_bytes=tiny_train.peak_reserved_bytes + (64 << 20)).oom is False
    assert tiny_train.replay(limit_bytes=tiny_train.static_bytes).oom is True


def test_deterministic():
    a = estimate_memory("hsgdet-tiny", TINY, mode="train", device="cuda")
    b = estimate_memory("hsgdet-tiny", TINY, mode="train", device="cuda")
    assert a.summary()["per_phase"] == b.summary()["per_phase"]
    assert a.saved_bytes == b.saved_bytes


def test_no_global_state_left_behind():
    from torch.nn.modules import module as m

    sdpa = F.scaled_dot_product_attention
    hooks = (len(m._global_forward_hooks), len(m._global_forward_pre_hooks))
    estimate_memory("hsgdet-tiny", TINY, mode="train", precision="fp16-amp", device="cuda")
    with pytest.raises(HsgprofError):
        estimate_memory("hsgdet-tiny", (1, 3, 16, 16), mode="train", device="cuda")
    assert F.scaled_dot_product_attention is sdpa
    assert (len(m._global_forward_hooks), len(m._global_forward_pre_hooks)) == hooks
    assert not torch.is_autocast_enabled("cuda")
    x = torch.ones(3)
    assert float((x * 2).sum()) == 6.0                       # no dispatch mode left active


@pytest.mark.parametrize("kwargs, match", [
    (dict(precision="fp8"), "unknown precision 'fp8'"),
    (dict(mode="train", optimizer="lion"), "unknown optimizer 'lion'"),
    (dict(mode="eval"), "unknown mode 'eval'"),
    (dict(device="tpu"), "unknown device 'tpu'"),
])
def test_bad_choices_are_one_line_errors(kwargs, match):
    with pytest.raises(HsgprofError, match=match):
        estimate_memory("hsgdet-tiny", TINY, **kwargs)


@pytest.mark.parametrize("shape, match", [
    ((0, 3, 96, 128), "batch 0"), ((-2, 3, 96, 128), "batch -2"), ((1, 3, 96), "give \\(B, C, H, W\\)"),
    ((1, 3, 16, 16), "rejects input 1x3x16x16"), ((1, 1, 96, 128), "rejects input"),
])
def test_bad_shapes_are_one_line_errors(shape, match):
    with pytest.raises(HsgprofError, match=match) as info:
        estimate_memory("hsgdet-tiny", shape)
    assert "\n" not in str(info.value)


def test_a_generic_model_rejecting_its_input_is_one_line():
    with pytest.raises(HsgprofError, match="could not run") as info:
        estimate_memory(RESNET, (1, 1, 64, 64))
    assert "\n" not in str(info.value)


def test_rounding_is_what_the_allocator_counts():
    assert round_size(3) == 512
