"""Seeded synthetic scenes whose ground truth has known information structure.

The theory experiments need data where the quantities the seed talks about are known by
construction, so a measured entropy can be set against the truth:

* **Families and class bits.** Every object belongs to one of ``num_families`` families; a
  family has one look (colour and pattern). Each family has two classes, ``2·family + bit``,
  that look *identical*: the class bit cannot be read from the object.
* **A scene latent z, shown far away.** Each image draws ``z ~ Bernoulli(1/2)`` and shows it
  only through a small *key* marker in a random corner (white square for z = 0, black for
  z = 1; ``key_height`` makes it a band instead, ``key_corners`` limits the corners it may
  take, e.g. the left end only; the key is not an object and has no box).
  Every object keeps at least ``key_gap`` pixels (Chebyshev) from the key, so on a long
  canvas the key can be put out of a local model's reach (out of its *theoretical* receptive
  field, if training must not find it); ``key_reach`` does the opposite, drawing every object
  within that many pixels of the key (a training curriculum's "near" scenes). Two controls change nothing else in the scene: ``show_key=False`` paints the
  key mid-grey whatever z is (z hidden; the negative control), and ``z_plane=True`` appends one
  input plane holding z everywhere (z readable at every pixel; the positive control). Each object's bit equals z with probability
  ``dependency`` (s), else it is a fair coin, so ``P(bit = z) = (1 + s) / 2``.
  Hence, per object: ``H(bit | object's own pixels) = ln 2`` and ``H(bit | X) = H_b((1 + s)/2)``;
  the information that only global reasoning (seeing the key) can supply is
  ``ln 2 − H_b((1 + s)/2)`` nats per object.
* **Occlusion.** With probability ``pair_prob`` an object gets a partner of the same size that
  overlaps it by a fraction drawn from ``overlap_range`` of its area; the partner is painted
  over it (the occluder). The occluded fraction of every object is measured from the paint
  order (the fraction of its box covered by objects painted later), not assumed.
* **Linked pairs.** The occluder's bit copies the occluded object's bit with probability
  ``pair_link`` (r), else follows the rule above. Its marginal ``P(bit = z)`` stays (1 + s)/2,
  and ``I(Y_i; Y_j | X) > 0`` for r > 0 and s < 1, with the value in :func:`known_quantities`.
* **Density.** ``min_objects``..``max_objects`` objects per image (uniform), on any canvas:
  small objects on a large canvas give dense scenes (over 200 objects per image).

Everything is drawn from ``numpy.random.default_rng(seed)``; the same seed gives the same
scenes. This module never imports hsgprof.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from .synthetic import class_colors

PATTERNS = ("solid", "ring", "hstripes", "vstripes", "cross", "checker")
KEY_COLORS = {0: 1.0, 1: 0.0}          # z -> grey level of the key square (white / black)
HIDDEN_KEY = 0.5                       # the key's grey when show_key=False (the same for both z)


@dataclass(frozen=True)
class SceneConfig:
    """Every parameter of the scene generator (all of them go into the results' provenance)."""

    height: int = 64
    width: int = 64
    num_families: int = 2               # classes = 2 · families: (family, bit)
    min_objects: int = 1
    max_objects: int = 6
    min_size: int = 8                   # object side lengths in pixels, uniform in [min, max]
    max_size: int = 16
    dependency: float = 0.9             # s: P(bit = z) = (1 + s) / 2
    key_size: int = 8                   # side of the key square (shows z); 0 hides z entirely
    key_height: int = 0                 # the key's height if not key_size (a band: height - 2); 0 = square
    key_gap: int = 2                    # min Chebyshev distance in pixels between the key and any object
    key_reach: int = 0                  # if > 0, max Chebyshev distance from the key to any object's far edge
    key_corners: tuple[int, ...] = (0, 1, 2, 3)   # corners the key may take (0 top-left, 1 top-right,
                                                  # 2 bottom-left, 3 bottom-right), uniform among them
    show_key: bool = True               # False: the key is painted mid-grey for both z (z hidden, same layout)
    z_plane: bool = False               # True: images get a 4th plane filled with z (z readable locally)
    pair_prob: float = 0.3              # probability that a placement is an overlapping pair (2 objects)
    overlap_range: tuple[float, float] = (0.1, 0.7)   # occluded fraction of the partner pair
    overlap_levels: tuple[float, ...] = ()            # if set, overlaps are drawn from these
    pair_link: float = 0.8              # r: P(occluder's bit copies the occluded bit)
    max_free_overlap: float = 0.0       # max IoU between objects that are not a declared pair
    noise: float = 0.05                 # background noise standard deviation
    max_tries: int = 50                 # placement attempts per object before it is dropped

    def __post_init__(self) -> None:
        if self.height < 32 or self.width < 32:
            raise ValueError(f"canvas {self.height}x{self.width} is too small; height and width must be >= 32")
        if not 1 <= self.num_families <= len(PATTERNS) * 4:
            raise ValueError(f"num_families={self.num_families} is not accepted; use 1..{len(PATTERNS) * 4}")
        if not 0 <= self.min_objects <= self.max_objects:
            raise ValueError(f"objects range [{self.min_objects}, {self.max_objects}] is not accepted; "
                             "need 0 <= min_objects <= max_objects")
        if not 2 <= self.min_size <= self.max_size:
            raise ValueError(f"size range [{self.min_size}, {self.max_size}] is not accepted; need 2 <= min <= max")
        if self.max_size + self.key_size + 2 > min(self.height, self.width):
            raise ValueError(f"max_size={self.max_size} with key_size={self.key_size} does not fit "
                             f"a {self.height}x{self.width} canvas")
        if not 0 <= self.key_height <= self.height - 2:
            raise ValueError(f"key_height={self.key_height} is not accepted on a canvas {self.height} high; "
                             f"need 0 (a square key) .. {self.height - 2}")
        if self.key_gap < 0 or 1 + self.key_size + self.key_gap + self.max_size > max(self.height, self.width):
            raise ValueError(f"key_gap={self.key_gap} is not accepted on a {self.height}x{self.width} canvas with "
                             f"key_size={self.key_size}, max_size={self.max_size}; need 0 <= key_gap <= "
                             f"{max(self.height, self.width) - 1 - self.key_size - self.max_size}")
        if self.key_reach and (self.key_reach < self.key_gap + self.max_size or not self.key_size):
            raise ValueError(f"key_reach={self.key_reach} is not accepted with key_gap={self.key_gap}, "
                             f"max_size={self.max_size}, key_size={self.key_size}; need 0 (no limit) or "
                             f">= key_gap + max_size = {self.key_gap + self.max_size} with a key")
        object.__setattr__(self, "key_corners", tuple(self.key_corners))   # a list read back from JSON, too
        if not self.key_corners or any(c not in (0, 1, 2, 3) for c in self.key_corners) \
                or len(set(self.key_corners)) != len(self.key_corners):
            raise ValueError(f"key_corners={self.key_corners!r} is not accepted; need distinct corners from "
                             "0 (top-left), 1 (top-right), 2 (bottom-left), 3 (bottom-right)")
        for name in ("dependency", "pair_prob", "pair_link"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name}={v!r} is not accepted; it must lie in [0, 1]")
        lo, hi = self.overlap_range
        if not 0.0 <= lo <= hi < 1.0:
            raise ValueError(f"overlap_range={self.overlap_range!r} is not accepted; need 0 <= lo <= hi < 1")
        if any(not 0.0 <= o < 1.0 for o in self.overlap_levels):
            raise ValueError(f"overlap_levels={self.overlap_levels!r} is not accepted; each must lie in [0, 1)")

    @property
    def num_classes(self) -> int:
        return 2 * self.num_families

    @property
    def channels(self) -> int:
        """Image planes: RGB, plus the z plane when ``z_plane``."""
        return 3 + int(self.z_plane)

    @property
    def z_visible(self) -> bool:
        """Whether the image shows z at all (a key that is drawn and shaded by z, or the z plane)."""
        return self.z_plane or (self.key_size > 0 and self.show_key)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "SceneConfig":
        return dataclasses.replace(self, **changes)


@dataclass
class Scene:
    """One image and its objects, with the metadata the experiments bin and condition on."""

    image: torch.Tensor                  # (3, H, W) float in [0, 1]; (4, H, W) with the z plane
    boxes: torch.Tensor                  # (n, 4) xyxy pixels
    labels: torch.Tensor                 # (n,) class = 2 · family + bit
    z: int                               # the scene latent shown by the key
    key_box: tuple[int, int, int, int]   # xyxy of the key square (not an object)
    occlusion: np.ndarray                # (n,) fraction of each box covered by later objects
    pair: np.ndarray                     # (n,) index of the pair partner, -1 if none
    occluder: np.ndarray                 # (n,) True where the object is the painted-over-it partner
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def families(self) -> torch.Tensor:
        return self.labels // 2

    @property
    def bits(self) -> torch.Tensor:
        return self.labels % 2

    def target(self) -> dict[str, torch.Tensor]:
        """The detector's training target: {"boxes": (n, 4) xyxy, "labels": (n,)}."""
        return {"boxes": self.boxes, "labels": self.labels}


def binary_entropy(p: float) -> float:
    """H_b(p) in nats."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log(p) + (1 - p) * math.log(1 - p))


def known_quantities(cfg: SceneConfig) -> dict[str, float]:
    """The information-theoretic quantities fixed by the generator's parameters (nats).

    ``h_bit_given_x``: H(bit | X) = H_b((1+s)/2), the best any detector can do on the bit.
    ``h_bit_given_local``: H(bit | the object's own pixels) = ln 2.
    ``info_global``: their difference, what only the key (global context) can supply.
    ``h_class_given_x``: H(class | X) = H(bit | X) (the family is visible).
    ``i_pair_given_x``: I(Y_i; Y_j | X) for a linked (occluded, occluder) pair.
    ``h_pair_given_x``: H(Y_i, Y_j | X) for such a pair.
    Without a visible z (``key_size == 0`` or ``show_key=False``, and no z plane) H(bit | X) = ln 2.
    """
    s, r = cfg.dependency, cfg.pair_link
    p = (1 + s) / 2 if cfg.z_visible else 0.5
    joint = pair_joint(p, r)                                    # (2, 2): rows bit_i == z?, cols bit_j == z?
    h_joint = -float(sum(v * math.log(v) for v in joint.ravel() if v > 0))
    hb = binary_entropy(p)
    return {"p_bit_equals_z": p, "h_bit_given_x": hb, "h_bit_given_local": math.log(2),
            "info_global": math.log(2) - hb, "h_class_given_x": hb,
            "i_pair_given_x": 2 * hb - h_joint, "h_pair_given_x": h_joint}


def pair_joint(p: float, r: float) -> np.ndarray:
    """P(bit_i == z, bit_j == z) for a linked pair: j copies i w.p. r, else P(bit_j == z) = p."""
    a = np.array([1 - p, p])                                    # bit_i: [≠ z, = z]
    joint = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            joint[i, j] = a[i] * (r * (i == j) + (1 - r) * a[j])
    return joint


def family_look(num_families: int) -> list[tuple[torch.Tensor, str]]:
    """(colour (3,), pattern) per family: colours spread over hue, patterns cycle."""
    colors = class_colors(max(num_families, 1))
    return [(colors[f], PATTERNS[f % len(PATTERNS)]) for f in range(num_families)]


@functools.lru_cache(maxsize=None)
def _looks(num_families: int) -> tuple[tuple[np.ndarray, str], ...]:
    """family_look as float64 numpy colours, made once per family count (every scene paints with them)."""
    looks = tuple((color.numpy().astype(float), pattern) for color, pattern in family_look(num_families))
    for color, _ in looks:
        color.setflags(write=False)
    return looks


def _overlaps(box: np.ndarray, other: np.ndarray) -> bool:
    """Whether two boxes (x1, y1, x2, y2) share area: ``_iou(box, other[None]) > 0`` for boxes of
    positive area, as Python scalars (placement asks it once per try)."""
    return (min(box[2], other[2]) - max(box[0], other[0]) > 0) and (min(box[3], other[3]) - max(box[1], other[1]) > 0)


def _paint(image: np.ndarray, box: tuple[int, int, int, int], color: np.ndarray, pattern: str) -> None:
    """Paint one object into image (H, W, 3): every pixel of its box is overwritten (occludes)."""
    x1, y1, x2, y2 = box
    h, w = y2 - y1, x2 - x1
    yy, xx = np.mgrid[0:h, 0:w]
    bg = 0.3                                                    # grey of the pattern's holes
    if pattern == "solid":
        mask = np.ones((h, w), bool)
    elif pattern == "ring":
        t = max(1, min(h, w) // 4)
        mask = (yy < t) | (yy >= h - t) | (xx < t) | (xx >= w - t)
    elif pattern == "hstripes":
        mask = (yy // 2) % 2 == 0
    elif pattern == "vstripes":
        mask = (xx // 2) % 2 == 0
    elif pattern == "cross":
        t = max(1, min(h, w) // 3)
        mask = (np.abs(yy - h // 2) < (t + 1) // 2 + 1) | (np.abs(xx - w // 2) < (t + 1) // 2 + 1)
    else:                                                       # checker
        mask = ((yy // 2) + (xx // 2)) % 2 == 0
    patch = np.where(mask[..., None], color[None, None], bg)
    image[y1:y2, x1:x2] = patch


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    if len(boxes) == 0:
        return np.zeros(0)
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = ix * iy
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / (area + areas - inter)


def _overlap_box(rng: np.random.Generator, base: np.ndarray, frac: float, h: int, w: int
                 ) -> np.ndarray | None:
    """A box of base's size shifted along one axis so it covers ``frac`` of base; None if off-canvas."""
    bw, bh = base[2] - base[0], base[3] - base[1]
    for axis in rng.permutation(4):                             # try the four directions
        if axis < 2:
            d = int(round((1 - frac) * bw)) * (1 if axis == 0 else -1)
            cand = base + np.array([d, 0, d, 0])
        else:
            d = int(round((1 - frac) * bh)) * (1 if axis == 2 else -1)
            cand = base + np.array([0, d, 0, d])
        if cand[0] >= 0 and cand[1] >= 0 and cand[2] <= w and cand[3] <= h:
            return cand
    return None


def generate_scene(cfg: SceneConfig, rng: np.random.Generator) -> Scene:
    """One scene drawn with ``rng`` (see the module docstring for the rules)."""
    h, w = cfg.height, cfg.width
    image = rng.standard_normal((h, w, 3))                      # 0.5 + noise · N(0, 1), in place
    image *= cfg.noise
    image += 0.5
    z = int(rng.integers(2))
    looks = _looks(cfg.num_families)
    p_eq = (1 + cfg.dependency) / 2

    # The key: a square (or a k-wide, key_height-high band) in a random corner (of key_corners; all four
    # draw as before the field existed), inset by one pixel;
    # objects keep out of its corner.
    k = cfg.key_size
    kh = cfg.key_height or k
    corners = cfg.key_corners
    corner = int(rng.integers(4)) if len(corners) == 4 else corners[int(rng.integers(len(corners)))]
    kx = 1 if corner in (0, 2) else w - 1 - k
    ky = 1 if corner in (0, 1) else h - 1 - kh
    key_box = (kx, ky, kx + k, ky + kh)
    if k > 0:
        image[ky:ky + kh, kx:kx + k] = KEY_COLORS[z] if cfg.show_key else HIDDEN_KEY
        g = cfg.key_gap
        keep_out = np.array([kx - g, ky - g, kx + k + g, ky + kh + g], float)
    else:
        keep_out = None
    r = cfg.key_reach                                             # objects drawn inside this box (0: the canvas)
    region = (max(kx - r, 0), max(ky - r, 0), min(kx + k + r, w), min(ky + kh + r, h)) if r else (0, 0, w, h)

    def inside(box: np.ndarray) -> bool:
        return bool(box[0] >= region[0] and box[1] >= region[1] and box[2] <= region[2] and box[3] <= region[3])

    def draw_bit() -> int:
        return z if rng.random() < cfg.dependency else int(rng.integers(2))

    n_target = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
    boxes: list[np.ndarray] = []
    labels: list[int] = []
    pair: list[int] = []
    occluder: list[bool] = []
    free_boxes: list[int] = []                                  # indices placed as free objects

    def fits(box: np.ndarray, ignore: int = -1) -> bool:
        if keep_out is not None and _overlaps(box, keep_out):
            return False
        others = np.array([boxes[i] for i in range(len(boxes)) if i != ignore], float).reshape(-1, 4)
        return bool((_iou(box, others) <= cfg.max_free_overlap).all()) if len(others) else True

    while len(boxes) < n_target:
        placed = False
        want_pair = len(boxes) + 2 <= n_target and rng.random() < cfg.pair_prob
        for _ in range(cfg.max_tries):
            bw, bh = (int(v) for v in rng.integers(cfg.min_size, cfg.max_size + 1, size=2))
            if r:
                if region[2] - region[0] < bw or region[3] - region[1] < bh:
                    continue
                x1 = int(rng.integers(region[0], region[2] - bw + 1))
                y1 = int(rng.integers(region[1], region[3] - bh + 1))
            else:                                               # the draws as before key_reach existed
                x1, y1 = int(rng.integers(0, w - bw + 1)), int(rng.integers(0, h - bh + 1))
            box = np.array([x1, y1, x1 + bw, y1 + bh], float)
            if not fits(box):
                continue
            if want_pair:
                frac = (float(rng.choice(cfg.overlap_levels)) if cfg.overlap_levels
                        else float(rng.uniform(*cfg.overlap_range)))
                partner = _overlap_box(rng, box, frac, h, w)
                if partner is None or not inside(partner):
                    continue
                # The partner may overlap only its own pair member.
                if keep_out is not None and _overlaps(partner, keep_out):
                    continue
                others = np.array(boxes, float).reshape(-1, 4)
                if len(others) and (_iou(partner, others) > cfg.max_free_overlap).any():
                    continue
                bit_i = draw_bit()
                bit_j = bit_i if rng.random() < cfg.pair_link else draw_bit()
                fam_i, fam_j = int(rng.integers(cfg.num_families)), int(rng.integers(cfg.num_families))
                i = len(boxes)
                boxes += [box, partner]
                labels += [2 * fam_i + bit_i, 2 * fam_j + bit_j]
                pair += [i + 1, i]
                occluder += [False, True]
            else:
                boxes.append(box)
                labels.append(2 * int(rng.integers(cfg.num_families)) + draw_bit())
                pair.append(-1)
                occluder.append(False)
                free_boxes.append(len(boxes) - 1)
            placed = True
            break
        if not placed:
            break                                               # the canvas is full: fewer objects

    # Paint in order (a pair's occluder comes after the object it covers) and measure occlusion.
    owner = -np.ones((h, w), int)
    for i, (box, label) in enumerate(zip(boxes, labels)):
        color, pattern = looks[label // 2]
        x1, y1, x2, y2 = (int(v) for v in box)
        _paint(image, (x1, y1, x2, y2), color, pattern)
        owner[y1:y2, x1:x2] = i
    occlusion = np.zeros(len(boxes))
    for i, box in enumerate(boxes):
        x1, y1, x2, y2 = (int(v) for v in box)
        occlusion[i] = float((owner[y1:y2, x1:x2] != i).mean())

    img = torch.from_numpy(np.clip(image, 0, 1, out=image).astype(np.float32)).permute(2, 0, 1).contiguous()
    if cfg.z_plane:
        img = torch.cat((img, torch.full((1, h, w), float(z))))          # (4, H, W)
    return Scene(image=img,
                 boxes=torch.tensor(np.array(boxes, float).reshape(-1, 4), dtype=torch.float32),
                 labels=torch.tensor(labels, dtype=torch.long), z=z, key_box=key_box,
                 occlusion=occlusion, pair=np.array(pair, int), occluder=np.array(occluder, bool),
                 meta={"p_bit_equals_z": p_eq, "n_requested": n_target})


def generate_scenes(cfg: SceneConfig, n: int, seed: int | Sequence[int]) -> list[Scene]:
    """``n`` scenes from ``seed`` (an int or a sequence of ints, e.g. (seed, step)); same seed, same scenes."""
    if n < 0:
        raise ValueError(f"n={n} is not accepted; it must be >= 0")
    rng = np.random.default_rng(list(seed) if isinstance(seed, (list, tuple)) else seed)
    return [generate_scene(cfg, rng) for _ in range(n)]


def scene_batch(cfg: SceneConfig, batch: int, seed: int | Sequence[int]
                ) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]], list[Scene]]:
    """Images (B, 3, H, W), detector targets and the scenes themselves, from ``seed``."""
    scenes = generate_scenes(cfg, batch, seed)
    images, targets = batch_of(scenes, cfg)
    return images, targets, scenes


def batch_of(scenes: Sequence[Scene], cfg: SceneConfig) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Images (B, C, H, W) stacked once and detector targets of ``scenes`` (drawn with ``cfg``, or with
    configs of its channels and canvas: an empty list gives a (0, C, H, W) batch of ``cfg``'s size)."""
    images = torch.stack([s.image for s in scenes]) if scenes else torch.zeros(0, cfg.channels, cfg.height, cfg.width)
    return images, [s.target() for s in scenes]
