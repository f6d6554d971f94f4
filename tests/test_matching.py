"""The one-to-one Hungarian matcher against brute force; the task-aligned assigner by hand."""

import itertools

import pytest
import torch

from hsgdet.matching import HungarianMatcher, TaskAlignedAssigner


@pytest.mark.parametrize("seed", range(8))
def test_hungarian_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    n, m, c = 5, 3 + seed % 3, 4                        # 5 queries, 3..5 objects
    logits = torch.randn(1, n, c, generator=g)
    boxes = torch.rand(1, n, 2, generator=g) * 0.5 + 0.25
    boxes = torch.cat((boxes, torch.rand(1, n, 2, generator=g) * 0.3 + 0.05), -1)   # cxcywh
    target = {"labels": torch.randint(0, c, (m,), generator=g),
              "boxes_cxcywh": torch.cat((torch.rand(m, 2, generator=g) * 0.5 + 0.25,
                                         torch.rand(m, 2, generator=g) * 0.3 + 0.05), -1)}
    matcher = HungarianMatcher()
    (rows, cols), = matcher(logits, boxes, [target])
    cost = matcher.cost_matrix(logits[0], boxes[0], target["labels"], target["boxes_cxcywh"])
    got = cost[rows, cols].sum().item()
    best = min(sum(cost[q, j].item() for j, q in enumerate(perm))
               for perm in itertools.permutations(range(n), m))
    assert len(set(rows.tolist())) == m and sorted(cols.tolist()) == list(range(m))
    assert got == pytest.approx(best, abs=1e-5)


def _grid(n=8, stride=8):
    ys, xs = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
    return (torch.stack((xs, ys), -1).reshape(-1, 2).float() + 0.5) * stride


def test_tal_picks_topk_inside_the_box_only():
    points = _grid()                                     # 64 anchors, centres 4, 12, ..., 60
    gt = torch.tensor([[0.0, 0.0, 24.0, 24.0]])           # holds the 3×3 anchors at 4, 12, 20
    pred = torch.cat((points - 8, points + 8), -1)        # every anchor predicts a 16×16 box
    scores = torch.full((64, 2), 0.5)
    out = TaskAlignedAssigner(topk=4)(scores, pred, points, torch.tensor([1]), gt)
    inside = (points[:, 0] < 24) & (points[:, 1] < 24)
    assert out.fg.sum() == 4 and (out.fg <= inside).all()
    # the best-aligned anchor is the one whose box matches the object best (centre 12,12)
    assert out.fg[1 * 8 + 1]
    assert (out.scores[out.fg, 1] > 0).all() and (out.scores[:, 0] == 0).all()
    assert out.scores[out.fg, 1].max() == pytest.approx(out.scores.max())


def test_tal_resolves_shared_anchors_by_iou():
    points = _grid()
    gt = torch.tensor([[0.0, 0.0, 32.0, 32.0], [8.0, 8.0, 24.0, 24.0]])   # nested objects
    pred = torch.cat((points - 8, points + 8), -1)
    scores = torch.full((64, 1), 0.5)
    out = TaskAlignedAssigner(topk=16)(scores, pred, points, torch.tensor([0, 0]), gt)
    # anchors inside both objects overlap the small one more (IoU 0.39 vs 0.25): they go to object 1
    for idx in (1 * 8 + 1, 2 * 8 + 2):
        assert out.fg[idx] and out.gt_index[idx] == 1
    assert torch.equal(out.boxes[out.fg], gt[out.gt_index[out.fg]])


def test_tal_without_objects_is_all_background():
    points = _grid()
    out = TaskAlignedAssigner()(torch.rand(64, 3), torch.rand(64, 4), points,
                                torch.zeros(0, dtype=torch.long), torch.zeros(0, 4))
    assert not out.fg.any() and out.scores.sum() == 0


def test_batched_assignments_equal_per_image_ones():
    """Padding a batch to its largest object count changes nothing: each image's task-aligned
    assignment and Hungarian matching equal those of the image alone (object counts 0 to 4)."""
    from hsgdet.matching import Padded

    g = torch.Generator().manual_seed(0)
    points = _grid()
    counts = [3, 0, 1, 4]
    targets = []
    for n in counts:
        xy = torch.rand(n, 2, generator=g) * 40
        wh = torch.rand(n, 2, generator=g) * 20 + 6
        targets.append({"labels": torch.randint(0, 3, (n,), generator=g), "boxes": torch.cat((xy, xy + wh), 1)})
    for t in targets:
        t["boxes_cxcywh"] = torch.cat(((t["boxes"][:, :2] + t["boxes"][:, 2:]) / 2,
                                       t["boxes"][:, 2:] - t["boxes"][:, :2]), 1) / 64
    scores = torch.rand(len(counts), 64, 3, generator=g)
    pred = torch.cat((points - 8, points + 8), -1)[None] + torch.rand(len(counts), 64, 4, generator=g) * 4
    tal = TaskAlignedAssigner(topk=5)
    both = tal.batched(scores, pred, points, Padded.of(targets))
    for b, t in enumerate(targets):
        one = tal(scores[b], pred[b], points, t["labels"], t["boxes"])
        assert torch.equal(both.fg[b], one.fg) and torch.allclose(both.scores[b], one.scores)
        assert torch.equal(both.gt_index[b][one.fg], one.gt_index[one.fg])
    logits = torch.randn(len(counts), 6, 3, generator=g)
    qboxes = torch.cat((torch.rand(len(counts), 6, 2, generator=g) * 0.5 + 0.25,
                        torch.rand(len(counts), 6, 2, generator=g) * 0.3 + 0.05), -1)
    matcher = HungarianMatcher()
    batched = matcher(logits, qboxes, targets)
    for b, t in enumerate(targets):
        (rows, cols), = matcher(logits[b:b + 1], qboxes[b:b + 1], [t])
        assert torch.equal(batched[b][0], rows) and torch.equal(batched[b][1], cols)
        if len(t["labels"]):
            cost = matcher.cost_matrix(logits[b], qboxes[b], t["labels"], t["boxes_cxcywh"])
            best = min(sum(cost[q, j].item() for j, q in enumerate(perm))
                       for perm in itertools.permutations(range(6), len(t["labels"])))
            assert cost[rows, cols].sum().item() == pytest.approx(best, abs=1e-5)


def test_a_collapsed_prediction_beside_a_padded_target_slot_stays_finite():
    """A predicted box of zero width (DFL saturated at bin 0) against a padded target slot (a zero
    box) has union 0: the assignment must stay finite (0/0 there once turned a far-key pilot's
    whole dense loss into NaN at step 367), and equal to the image's assignment alone."""
    from hsgdet.matching import Padded, batched_giou, batched_iou

    zero, flat = torch.zeros(1, 1, 4), torch.tensor([[[5.0, 5.0, 5.0, 9.0]]])
    assert batched_iou(zero, flat)[0].item() == 0.0 and torch.isfinite(batched_giou(zero, zero)).all()
    points = _grid()
    pred = torch.cat((points - 8, points + 8), -1)[None].repeat(2, 1, 1)
    pred[:, 0] = torch.tensor([4.0, 4.0, 4.0, 12.0])                       # one collapsed box, in both images
    targets = [{"labels": torch.tensor([0, 1]), "boxes": torch.tensor([[0.0, 0, 20, 20], [30.0, 30, 50, 50]])},
               {"labels": torch.tensor([2]), "boxes": torch.tensor([[10.0, 10, 30, 30]])}]   # padded to 2
    scores = torch.rand(2, 64, 3, generator=torch.Generator().manual_seed(0))
    tal = TaskAlignedAssigner(topk=5)
    both = tal.batched(scores, pred, points, Padded.of(targets))
    assert torch.isfinite(both.scores).all() and both.fg.any()
    one = tal(scores[1], pred[1], points, targets[1]["labels"], targets[1]["boxes"])
    assert torch.equal(both.fg[1], one.fg) and torch.allclose(both.scores[1], one.scores)
