"""Where an experiment's images come from: the synthetic scenes (default) or a COCO-format set.

:class:`CocoSource` declares a COCO-format detection set on disk and its held-out split before
anything is trained. It is the ``data`` field of :class:`~hsgprof.experiments.config.ExperimentConfig`,
so it is written into every results file and hashed into the run cache's key, together with the
SHA-256 of the annotation file: an edited file never reuses runs trained on the old one.

Declared rules:

* **Split.** Each image gets the SHA-256 of ``"<split_seed>:<image id>"``; the
  ``round(holdout · n)`` images with the smallest hashes (at least 1, at most n − 1) are held out,
  the rest train. The split depends on the ids and the seed only, not on the file's order.
* **Held-out use.** The held-out images, in hash order, are split again: the first
  ``floor(k / 2)`` calibrate each head's temperature, the rest are scored (AP is computed on all
  of them). The convergence curve during training uses the first ``n_convergence`` of them.
* **Training batches.** The batch at step t draws ``batch_size`` training images *with
  replacement* from ``numpy.random.default_rng((seed, t))``, so every variant with one seed sees
  the same images and a resumed run continues exactly. No augmentation.
* **Images.** Every image is resized to ``(height, width)`` (bilinear; multiples of 32 for the
  detector), boxes scaled alike; grayscale, palette and RGBA images become RGB; crowd and
  degenerate annotations are left out of the targets (:class:`hsgdet.data.coco.CocoDataset`).
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hsgprof.errors import HsgprofError

DATA_KINDS = ("synthetic", "coco")
# Decoded, resized images kept in memory per process (bytes); beyond it images are read again.
IMAGE_CACHE_BYTES = 1 << 30


def parse_data(spec: str) -> tuple[str, str] | None:
    """``"synthetic"`` -> None; ``"coco:ANNOTATIONS.json:IMAGE_DIR"`` -> (annotations, image dir)."""
    if spec == "synthetic":
        return None
    kind, _, rest = spec.partition(":")
    annotations, _, image_dir = rest.partition(":")
    if kind != "coco" or not annotations or not image_dir:
        raise HsgprofError(f"--data {spec!r} is not accepted; give synthetic or coco:ANNOTATIONS.json:IMAGE_DIR")
    return annotations, image_dir


def parse_size(text: str) -> tuple[int, int]:
    """``"64"`` -> (64, 64); ``"96x128"`` -> (96, 128) (height x width), multiples of 32."""
    parts = text.lower().split("x")
    try:
        h, w = (int(parts[0]), int(parts[0])) if len(parts) == 1 else (int(parts[0]), int(parts[1]))
    except ValueError:
        h = w = -1
    if len(parts) > 2 or h < 32 or w < 32 or h % 32 or w % 32:
        raise HsgprofError(f"--image-size {text!r} is not accepted; give S or HxW, multiples of 32 "
                           "(e.g. 64 or 384x640)")
    return h, w


def _hash_rank(split_seed: int, image_id: Any) -> str:
    return hashlib.sha256(f"{split_seed}:{image_id}".encode()).hexdigest()


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class CocoSource:
    """A COCO-format detection set and its declared held-out split (see the module docstring).

    Build it with :meth:`declare`, which reads the file once and records what the runs need
    (class count, content hash) so no worker has to trust a file that may have changed.
    """

    annotations: str                   # absolute path of the COCO JSON
    image_dir: str                     # absolute path of the image folder
    annotations_sha256: str
    num_classes: int
    num_images: int
    holdout: float = 0.2
    split_seed: int = 0
    height: int = 64
    width: int = 64
    kind: str = "coco"

    @classmethod
    def declare(cls, annotations: str | Path, image_dir: str | Path, holdout: float = 0.2, split_seed: int = 0,
                size: tuple[int, int] = (64, 64)) -> "CocoSource":
        """Read and check the set, then fix the source (crowd/degenerate annotations are announced
        once here, as :class:`~hsgdet.data.coco.CocoDataset` does)."""
        from hsgprof.adapters.hsgdet_experiments import CocoDataset

        if not (isinstance(holdout, (int, float)) and 0.0 < holdout < 1.0):
            raise HsgprofError(f"--holdout {holdout!r} is not accepted; give a fraction strictly between 0 and 1")
        h, w = size
        if h < 32 or w < 32 or h % 32 or w % 32:
            raise HsgprofError(f"image size {h}x{w} is not accepted; height and width must be multiples of 32")
        annotations, image_dir = Path(annotations).resolve(), Path(image_dir).resolve()
        try:
            ds = CocoDataset(annotations, image_dir)
        except ValueError as exc:
            raise HsgprofError(str(exc)) from None
        if len(ds) < 2:
            raise HsgprofError(f"{str(annotations)!r} has {len(ds)} image(s); a held-out split needs at least 2")
        if ds.num_classes < 1:
            raise HsgprofError(f"{str(annotations)!r} has no categories; a detector needs at least one class")
        src = cls(str(annotations), str(image_dir), file_sha256(annotations), ds.num_classes, len(ds),
                  float(holdout), int(split_seed), int(h), int(w))
        missing = [im["file_name"] for im in ds.images if not (image_dir / im["file_name"]).is_file()]
        if missing:
            raise HsgprofError(f"{len(missing)} image file(s) named in {str(annotations)!r} are not in "
                               f"{str(image_dir)!r}, e.g. {missing[0]!r}")
        return src

    def split(self, image_ids: Sequence[Any]) -> tuple[list[Any], list[Any]]:
        """(training ids, held-out ids in hash order) under the declared rule."""
        ranked = sorted(image_ids, key=lambda i: _hash_rank(self.split_seed, i))
        k = min(max(int(round(self.holdout * len(ranked))), 1), len(ranked) - 1)
        held = ranked[:k]
        held_set = set(held)
        return [i for i in image_ids if i not in held_set], held


class OpenedSource:
    """A :class:`CocoSource` opened in this process: the dataset, both splits, an image cache."""

    def __init__(self, source: CocoSource) -> None:
        from hsgprof.adapters.hsgdet_experiments import CocoDataset

        if file_sha256(source.annotations) != source.annotations_sha256:
            raise HsgprofError(f"{source.annotations!r} changed since the experiment was declared (SHA-256 differs); "
                               "declare it again, which gives a new cache key")
        with warnings.catch_warnings():                      # announced once, when the source was declared
            warnings.simplefilter("ignore", UserWarning)
            self.dataset = CocoDataset(source.annotations, source.image_dir, size=(source.height, source.width))
        ids = [im["id"] for im in self.dataset.images]
        index = {image_id: i for i, image_id in enumerate(ids)}
        train_ids, held_ids = source.split(ids)
        self.train_index = np.array([index[i] for i in train_ids], dtype=np.int64)
        self.holdout_index = [index[i] for i in held_ids]
        per_image = 3 * source.height * source.width * 4
        self._item = functools.lru_cache(maxsize=max(IMAGE_CACHE_BYTES // per_image, 0))(self.dataset.__getitem__)

    def item(self, index: int) -> tuple[Any, dict[str, Any]]:
        """``dataset[index]``: a (3, H, W) image in [0, 1] and its target (cached)."""
        return self._item(int(index))

    def batch(self, batch_size: int, seed: int | Sequence[int]) -> tuple[Any, list[dict[str, Any]]]:
        """Training images (B, 3, H, W) and targets drawn from ``seed`` (with replacement)."""
        import torch

        rng = np.random.default_rng(list(seed) if isinstance(seed, (list, tuple)) else seed)
        pick = rng.choice(self.train_index, size=batch_size, replace=True)
        items = [self.item(i) for i in pick]
        return (torch.stack([im for im, _ in items]),
                [{"boxes": t["boxes"], "labels": t["labels"]} for _, t in items])


@functools.lru_cache(maxsize=4)
def open_source(source: CocoSource) -> OpenedSource:
    """The source opened once per process (workers reuse it across runs)."""
    return OpenedSource(source)


def coco_batch(source: CocoSource, batch_size: int, seed: int | Sequence[int]) -> tuple[Any, list[dict[str, Any]]]:
    """A training batch from a COCO source: images (B, 3, H, W) and detector targets."""
    return open_source(source).batch(batch_size, seed)


def split_summary(source: CocoSource) -> dict[str, Any]:
    """Sizes of the declared split and what the loader left out (for results' meta)."""
    opened = open_source(source)
    ds = opened.dataset
    k = len(opened.holdout_index)
    return {"images": len(ds), "train_images": int(len(opened.train_index)), "holdout_images": k,
            "calibration_images": k // 2, "scored_images": k - k // 2,
            "categories": [{"label": i, "category_id": c, "name": n}
                           for i, (c, n) in enumerate(zip(ds.label_to_category, ds.category_names))],
            "skipped_annotations": {k2: list(v) for k2, v in ds.skipped.items()},
            "holdout_image_ids": [ds.images[i]["id"] for i in opened.holdout_index]}
