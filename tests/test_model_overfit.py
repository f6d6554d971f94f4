"""A tiny HSG-Det overfits a handful of synthetic images on CPU (the loss falls clearly)."""

import torch

from hsgdet import build_model
from hsgdet.data.synthetic import synthetic_batch


def test_tiny_hybrid_overfits():
    torch.manual_seed(0)
    model = build_model("hsgdet-tiny").train()
    images, targets = synthetic_batch(4, 64, 64, 4, max_objects=3, seed=0)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3)
    history = []
    for _ in range(60):
        loss = model(images, targets)["loss"]
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        history.append(loss.item())
    first, last = sum(history[:3]) / 3, sum(history[-5:]) / 5
    assert last < 0.4 * first, f"loss went {first:.2f} -> {last:.2f}"
