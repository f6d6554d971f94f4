"""HSG-Det for the theory experiments: the model, its synthetic scenes, COCO I/O (the adapter rule).

The theory experiments are about HSG-Det's branches, so unlike the rest of the toolkit they
need the model's own pieces; keeping every import here makes that dependency one line to find.
"""

from __future__ import annotations

from hsgdet import VARIANTS, build_model, get_config
from hsgdet.data.coco import CocoDataset, read_coco, save_scenes, scenes_to_coco, write_coco
from hsgdet.data.scenes import Scene, SceneConfig, batch_of, generate_scenes, known_quantities, scene_batch
from hsgdet.heads import dfl_decode

__all__ = ["VARIANTS", "build_model", "get_config", "CocoDataset", "read_coco", "save_scenes", "scenes_to_coco", "write_coco",
           "Scene", "SceneConfig", "batch_of", "generate_scenes", "known_quantities", "scene_batch", "dfl_decode"]
