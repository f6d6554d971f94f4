"""Shared fixtures; ``gpu`` tests skip with a reason when CUDA is absent."""

from __future__ import annotations

import pytest
import torch


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: no CUDA device on this machine (run on a GPU host)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
