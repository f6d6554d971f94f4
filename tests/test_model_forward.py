"""Real CPU forward/backward at small sizes, eval outputs, input modes."""

import pytest
import torch

from hsgdet import VARIANTS, build_model
from hsgdet.data.synthetic import synthetic_batch


@pytest.mark.parametrize("variant", VARIANTS)
def test_backward_reaches_every_parameter(variant):
    torch.manual_seed(0)
    model = build_model("hsgdet-tiny", variant=variant).train()
    x, _ = synthetic_batch(2, 96, 128, 4, seed=1)
    # objects of every size, so every pyramid level of the dense head gets positives
    boxes = torch.tensor([[2.0, 2.0, 126.0, 94.0], [30.0, 20.0, 70.0, 60.0], [8.0, 60.0, 24.0, 76.0]])
    targets = [{"boxes": boxes, "labels": torch.tensor([0, 1, 2])}] * 2
    losses = model(x, targets)
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.isfinite(p.grad).all()]
    assert missing == []
    # The dense box branch learns only where the assigner puts positives, and which pyramid
    # levels get them depends on the (random) predictions; every other parameter must move.
    zero = [n for n, p in model.named_parameters()
            if p.grad.abs().sum() == 0 and not n.startswith("head.dense.box.")]
    assert zero == []
    if model.head.dense is not None:
        assert sum(p.grad.abs().sum() for p in model.head.dense.box.parameters()) > 0


def test_token_scores_learn_through_the_gate():
    """top-K indices carry no gradient; the sigmoid gate must give the score head one anyway."""
    model = build_model("hsgdet-tiny").train()
    x, targets = synthetic_batch(1, 64, 64, 4, seed=2)
    model(x, targets)["loss_sparse_cls"].backward()           # a loss with no direct token term
    assert model.neck.token_extractor.score["p5"].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("mode", ["native", "padded"])
def test_eval_outputs_in_every_mode(mode):
    model = build_model("hsgdet-tiny", input_mode=mode, score_threshold=0.0).eval()
    x, _ = synthetic_batch(2, 100, 130, 4, seed=3)            # not a multiple of 32
    with torch.no_grad():
        for output_mode in ("nms_free", "nms", "fused"):
            dets = model(x, output_mode=output_mode)
            assert len(dets) == 2
            for d in dets:
                n = len(d["boxes"])
                assert 0 < n <= model.cfg.max_detections
                assert d["boxes"].shape == (n, 4) and d["scores"].shape == (n,) and d["labels"].shape == (n,)
                assert (d["boxes"][:, 0::2] >= 0).all() and (d["boxes"][:, 0::2] <= 130).all()
                assert (d["boxes"][:, 1::2] >= 0).all() and (d["boxes"][:, 1::2] <= 100).all()
                assert (d["labels"] < 4).all()
                assert (d["scores"][:-1] >= d["scores"][1:]).all()
    nms_free = model(x, output_mode="nms_free")
    assert all(len(d["boxes"]) <= model.cfg.num_queries for d in nms_free)


def test_padded_mode_letterboxes_and_maps_back():
    model = build_model("hsgdet-tiny", input_mode="padded").eval()
    x = torch.rand(1, 3, 100, 130)
    padded, meta = model.preprocess(x)
    assert padded.shape[-2:] == (128, 160) and meta.offset == (14, 15)
    assert torch.equal(padded[..., 14:114, 15:145], x)
    assert torch.all(padded[..., :14, :] == model.cfg.pad_value)
    boxes = torch.tensor([[15.0, 14.0, 145.0, 114.0]])       # the whole image, in padded pixels
    out = model.detection.output._to_image(boxes, torch.ones(1), torch.zeros(1, dtype=torch.long), meta)
    assert torch.allclose(out["boxes"], torch.tensor([[0.0, 0.0, 130.0, 100.0]]))


def test_native_and_padded_agree_on_divisible_sizes():
    torch.manual_seed(0)
    native = build_model("hsgdet-tiny").eval()
    padded = build_model("hsgdet-tiny", input_mode="padded").eval()
    padded.load_state_dict(native.state_dict())
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        a, b = native(x, output_mode="raw"), padded(x, output_mode="raw")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_grid_only_has_no_nms_free_output():
    model = build_model("hsgdet-tiny", variant="grid-only").eval()
    with pytest.raises(ValueError, match="output_mode='nms_free' is not available"):
        with torch.no_grad():
            model(torch.rand(1, 3, 64, 64), output_mode="nms_free")
