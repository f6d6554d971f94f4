"""The referee against published counts computed independently of us.

* torchvision: ``Weights.meta["_ops"]`` is GMACs of conv, linear and matrix products at the
  weights' crop size (torchvision's docs call it GFLOPS); the referee's GEMM MACs must agree
  within 1%, across convolutional and attention families.
* YOLOv8-l: Ultralytics publishes 165.2 GFLOPs at 640 (2 × thop MACs of the BN-folded model);
  ``yolov8l-ref``'s referee GEMM FLOPs must agree within 1%, and its parameters exactly.
"""

from __future__ import annotations

import pytest

from hsgprof.claims.seed import PUBLISHED
from hsgprof.counting import count, count_torchvision

FAMILIES = ["resnet50", "mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "vit_b_16", "swin_t"]


@pytest.mark.parametrize("name", FAMILIES)
def test_referee_matches_torchvision_published_gmacs(name):
    res, weights, _ = count_torchvision(name)
    published = weights.meta["_ops"] * 1e9
    assert res.macs == pytest.approx(published, rel=0.01), (res.macs / 1e9, weights.meta["_ops"])
    assert res.params == weights.meta["num_params"]
    assert res.check["status"] == "agree" and res.check["fcm_run"]["status"] == "agree"


def test_yolov8l_reference_matches_the_published_flops_and_params():
    res = count("yolov8l-ref", "640x640", mode="native", backends="analytic,thop")
    assert res.flops == pytest.approx(PUBLISHED["yolov8l_gflops_640"] * 1e9, rel=0.01)
    assert res.params == PUBLISHED["yolov8l_trainable_params"]
    # thop on the unfused model adds BatchNorm at 4 MACs per element (affine): the yaml's 165.7
    bn = res.referee.frame[res.referee.frame.op.str.contains("batch_norm")]
    bn_elements = bn.other_flops.sum() / 2                     # the referee prices BN at 2 per element
    assert res.backends["thop"].flops == pytest.approx(res.flops + 2 * 4 * bn_elements, rel=1e-3)


@pytest.mark.parametrize("preset, published", [("yolov5l-ref", "yolov5l_gflops_640"),
                                               ("yolov5m-ref", "yolov5m_gflops_640"),
                                               ("yolov8m-ref", "yolov8m_gflops_640")])
def test_reference_presets_match_the_published_flops(preset, published):
    """Referee GEMM FLOPs (2 × MACs of every conv, as thop prices a BN-folded model) at 640×640."""
    res = count(preset, "640x640", mode="native", backends="analytic")
    assert res.flops == pytest.approx(PUBLISHED[published] * 1e9, rel=0.01)
