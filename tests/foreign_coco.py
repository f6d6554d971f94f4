"""A hand-built COCO set unlike the project's own (shared by the loader and the experiment tests):
sparse category ids (1, 3, 90), a crowd annotation, a zero-width box, a float box, a grayscale
PNG, an RGB JPEG and an RGBA image without annotations, all 32×48.

Its images are flat colours unless ``textured``: training on flat images gives BatchNorm a zero
variance (every pixel of every image alike), and the hybrid's gradients then overflow to NaN
within a step, so the training tests draw seeded noise into the same images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np


def write_foreign_coco(folder: Path, textured: bool = False) -> tuple[Path, Path, dict[str, Any]]:
    """Write the set under ``folder`` (``img/`` and ``ann.json``); returns (annotations, image dir, dict)."""
    from PIL import Image

    rng = np.random.default_rng(0)

    def pixels(shape: tuple[int, ...], value: int) -> np.ndarray:
        return (rng.integers(0, 256, shape) if textured else np.full(shape, value)).astype(np.uint8)

    (folder / "img").mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels((32, 48), 100), mode="L").save(folder / "img" / "grey.png")
    Image.fromarray(pixels((32, 48, 3), 0)).save(folder / "img" / "rgb.jpg")
    Image.fromarray(pixels((32, 48, 4), 0), mode="RGBA").save(folder / "img" / "empty.png")
    coco = {"images": [{"id": 7, "file_name": "grey.png", "height": 32, "width": 48},
                       {"id": 9, "file_name": "rgb.jpg", "height": 32, "width": 48},
                       {"id": 11, "file_name": "empty.png", "height": 32, "width": 48}],
            "categories": [{"id": 90, "name": "toothbrush"}, {"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
            "annotations": [
                {"id": 100, "image_id": 7, "category_id": 90, "bbox": [1, 2, 10, 5], "iscrowd": 0},
                {"id": 101, "image_id": 7, "category_id": 1, "bbox": [0, 0, 20, 20], "iscrowd": 1},
                {"id": 102, "image_id": 9, "category_id": 3, "bbox": [4, 4, 0, 8], "iscrowd": 0},
                {"id": 103, "image_id": 9, "category_id": 1, "bbox": [5.5, 6.0, 3.0, 4.5]}]}
    (folder / "ann.json").write_text(json.dumps(coco))
    return folder / "ann.json", folder / "img", coco
