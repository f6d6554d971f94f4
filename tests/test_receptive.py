"""Receptive fields: exact fields of hand-computed stacks, a torchvision model, HSG-Det's levels; the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from hsgprof.cli import main
from hsgprof.receptive import fields, output_levels, receptive_fields
from hsgprof.receptive.effective import effective_radius, mass_within

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _plain(m):
    return output_levels(lambda model, x: model(x))


def _one(model, size=64, share=0.95, **kw):
    (lv,) = fields(model, _plain(model), (1, 1, size, size), share=share, samples=4, **kw)
    return lv


def conv(k, s=1, d=1):
    return nn.Conv2d(1, 1, k, s, padding=d * (k // 2), dilation=d)


class TwoPaths(nn.Module):
    """A short (3×3) and a long (3 × 3×3) path added: the field is the union, the long path's 7."""

    def __init__(self):
        super().__init__()
        self.a = conv(3)
        self.b = nn.Sequential(conv(3), conv(3), conv(3))

    def forward(self, x):
        return self.a(x) + self.b(x)


class MiniFPN(nn.Module):
    """Stride-2 conv, another stride-2 conv, nearest ×2 up-sampling concatenated with the first, 1×1 conv."""

    def __init__(self):
        super().__init__()
        self.c1 = conv(3, 2)
        self.c2 = conv(3, 2)
        self.out = nn.Conv2d(2, 1, 1)

    def forward(self, x):
        c1 = self.c1(x)                                          # (B, 1, H/2, W/2)
        up = nn.functional.interpolate(self.c2(c1), size=c1.shape[-2:], mode="nearest")
        return self.out(torch.cat((c1, up), 1))


@pytest.mark.parametrize("model, want, stride", [
    # RF = 1 + Σ (k_i − 1)·d_i·Π_{j<i} s_j
    (nn.Sequential(conv(3), conv(3)), 5, 1),
    (nn.Sequential(conv(3, 2), conv(3)), 1 + 2 + 2 * 2, 2),
    (nn.Sequential(conv(5, 2), conv(3, 2), conv(3)), 1 + 4 + 2 * 2 + 2 * 4, 4),
    (nn.Sequential(conv(3, d=2), conv(3, d=3)), 1 + 4 + 6, 1),
    (nn.Sequential(nn.MaxPool2d(2, 2), conv(3)), 1 + 1 + 2 * 2, 2),             # a max pool's field is its window
    (nn.Sequential(conv(3), nn.MaxPool2d(3, 1, 1), nn.ReLU(), conv(3)), 7, 1),
    (TwoPaths(), 7, 1),
    # c1: 3 px (jump 2); c2: 3 + 2·2 = 7 (jump 4); nearest up-sampling maps cell i to c2's cell i // 2;
    # for the centre cell (i even here) c2's field is centred on c1's: the union is 7.
    (MiniFPN(), 7, 2),
])
def test_theoretical_field_of_hand_computed_stacks(model, want, stride):
    lv = _one(model)
    assert (lv.theoretical_rf, lv.theoretical_hw) == (want, (want, want))
    assert lv.stride == stride and not lv.theoretical_clipped and not lv.is_global
    assert lv.effective_rf <= lv.theoretical_rf
    assert lv.mass_outside_theoretical == 0.0


def test_field_larger_than_the_input_grows_the_input_until_it_fits():
    model = nn.Sequential(*[conv(3) for _ in range(20)])       # 41 px, on a 16 px input
    lv = _one(model, size=16)
    assert lv.theoretical_rf == 41 and not lv.theoretical_clipped and lv.theoretical_input[0] >= 41
    lv = _one(model, size=16, max_pixels=0)                    # not allowed to grow: a lower bound, flagged
    assert lv.theoretical_clipped and lv.theoretical_rf == 16


def test_global_pooling_and_attention_are_global():
    pooled = nn.Sequential(conv(3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    lv = _one(pooled, size=32, max_pixels=64 * 64)
    assert lv.is_global and lv.theoretical_clipped and lv.stride is None


def test_effective_radius_definition_on_hand_made_maps():
    m = np.zeros((11, 11))
    m[5, 5] = 90.0
    m[5, 7] = 10.0                                              # 10% of the mass at Chebyshev distance 2
    assert effective_radius(m, (5, 5), 0.9) == 0
    assert effective_radius(m, (5, 5), 0.95) == 2
    assert mass_within(m, (5, 5), 1) == pytest.approx(0.9)
    assert effective_radius(np.zeros((4, 4)), (1, 1), 0.95) == 0
    with pytest.raises(ValueError, match="share"):
        effective_radius(m, (5, 5), 0.0)


def test_effective_field_shrinks_with_the_share_and_never_exceeds_the_theoretical():
    model = nn.Sequential(*[nn.Sequential(conv(3), nn.Tanh()) for _ in range(6)])
    small, large = _one(model, share=0.5), _one(model, share=0.99)
    assert small.effective_rf <= large.effective_rf <= large.theoretical_rf == 13


def test_torchvision_vgg11_features_field():
    """VGG-11's feature extractor: 8 3×3 convs and 5 2×2/2 max pools, hand-computed field
    1 + 2 + 1 + 4 + 2 + 16 + 4 + 32 + 8 + 64 + 16 = 150 px at stride 32."""
    from torchvision.models import vgg11

    torch.manual_seed(0)
    feats = vgg11().features
    (lv,) = fields(feats, _plain(feats), (1, 3, 160, 160), samples=2, max_pixels=0)
    assert (lv.stride, lv.theoretical_rf, lv.theoretical_clipped) == (32, 150, False)
    assert 0 < lv.effective_rf <= lv.theoretical_rf and lv.mass_outside_theoretical == 0.0


def test_hsgdet_three_levels():
    res = receptive_fields("hsgdet-tiny", "1x3x64x64", samples=2, overrides={"variant": "grid-only"},
                           max_pixels=256 * 256)
    names = [lv.name for lv in res.levels]
    assert names == ["P3", "P4", "P5"] and [lv.stride for lv in res.levels] == [8, 16, 32]
    for lv in res.levels:
        assert lv.effective_rf <= lv.theoretical_rf and lv.mass_outside_theoretical == 0.0
    # the grid-only model's fields are far larger than the stride (SPPF, PAN top-down path) ...
    assert res.level("P3").theoretical_rf > 200
    # ... and a model with a global block sees the whole input from every level, queries included
    hyb = receptive_fields("hsgdet-tiny", "1x3x64x64", samples=2, max_pixels=0)
    assert [lv.name for lv in hyb.levels] == ["P3", "P4", "P5", "queries"]
    assert all(lv.is_global for lv in hyb.levels)


def test_cli_json_text_figure_and_errors(tmp_path, capsys):
    out = tmp_path / "rf.json"
    fig = tmp_path / "rf.png"
    assert main(["rf", "hsgdet-tiny", "--input", "64x64", "--set", "variant=grid-only", "--samples", "2",
                 "--format", "json", "--out", str(out), "--figure", str(fig)]) == 0
    doc = json.loads(out.read_text())
    assert [lv["name"] for lv in doc["levels"]] == ["P3", "P4", "P5"]
    for lv in doc["levels"]:
        assert {"name", "stride", "theoretical_rf", "effective_rf"} <= set(lv)
        assert lv["effective_rf"] <= lv["theoretical_rf"]
    assert fig.read_bytes()[:4] == b"\x89PNG"
    # a plain classifier: one output, global
    assert main(["rf", "torch.nn:Identity", "--input", "1x1x8x8", "--samples", "1"]) == 0
    assert "output" in capsys.readouterr().out
    for argv, msg in ((["rf", "hsgdet-tiny", "--format", "xml"], "--format 'xml'"),
                      (["rf", "hsgdet-tiny", "--share", "1.5", "--input", "64x64"], "--share 1.5"),
                      (["rf", "no_such_model"], "unknown target"),
                      (["rf", "hsgdet-tiny", "--input", "64x64", "--weights", str(tmp_path / "none.pt")], "--weights"),
                      (["rf", "hsgdet-tiny", "--input", "64x64", "--figure", str(tmp_path / "f.gif")], "--figure")):
        assert main(argv) == 2
        assert msg in capsys.readouterr().err
    assert not (tmp_path / "f.gif").exists()


def test_trained_weights_are_read_from_a_checkpoint(tmp_path):
    from hsgprof.adapters.hsgdet import build

    torch.manual_seed(1)
    model = build("hsgdet-tiny", variant="grid-only")
    torch.save({"model": model.state_dict()}, tmp_path / "ck.pt")
    a = receptive_fields("hsgdet-tiny", "64x64", samples=1, overrides={"variant": "grid-only"},
                         weights=str(tmp_path / "ck.pt"), max_pixels=0, seed=5)
    from hsgprof.adapters.hsgdet import rf_levels

    b = receptive_fields(model, (1, 3, 64, 64), samples=1, max_pixels=0, seed=5, levels=rf_levels)
    assert a.weights.endswith("ck.pt")
    assert np.allclose(a.level("P3").grad_map, b.level("P3").grad_map)
    fresh = receptive_fields("hsgdet-tiny", "64x64", samples=1, overrides={"variant": "grid-only"}, max_pixels=0, seed=5)
    assert not np.allclose(a.level("P3").grad_map, fresh.level("P3").grad_map)
