"""CPU validation: the estimate's saved activations vs the tensors a real CPU step saves (within 5%).

The truth (``saved_tensor_truth``) runs the target's own training loss on real CPU tensors and
counts, with saved-tensor hooks, every tensor autograd keeps for backward, once per storage,
parameters and buffers left out. The estimate runs on fake CPU tensors and never computes.
"""

from __future__ import annotations

import pytest
import torch

from hsgprof.memory import estimate_memory
from hsgprof.memory.truth import saved_tensor_truth


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread):
    """Real CPU compute here runs with one torch thread (conftest)."""


TOLERANCE = 0.05
MiB = 1 << 20

CASES = [
    ("hsgdet-tiny", (2, 3, 128, 160)),
    ("hsgdet-l", (1, 3, 192, 320)),
    ("torchvision.models:resnet18", (2, 3, 224, 224)),
    ("torchvision.models:mobilenet_v3_small", (2, 3, 224, 224)),
]


def _compare(target, shape):
    truth = saved_tensor_truth(target, shape)
    est = estimate_memory(target, shape, mode="train", precision="fp32", device="cpu")
    return truth, est


@pytest.mark.parametrize("target, shape", CASES, ids=[c[0] for c in CASES])
def test_saved_activations_match_real_cpu_step(target, shape):
    truth, est = _compare(target, shape)
    assert truth.saved_bytes > 0
    assert est.saved_bytes == pytest.approx(truth.saved_bytes, rel=TOLERANCE), (
        f"{target}: estimate {est.saved_bytes / MiB:.2f} MiB vs truth {truth.saved_bytes / MiB:.2f} MiB")


def test_per_component_saved_matches_for_hsgdet():
    truth, est = _compare("hsgdet-tiny", (2, 3, 128, 160))
    est_by = dict(zip(est.per_component.component, est.per_component.saved_bytes))
    for comp, b in truth.per_component.items():
        if b > 0.02 * truth.saved_bytes:
            assert est_by.get(comp, 0) == pytest.approx(b, rel=TOLERANCE), comp


@pytest.mark.slow
@pytest.mark.parametrize("target, shape", [("torchvision.models:vit_b_16", (1, 3, 224, 224)),
                                           ("hsgdet-l-grid", (1, 3, 256, 448)),
                                           ("torchvision.models:resnet50", (2, 3, 224, 224))])
def test_saved_activations_more_models(target, shape):
    truth, est = _compare(target, shape)
    assert est.saved_bytes == pytest.approx(truth.saved_bytes, rel=TOLERANCE)
