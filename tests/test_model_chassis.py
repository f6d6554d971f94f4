"""HSG-Det on every chassis (v8/v5, l/m depths), each variant; the YOLOv5 references' anchor-based head."""

import pytest
import torch

from hsgdet import VARIANTS, build_model
from hsgdet.config import CHASSIS, PRESETS, get_config
from hsgdet.data.synthetic import synthetic_batch

# A CPU-sized copy of each chassis: the chassis' own structural choices, hsgdet-tiny's widths.
TINY = {k: v for k, v in PRESETS["hsgdet-tiny"].items() if k not in ("depth_mult",)}


@pytest.mark.parametrize("chassis", list(CHASSIS))
@pytest.mark.parametrize("variant", VARIANTS)
def test_every_variant_runs_on_every_chassis(chassis, variant, one_torch_thread):
    torch.manual_seed(0)
    over = {**TINY, "variant": variant}
    model = build_model(chassis, **over).train()
    x, _ = synthetic_batch(1, 64, 96, 4, seed=1)
    targets = [{"boxes": torch.tensor([[2.0, 2.0, 60.0, 50.0], [40.0, 10.0, 90.0, 40.0]]),
                "labels": torch.tensor([0, 1])}]
    losses = model(x, targets)
    assert torch.isfinite(losses["loss"])
    model.eval()
    with torch.no_grad():
        raw = model(x, output_mode="raw")
    if variant != "sparse-only":
        a = 8 * 12 + 4 * 6 + 2 * 3                                  # anchor points at strides 8/16/32 of 64×96
        assert raw["dense_dist"].shape == (1, a, 4 * model.cfg.reg_max)
        assert raw["dense_logits"].shape == (1, a, 4)
    if variant != "grid-only":
        assert raw["sparse_logits"].shape == (model.cfg.decoder_layers, 1, model.cfg.num_queries, 4)


@pytest.mark.parametrize("chassis", list(CHASSIS))
def test_full_size_chassis_keep_the_seed_channel_plan(chassis):
    with torch.device("meta"):
        model = build_model(chassis)
        feats = model.backbone(torch.empty(1, 3, 1080, 1920))
    assert model.backbone.stem.conv.out_channels == 64
    assert {k: tuple(v.shape[1:]) for k, v in feats.items()} == {
        "p3": (256, 135, 240), "p4": (512, 68, 120), "p5": (1024, 34, 60)}
    cfg = get_config(chassis)
    assert (cfg.num_tokens, cfg.num_queries, cfg.d_model, cfg.decoder_layers) == (256, 200, 256, 6)


def test_v5_chassis_has_yolov5_structure():
    with torch.device("meta"):
        v5, m5 = build_model("hsgdet-l-v5"), build_model("hsgdet-m-v5")
    assert v5.backbone.stem.conv.kernel_size == (6, 6) and v5.backbone.stem.conv.padding == (2, 2)
    assert [len(s.csp.m) for s in (v5.backbone.p3.stride4, v5.backbone.p3.stride8, v5.backbone.p4,
                                   v5.backbone.p5.stage)] == [3, 6, 9, 3]
    assert [len(s.csp.m) for s in (m5.backbone.p3.stride4, m5.backbone.p3.stride8, m5.backbone.p4,
                                   m5.backbone.p5.stage)] == [2, 4, 6, 2]
    assert type(v5.neck.pan).__name__ == "PANv5" and len(v5.neck.pan.td_p4.m) == 3
    assert type(v5.head.dense).__name__ == "DenseHead"             # the seed's anchor-free head


def test_anchor_head_forward_shapes_and_nms_output():
    model = build_model("yolov5l-ref", width_mult=0.125, depth_mult=0.34, num_classes=4,
                        score_threshold=0.0).eval()
    x, _ = synthetic_batch(2, 64, 96, 4, seed=3)
    with torch.no_grad():
        raw = model(x, output_mode="raw")
        dets = model(x)
    a = 3 * (8 * 12 + 4 * 6 + 2 * 3)                                # 3 anchors per cell
    assert raw["dense_pred"].shape == (2, a, 5 + 4)
    assert len(dets) == 2 and all(0 < len(d["boxes"]) <= model.cfg.max_detections for d in dets)
    assert all((d["boxes"][:, 0::2] <= 96).all() and (d["labels"] < 4).all() for d in dets)
    assert sum(b.numel() for b in model.head.dense.buffers()) == 18        # 3 levels × 3 anchors × (w, h)


def test_anchor_head_refuses_training_and_hybrid_use():
    model = build_model("yolov5l-ref", width_mult=0.125, depth_mult=0.34, num_classes=4).train()
    x, targets = synthetic_batch(1, 64, 64, 4, seed=2)
    with pytest.raises(ValueError, match="no training loss"):
        model(x, targets)
    with pytest.raises(ValueError, match="dense_head='anchors'"):
        get_config("hsgdet-l", dense_head="anchors")
    with pytest.raises(ValueError, match="stem_kernel=5"):
        get_config("hsgdet-l", stem_kernel=5)
    with pytest.raises(ValueError, match="pan='v7'"):
        get_config("hsgdet-l", pan="v7")
