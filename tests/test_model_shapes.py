"""Shapes of every named stage at 1080×1920 in both input modes (meta device: no compute)."""

import pytest
import torch

from hsgdet import build_model

# Expected (H, W) per stage, derived from stride-2 3×3 convs with padding 1 (DESIGN.md):
# native 1080 -> 540, 270, 135, 68, 34; padded 1088 -> 544, 272, 136, 68, 34.
EXPECTED = {
    "native": {"stem": (540, 960), "p3": (135, 240), "p4": (68, 120), "p5": (34, 60)},
    "padded": {"stem": (544, 960), "p3": (136, 240), "p4": (68, 120), "p5": (34, 60)},
}
CHANNELS = {"stem": 64, "p3": 256, "p4": 512, "p5": 1024}


def _run_with_shapes(model, x):
    shapes, hooks = {}, []
    for name, mod in model.named_modules():
        if name.count(".") == 1 and name.split(".")[0] in ("backbone", "neck", "head"):
            hooks.append(mod.register_forward_hook(
                lambda m, i, o, name=name: shapes.__setitem__(name, o)))
    with torch.no_grad():
        out = model(x, output_mode="raw")
    for h in hooks:
        h.remove()
    return shapes, out


@pytest.mark.parametrize("mode", ["native", "padded"])
def test_stage_shapes_1080p(mode):
    with torch.device("meta"):
        model = build_model("hsgdet-l", input_mode=mode).eval()
        x = torch.empty(1, 3, 1080, 1920)
    shapes, out = _run_with_shapes(model, x)
    for stage, hw in EXPECTED[mode].items():
        assert tuple(shapes[f"backbone.{stage}"].shape) == (1, CHANNELS[stage], *hw), stage
    assert tuple(shapes["backbone.global_block"].shape) == (1, 1024, *EXPECTED[mode]["p5"])
    pan = shapes["neck.pan"]
    assert [tuple(t.shape) for t in pan] == [(1, CHANNELS[s], *EXPECTED[mode][s]) for s in ("p3", "p4", "p5")]
    tokens = shapes["neck.token_extractor"]                                   # top-K over P5 only
    assert tuple(tokens.memory.shape) == (1, 256, 256) and tuple(tokens.coords.shape) == (1, 256, 2)
    assert tokens.shapes == [EXPECTED[mode]["p5"]]
    assert [tuple(m.shape) for m in tokens.score_maps] == [(1, EXPECTED[mode]["p5"][0] * EXPECTED[mode]["p5"][1])]
    assert [tuple(i.shape) for i in tokens.indices] == [(1, 256)]
    assert tuple(shapes["neck.token_fusion"].shape) == (1, 256, 256)          # K = 256 tokens, d = 256
    anchors = sum(h * w for s, (h, w) in EXPECTED[mode].items() if s != "stem")
    assert tuple(out["dense_logits"].shape) == (1, anchors, 80)
    assert tuple(out["sparse_logits"].shape) == (6, 1, 200, 80)                # every decoder layer
    assert tuple(out["sparse_boxes"].shape) == (6, 1, 200, 4)


def test_multiscale_tokens_are_k_per_scale():
    with torch.device("meta"):
        model = build_model("hsgdet-l", token_scales=("p3", "p4", "p5")).eval()
        x = torch.empty(1, 3, 1080, 1920)
    shapes, _ = _run_with_shapes(model, x)
    assert tuple(shapes["neck.token_fusion"].shape) == (1, 3 * 256, 256)


def test_variants_drop_their_branches():
    grid = build_model("hsgdet-tiny", variant="grid-only")
    sparse = build_model("hsgdet-tiny", variant="sparse-only")
    names_grid = dict(grid.named_modules())
    names_sparse = dict(sparse.named_modules())
    for absent in ("backbone.global_block", "neck.token_extractor", "neck.token_fusion", "head.sparse"):
        assert absent not in names_grid
    for absent in ("neck.pan", "head.dense"):
        assert absent not in names_sparse
    assert "backbone.global_block" in names_sparse
