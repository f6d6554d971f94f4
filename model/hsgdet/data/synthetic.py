"""Seeded synthetic scenes: coloured rectangles on a noisy background, boxes known exactly.

A minimal generator for smoke tests and overfitting checks; the theory experiments build
richer scenes (density, occlusion, global dependencies) on top of it.
"""

from __future__ import annotations

import torch


def class_colors(num_classes: int) -> torch.Tensor:
    """A distinct RGB colour in (0.15, 0.95) per class: (C, 3)."""
    hues = torch.arange(num_classes, dtype=torch.float32) / num_classes
    k = (torch.tensor([5.0, 3.0, 1.0])[None] + hues[:, None] * 6) % 6
    rgb = 1 - (torch.minimum(k, 4 - k).clamp(0, 1))
    return 0.15 + 0.8 * rgb


def synthetic_batch(batch: int, height: int, width: int, num_classes: int, max_objects: int = 4,
                    min_size: int = 8, seed: int = 0) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """Images (B, 3, H, W) in [0, 1] and targets (xyxy pixel boxes, labels) with 1..max_objects each."""
    if min_size * 2 > min(height, width):
        raise ValueError(f"min_size={min_size} is too large for a {height}x{width} image")
    g = torch.Generator().manual_seed(seed)
    images = 0.5 + 0.05 * torch.randn(batch, 3, height, width, generator=g)
    colors = class_colors(num_classes)
    targets = []
    for b in range(batch):
        n = int(torch.randint(1, max_objects + 1, (1,), generator=g))
        boxes, labels = [], []
        for _ in range(n):
            bw = int(torch.randint(min_size, width // 2 + 1, (1,), generator=g))
            bh = int(torch.randint(min_size, height // 2 + 1, (1,), generator=g))
            x1 = int(torch.randint(0, width - bw + 1, (1,), generator=g))
            y1 = int(torch.randint(0, height - bh + 1, (1,), generator=g))
            c = int(torch.randint(0, num_classes, (1,), generator=g))
            images[b, :, y1:y1 + bh, x1:x1 + bw] = colors[c][:, None, None]
            boxes.append([x1, y1, x1 + bw, y1 + bh])
            labels.append(c)
        targets.append({"boxes": torch.tensor(boxes, dtype=torch.float32),
                        "labels": torch.tensor(labels, dtype=torch.long)})
    return images.clamp(0, 1), targets
