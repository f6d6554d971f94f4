"""Every bad input named in the model issue gives a ValueError naming the bad value, before heavy work."""

import pytest
import torch

from hsgdet import build_model, get_config


@pytest.fixture(scope="module")
def model():
    return build_model("hsgdet-tiny")


def _good_targets():
    return [{"boxes": torch.tensor([[4.0, 4.0, 30.0, 40.0]]), "labels": torch.tensor([1])}]


@pytest.mark.parametrize("kwargs, match", [
    ({"preset": "hsgdet-xl"}, "unknown preset 'hsgdet-xl'"),
    ({"variant": "dense-only"}, "variant='dense-only' is not accepted; choose one of hybrid"),
    ({"input_mode": "stretch"}, "input_mode='stretch'"),
    ({"output_mode": "nms2"}, "output_mode='nms2'"),
    ({"token_scales": ("p6",)}, "token_scales=\\('p6',\\)"),
    ({"num_tokens": 0}, "num_tokens=0"),
    ({"no_such_field": 1}, "unknown config field 'no_such_field'"),
])
def test_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        get_config(**kwargs)


@pytest.mark.parametrize("images, match", [
    ([[0.0]], "must be a torch.Tensor"),
    (torch.rand(3, 64, 64), r"shape \[B,3,H,W\], got \[3, 64, 64\]"),
    (torch.rand(1, 1, 64, 64), r"got \[1, 1, 64, 64\]"),
    (torch.randint(0, 255, (1, 3, 64, 64), dtype=torch.uint8), "floating-point.*uint8"),
    (torch.rand(1, 3, 16, 64), "16x64 is below the largest stride"),
    (torch.rand(1, 3, 64, 31), "64x31 is below the largest stride"),
    (torch.full((1, 3, 64, 64), float("nan")), "NaN or inf"),
])
def test_bad_images(model, images, match):
    model.eval()
    with pytest.raises(ValueError, match=match):
        model(images)


@pytest.mark.parametrize("targets, match", [
    (None, "train mode needs targets"),
    ([], "list of 1 dicts"),
    ([{"boxes": torch.zeros(1, 4)}], "'boxes' and 'labels'"),
    ([{"boxes": torch.zeros(4), "labels": torch.tensor([0])}], r"\[n,4\]"),
    ([{"boxes": torch.tensor([[30.0, 4.0, 10.0, 40.0]]), "labels": torch.tensor([0])}], "x2<=x1"),
    ([{"boxes": torch.tensor([[4.0, 4.0, 90.0, 40.0]]), "labels": torch.tensor([0])}], "outside the 64x64 image"),
    ([{"boxes": torch.tensor([[-1.0, 4.0, 9.0, 40.0]]), "labels": torch.tensor([0])}], "outside"),
    ([{"boxes": torch.tensor([[4.0, 4.0, 30.0, 40.0]]), "labels": torch.tensor([4])}], r"has 4; labels must be in \[0, 4\)"),
    ([{"boxes": torch.tensor([[4.0, 4.0, 30.0, 40.0]]), "labels": torch.tensor([0.0])}], "integer tensor"),
    ([{"boxes": torch.tensor([[4.0, float("nan"), 30.0, 40.0]]), "labels": torch.tensor([0])}], "NaN"),
])
def test_bad_targets(model, targets, match):
    model.train()
    with pytest.raises(ValueError, match=match):
        model(torch.rand(1, 3, 64, 64), targets)


def test_good_targets_pass(model):
    model.train()
    assert torch.isfinite(model(torch.rand(1, 3, 64, 64), _good_targets())["loss"])


def test_bad_output_mode(model):
    model.eval()
    with pytest.raises(ValueError, match="output_mode='boxes' is not accepted"):
        model(torch.rand(1, 3, 64, 64), output_mode="boxes")


def test_errors_come_before_heavy_work():
    """Validation runs before the backbone: a bad 1080p batch fails without computing anything."""
    model = build_model("hsgdet-tiny").eval()
    calls = []
    model.backbone.register_forward_pre_hook(lambda m, i: calls.append(1))
    with pytest.raises(ValueError):
        model(torch.full((1, 3, 1080, 1920), float("inf")))
    assert calls == []
