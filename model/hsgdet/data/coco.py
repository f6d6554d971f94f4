"""COCO-format detection data: write synthetic scenes as COCO JSON (+ PNGs), read any COCO set.

Conventions (those of the COCO annotation format):
* ``bbox`` is ``[x, y, width, height]`` in pixels; the detector's targets are xyxy pixels.
* category ids are arbitrary integers; :class:`CocoDataset` maps them, sorted, to contiguous
  labels ``0..C-1`` (``label_to_category`` gives the way back, for writing detections).
* synthetic scenes use ``category_id = label + 1`` and carry their generator metadata as extra
  annotation fields (``occlusion``, ``pair``, ``occluder``) and image fields (``z``, ``key_box``),
  which COCO tools ignore.
JSON is written atomically (temporary file + rename), so an interrupted write leaves no half file.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from .scenes import Scene


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def category_list(num_classes: int, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """COCO categories for labels 0..C-1 (id = label + 1); synthetic names ``family{f}-bit{b}``."""
    out = []
    for c in range(num_classes):
        name = names[c] if names is not None else f"family{c // 2}-bit{c % 2}"
        out.append({"id": c + 1, "name": name, "supercategory": f"family{c // 2}" if names is None else "object"})
    return out


def scenes_to_coco(scenes: Sequence[Scene], num_classes: int, file_names: Sequence[str] | None = None,
                   first_image_id: int = 1) -> dict[str, Any]:
    """A COCO ground-truth dict for ``scenes`` (image ids from ``first_image_id``)."""
    images, annotations = [], []
    ann_id = 1
    for i, s in enumerate(scenes):
        image_id = first_image_id + i
        _, h, w = s.image.shape
        images.append({"id": image_id, "file_name": file_names[i] if file_names else f"{image_id:06d}.png",
                       "height": int(h), "width": int(w), "z": int(s.z),
                       "key_box": [int(v) for v in s.key_box], "num_objects": int(len(s.labels))})
        for j, (box, label) in enumerate(zip(s.boxes.tolist(), s.labels.tolist())):
            x1, y1, x2, y2 = box
            annotations.append({
                "id": ann_id, "image_id": image_id, "category_id": int(label) + 1,
                "bbox": [x1, y1, x2 - x1, y2 - y1], "area": (x2 - x1) * (y2 - y1), "iscrowd": 0,
                "occlusion": float(s.occlusion[j]), "pair": int(s.pair[j]),
                "occluder": bool(s.occluder[j]), "index_in_image": j})
            ann_id += 1
    return {"info": {"description": "hsgdet synthetic scenes"}, "images": images,
            "annotations": annotations, "categories": category_list(num_classes)}


def write_coco(path: str | Path, coco: dict[str, Any]) -> Path:
    """Write a COCO dict as JSON, atomically."""
    validate_coco(coco, str(path))
    return atomic_write_text(path, json.dumps(coco) + "\n")


def read_coco(path: str | Path) -> dict[str, Any]:
    """Read and check a COCO detection JSON; ValueError names what is wrong."""
    path = Path(path)
    try:
        coco = json.loads(path.read_text())
    except FileNotFoundError:
        raise ValueError(f"COCO annotation file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"COCO annotation file {str(path)!r} is not valid JSON ({exc})") from None
    validate_coco(coco, str(path))
    return coco


def validate_coco(coco: Any, where: str = "COCO dict") -> None:
    """Raise ValueError unless ``coco`` has images, annotations and categories as COCO defines them."""
    if not isinstance(coco, dict):
        raise ValueError(f"{where}: a COCO file holds a JSON object, got {type(coco).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise ValueError(f"{where}: missing list {key!r}; a COCO detection file has images, "
                             "annotations and categories")
    image_ids = {im.get("id") for im in coco["images"]}
    cat_ids = {c.get("id") for c in coco["categories"]}
    for ann in coco["annotations"]:
        if ann.get("image_id") not in image_ids:
            raise ValueError(f"{where}: annotation {ann.get('id')!r} refers to image {ann.get('image_id')!r}, "
                             "which is not in 'images'")
        if ann.get("category_id") not in cat_ids:
            raise ValueError(f"{where}: annotation {ann.get('id')!r} has category {ann.get('category_id')!r}, "
                             "which is not in 'categories'")
        bbox = ann.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) == 4
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
            raise ValueError(f"{where}: annotation {ann.get('id')!r} has bbox {bbox!r}; expected [x, y, w, h] numbers")


def save_scenes(folder: str | Path, scenes: Sequence[Scene], num_classes: int,
                annotation_name: str = "annotations.json") -> Path:
    """Write scenes as a COCO dataset: ``folder/images/*.png`` and ``folder/<annotation_name>``."""
    from PIL import Image

    folder = Path(folder)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    names = [f"{i + 1:06d}.png" for i in range(len(scenes))]
    for name, s in zip(names, scenes):
        Image.fromarray(to_uint8(s.image[:3]).permute(1, 2, 0).numpy()).save(folder / "images" / name)
    return write_coco(folder / annotation_name, scenes_to_coco(scenes, num_classes, names))


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) float in [0, 1] -> uint8, rounding to nearest."""
    return (image.clamp(0, 1) * 255).round().to(torch.uint8)


class CocoDataset:
    """Any COCO-format detection set on disk (COCO val2017, a synthetic export, your own).

    ``dataset[i]`` is ``(image (3, H, W) float in [0, 1], target)`` with ``target["boxes"]``
    xyxy pixels and ``target["labels"]`` contiguous ``0..C-1``. What it does with foreign data:

    * category ids (any integers, e.g. COCO's sparse 1..90) are sorted and mapped to labels
      ``0..C-1``; ``label_to_category`` and ``category_to_label`` keep the mapping both ways;
    * crowd annotations (``iscrowd: 1``) are left out of the targets (COCO evaluation ignores them);
    * degenerate boxes (width or height ≤ 0, or not finite; COCO has a few) are dropped;
    * both are listed by annotation id in ``skipped`` (``{"crowd": [...], "degenerate": [...]}``)
      and announced in one ``UserWarning`` when the dataset is opened;
    * grayscale, palette and RGBA images are converted to 3-channel RGB (grey copied to R, G, B);
    * images without annotations are kept with empty targets (``keep_empty=False`` drops
      images that have no kept annotation).

    ``size=(H, W)`` resizes each image to that size (boxes scaled alike); sizes must then be
    multiples of 32 for the detector.
    """

    def __init__(self, annotation_file: str | Path, image_dir: str | Path, size: tuple[int, int] | None = None,
                 keep_empty: bool = True) -> None:
        import math
        import warnings

        self.coco = read_coco(annotation_file)
        self.image_dir = Path(image_dir)
        if not self.image_dir.is_dir():
            raise ValueError(f"image folder {str(self.image_dir)!r} does not exist")
        self.size = size
        cats = sorted(c["id"] for c in self.coco["categories"])
        self.category_to_label = {cid: i for i, cid in enumerate(cats)}
        self.label_to_category = cats
        self.category_names = [next(c["name"] for c in self.coco["categories"] if c["id"] == cid) for cid in cats]
        # by_image: the annotations each image's target is made of (crowd and degenerate ones left out)
        self.by_image: dict[int, list[dict[str, Any]]] = {im["id"]: [] for im in self.coco["images"]}
        self.skipped: dict[str, list[Any]] = {"crowd": [], "degenerate": []}
        for ann in self.coco["annotations"]:
            w, h = ann["bbox"][2], ann["bbox"][3]
            if ann.get("iscrowd", 0):
                self.skipped["crowd"].append(ann.get("id"))
            elif not all(math.isfinite(v) for v in ann["bbox"]) or w <= 0 or h <= 0:
                self.skipped["degenerate"].append(ann.get("id"))
            else:
                self.by_image[ann["image_id"]].append(ann)
        self.images = [im for im in self.coco["images"] if keep_empty or self.by_image[im["id"]]]
        notes = []
        if self.skipped["crowd"]:
            notes.append(f"{len(self.skipped['crowd'])} crowd annotation(s) (iscrowd=1) left out of the targets "
                         f"(COCO evaluation ignores them): ids {_first(self.skipped['crowd'])}")
        if self.skipped["degenerate"]:
            notes.append(f"{len(self.skipped['degenerate'])} annotation(s) with a zero, negative or non-finite "
                         f"width or height dropped: ids {_first(self.skipped['degenerate'])}")
        if notes:
            warnings.warn(f"{annotation_file}: " + "; ".join(notes) + " (listed in CocoDataset.skipped)",
                          UserWarning, stacklevel=2)

    @property
    def num_classes(self) -> int:
        return len(self.label_to_category)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        import numpy as np
        from PIL import Image

        info = self.images[index]
        path = self.image_dir / info["file_name"]
        if not path.is_file():
            raise ValueError(f"image {str(path)!r} (image id {info['id']}) does not exist")
        with Image.open(path) as im:
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)             # (H, W, 3); grey -> RGB
        image = torch.from_numpy(rgb.copy()).permute(2, 0, 1).float() / 255  # (3, H, W)
        anns = self.by_image[info["id"]]                     # crowd and degenerate boxes already left out
        boxes = torch.tensor([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2],
                               a["bbox"][1] + a["bbox"][3]] for a in anns], dtype=torch.float32).reshape(-1, 4)
        labels = torch.tensor([self.category_to_label[a["category_id"]] for a in anns], dtype=torch.long)
        if self.size is not None:
            h, w = image.shape[-2:]
            th, tw = self.size
            image = F.interpolate(image[None], size=(th, tw), mode="bilinear", align_corners=False)[0]
            boxes = boxes * torch.tensor([tw / w, th / h, tw / w, th / h])
        return image, {"boxes": boxes, "labels": labels, "image_id": torch.tensor(info["id"])}

    def batch(self, indices: Sequence[int]) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        """A stacked batch (needs ``size`` set or equal image sizes)."""
        items = [self[i] for i in indices]
        shapes = {tuple(im.shape) for im, _ in items}
        if len(shapes) > 1:
            raise ValueError(f"images of different sizes {sorted(shapes)} cannot be stacked; pass size=(H, W)")
        return torch.stack([im for im, _ in items]), [t for _, t in items]


def _first(ids: Sequence[Any], n: int = 5) -> str:
    """The first ``n`` ids, and how many more."""
    head = ", ".join(str(i) for i in ids[:n])
    return head + (f" and {len(ids) - n} more" if len(ids) > n else "")
