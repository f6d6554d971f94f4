"""Optional peer counters (the ``peers`` extra) beside the referee, inside the guard."""

import pytest
import torch
from torchvision.models import resnet18

from hsgprof.counting import count
from hsgprof.counting.backends import PEERS, parse_backends

pytest.importorskip("ptflops", reason="the peers extra is not installed: pip install -e '.[peers]'")


def test_peers_is_a_backend_list_name():
    assert parse_backends("peers") == ("analytic", *PEERS)


def test_every_peer_counts_a_resnet_near_the_referee_and_leaves_it_unchanged():
    with torch.device("meta"):
        model = resnet18().eval()
    before = {n: (tuple(p.shape), p.requires_grad) for n, p in model.named_parameters()}
    hooks = sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())
    res = count(model, (1, 3, 64, 64), backends="peers")
    for name in PEERS:
        b = res.backends[name]
        assert b.error is None, (name, b.error)
        # conv + linear work dominates a ResNet: every peer is within 2% of the referee's GEMM FLOPs
        assert b.flops == pytest.approx(res.flops, rel=0.02), name
    # ptflops' aten engine prices matrix products and convolutions only: the referee's GEMM work, plus the
    # bias additions of addmm (the classifier's 1000 outputs: 1000 MACs)
    assert res.backends["ptflops-aten"].flops - res.flops == 2 * 1000
    assert any("batch_norm" in s["what"] and s["missed_flops"] > 0 for s in res.backends["ptflops-aten"].skipped)
    assert {n: (tuple(p.shape), p.requires_grad) for n, p in model.named_parameters()} == before
    assert sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules()) == hooks
    assert res.backends["torchprofile"].device == "cpu"              # a trace runs real tensors
