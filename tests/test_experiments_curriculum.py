"""The training curriculum: a declared share of each training batch drawn with scene overrides."""

from __future__ import annotations

import pytest
import torch

from hsgdet.data.scenes import HIDDEN_KEY, SceneConfig, generate_scenes, scene_batch
from hsgprof.errors import HsgprofError
from hsgprof.experiments.config import Budget, Curriculum, get_preset
from hsgprof.experiments.train import Prefetch, RunSpec, train_run, train_scene

FAR = SceneConfig(height=32, width=256, key_gap=120, key_size=8, key_height=30, key_corners=(0, 2))
NEAR = Curriculum(share=0.5, scene=(("key_gap", 2),), until=4)


def test_the_share_comes_from_its_own_stream_and_stops_at_until():
    batches = Prefetch(FAR, 4, 7, 0, 6, enabled=False, curriculum=NEAR)
    near_scene = FAR.replace(key_gap=2)
    images, targets = batches.get(3)                                  # step < until: 2 + 2
    far, far_t, _ = scene_batch(FAR, 2, (7, 3))
    near, near_t, _ = scene_batch(near_scene, 2, (7, 3, 1))
    assert torch.equal(images, torch.cat((far, near)))
    assert all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(targets, far_t + near_t))
    images, _ = batches.get(4)                                        # from until on: as declared
    assert torch.equal(images, scene_batch(FAR, 4, (7, 4))[0])


def test_the_default_draws_every_batch_as_before():
    plain = Prefetch(FAR, 3, 5, 0, 2, enabled=False)
    assert Curriculum().near_count(3, 0) == 0
    assert torch.equal(plain.get(1)[0], scene_batch(FAR, 3, (5, 1))[0])


def test_near_scenes_put_objects_inside_the_gap_that_far_scenes_keep():
    near = Prefetch(FAR, 8, 1, 0, 1, enabled=False, curriculum=Curriculum(share=1.0, scene=(("key_gap", 2),)))
    _, targets = near.get(0)
    x1 = torch.cat([t["boxes"][:, 0] for t in targets])
    assert (x1 < 1 + 8 + 120).any()                  # some object nearer the key than the far gap allows


def test_a_controls_scene_applies_to_the_share_too():
    cfg = get_preset("smoke").replace(train_scene=FAR, curriculum=Curriculum(share=1.0, scene=(("key_gap", 2),)))
    spec = RunSpec("hybrid", 0, tag="control-negative", scene=(("show_key", False),))
    batches = Prefetch(train_scene(cfg, spec), 2, 0, 0, 1, enabled=False, curriculum=cfg.curriculum)
    images, _ = batches.get(0)
    assert torch.all(images[:, :, 1:31, 1:9] == HIDDEN_KEY)           # the key hidden in the near scenes


@pytest.mark.parametrize("bad, word", [(Curriculum(share=1.5), "share=1.5"), (Curriculum(until=-1), "until=-1"),
                                       (Curriculum(share=0.5, scene=(("nope", 1),)), "nope"),
                                       (Curriculum(share=0.5, scene=(("key_gap", -3),)), "key_gap=-3")])
def test_bad_curricula_are_refused_in_one_line(bad, word):
    with pytest.raises(HsgprofError, match=word) as info:
        get_preset("smoke").replace(curriculum=bad)
    assert "\n" not in str(info.value)


def test_the_curriculum_is_keyed_and_declared():
    cfg = get_preset("smoke")
    assert cfg.replace(curriculum=Curriculum()).key() == cfg.key()    # the default leaves keys unchanged
    changed = cfg.replace(curriculum=NEAR)
    assert changed.key() != cfg.key()
    assert changed.to_dict()["curriculum"] == {"share": 0.5, "scene": {"key_gap": 2}, "until": 4}


def test_train_run_draws_the_curriculum(tmp_path, monkeypatch):
    import hsgprof.experiments.train as T

    seen = []
    real = T.generate_scenes

    def spy(scene, n, seed):
        seen.append((scene.key_gap, n, tuple(seed)))
        return real(scene, n, seed)

    monkeypatch.setattr(T, "generate_scenes", spy)
    cfg = get_preset("smoke").replace(
        train_scene=FAR, val_scene=FAR,
        budget=Budget(steps=2, batch_size=2, warmup_steps=1, grad_every=10, eval_every=100, checkpoint_every=100),
        curriculum=Curriculum(share=0.5, scene=(("key_gap", 2),), until=1))
    train_run(cfg, RunSpec("grid-only", 3), tmp_path, progress=False, resume=False)
    assert seen == [(120, 1, (3, 0)), (2, 1, (3, 0, 1)), (120, 2, (3, 1))]


def test_a_pilot_is_read_only_against_a_preset_with_its_curriculum(tmp_path):
    import dataclasses

    from hsgprof.experiments import learnability as L
    from hsgprof.results import write_results

    quick = get_preset("quick")

    def pilot(cfg):
        meta = {"budget": dataclasses.replace(cfg.budget, steps=1000).__dict__, "variant": "hybrid",
                "learned": [{"seed": 0, "head": "dense", "learned_at_step": 300}]}
        return write_results(tmp_path / "learn.json", "experiments.learnability", [], config=cfg.to_dict(), meta=meta)

    with_near = quick.replace(curriculum=NEAR)
    assert L.budget_check(with_near, pilot(with_near))["status"] == L.REACHES
    assert L.budget_check(quick, pilot(with_near))["status"] == L.UNKNOWN      # learned with help the preset lacks
    assert L.budget_check(with_near, pilot(quick))["status"] == L.UNKNOWN
    plain = quick.to_dict()
    plain.pop("curriculum")                                                      # a file written before the field
    meta = {"budget": dataclasses.replace(quick.budget, steps=1000).__dict__, "variant": "hybrid",
            "learned": [{"seed": 0, "head": "dense", "learned_at_step": 300}]}
    old = write_results(tmp_path / "old.json", "experiments.learnability", [], config=plain, meta=meta)
    assert L.budget_check(quick, old)["status"] == L.REACHES


def test_key_reach_draws_every_object_near_the_key():
    near = FAR.replace(key_gap=2, key_reach=40)
    scenes = generate_scenes(near, 60, 0)
    boxes = torch.cat([s.boxes for s in scenes])
    assert len(boxes) > 60                                            # objects are still placed
    for s in scenes:
        kx1, ky1, kx2, ky2 = s.key_box
        for x1, y1, x2, y2 in s.boxes.tolist():
            gap = max(kx1 - x2, x1 - kx2, ky1 - y2, y1 - ky2)         # Chebyshev distance, box to key
            assert gap >= 2 and x1 >= kx1 - 40 and x2 <= kx2 + 40, (s.key_box, (x1, y1, x2, y2))


def test_key_reach_is_checked_and_absent_from_config_dicts_at_its_default():
    with pytest.raises(ValueError, match="key_reach=10 is not accepted"):
        FAR.replace(key_gap=2, key_reach=10)                          # no room for a 16-px object
    assert "key_reach" not in get_preset("quick").to_dict()["train_scene"]
    assert get_preset("quick").replace(train_scene=get_preset("quick").train_scene.replace(key_reach=200)).key() \
        != get_preset("quick").key()


def test_a_curriculum_is_refused_with_a_coco_source():
    from hsgprof.experiments.datasource import CocoSource

    coco = CocoSource(annotations="/a.json", image_dir="/img", annotations_sha256="0", num_classes=2, num_images=10)
    cfg = get_preset("smoke").replace(data=coco)                      # without a curriculum: accepted
    with pytest.raises(HsgprofError, match="synthetic scenes only"):
        cfg.replace(curriculum=NEAR)


def test_training_batches_are_drawn_at_the_configs_batch_with_its_curriculum():
    from hsgprof.experiments.train import training_batches

    cfg = get_preset("smoke").replace(train_scene=FAR, curriculum=NEAR,
                                      budget=Budget(steps=6, batch_size=4, warmup_steps=1, eval_every=100))
    images, _ = training_batches(cfg, 7, 0, 6).get(3)
    assert torch.equal(images, Prefetch(FAR, 4, 7, 0, 6, enabled=False, curriculum=NEAR).get(3)[0])
