"""Shared fixtures; ``gpu`` tests skip with a reason when CUDA is absent."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

ANALYSES = Path(__file__).resolve().parent.parent / "analyses"


def load_analysis(name: str) -> ModuleType:
    """A script of analyses/ as a module (it is not a package; its siblings import each other by name)."""
    sys.path.insert(0, str(ANALYSES))
    try:
        spec = importlib.util.spec_from_file_location(name, ANALYSES / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ANALYSES))
    return module


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA: no CUDA device on this machine (run on a GPU host)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's real CPU compute: the CPU is shared, and oversubscribed threads crawl."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
