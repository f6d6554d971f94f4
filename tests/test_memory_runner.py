"""RealStep (what the CUDA measurements execute) runs every mode and precision; checked on the CPU."""

from __future__ import annotations

import pytest
import torch

from hsgprof.errors import HsgprofError
from hsgprof.memory.runner import RealStep


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Real CPU compute here runs with one torch thread (conftest)."""


SHAPE = (1, 3, 64, 96)


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16-amp", "bf16-amp"])
def test_training_step_updates_weights(precision):
    step = RealStep("hsgdet-tiny", "train", precision, "adamw", "cpu")
    x = step.make_input(SHAPE)
    before = [p.detach().clone() for p in step.model.parameters()]
    stepped = [step.run(x) for _ in range(3)]
    changed = sum(not torch.equal(b, p.detach()) for b, p in zip(before, step.model.parameters()))
    assert changed > 0.5 * len(before)
    assert stepped[-1] or precision == "fp16-amp"
    assert len(step.opt.state) > 0                                    # created when the step was built
    assert all(p.grad is None for p in step.model.parameters())       # set to None after the step
    assert (step.scaler is not None) == (precision == "fp16-amp")


@pytest.mark.parametrize("precision", ["fp32", "fp16-amp", "bf16"])
def test_inference_returns_raw_outputs(precision):
    step = RealStep("hsgdet-tiny", "inference", precision, None, "cpu")
    out = step.infer(step.make_input(SHAPE))
    assert set(out) >= {"dense_logits", "sparse_logits"}
    assert not step.model.training


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_optimizers(optimizer):
    step = RealStep("torchvision.models:resnet18", "train", "fp32", optimizer, "cpu")
    step.run(step.make_input((2, 3, 64, 64)))
    assert len(step.opt.state) > 0


def test_bad_optimizer_and_mode():
    with pytest.raises(HsgprofError, match="unknown optimizer"):
        RealStep("hsgdet-tiny", "train", "fp32", "lion", "cpu")
    with pytest.raises(HsgprofError, match="unknown mode"):
        RealStep("hsgdet-tiny", "eval", "fp32", "adamw", "cpu")
    with pytest.raises(HsgprofError, match="unknown precision"):
        RealStep("hsgdet-tiny", "train", "int8", "adamw", "cpu")


def test_recover_after_a_step_failed_between_unscale_and_update():
    step = RealStep("hsgdet-tiny", "train", "fp16-amp", "adamw", "cpu")
    x = step.make_input(SHAPE)
    loss = step.forward_loss(x)
    step.backward(loss)
    step.scaler.unscale_(step.opt)             # a failure after this point leaves the scaler mid-step
    step.recover()
    assert all(p.grad is None for p in step.model.parameters())
    step.run(x)                                # usable again
