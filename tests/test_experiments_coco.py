"""The user's own data: a COCO-format set as the experiments' data source, its declared held-out
split, and the three variants trained and compared end to end (AP per output mode, held-out class
NLL per head, differences only) on a synthetic export and on a hand-built foreign set."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from foreign_coco import write_foreign_coco
from hsgprof.cli import main
from hsgprof.errors import HsgprofError
from hsgprof.experiments import run_experiment
from hsgprof.experiments.coco_eval import NO_FLOOR, coco_eval_sets, with_data
from hsgprof.experiments.config import Budget, get_preset
from hsgprof.experiments.datasource import CocoSource, parse_data, parse_size
from hsgprof.experiments.metrics import coco_ap
from hsgprof.results import read_results

HEADS = {("hybrid", "dense"), ("hybrid", "sparse"), ("hybrid", "mix"), ("grid-only", "dense"), ("sparse-only", "sparse")}
MODES = {("hybrid", "nms_free"), ("hybrid", "nms"), ("hybrid", "fused"), ("grid-only", "nms"), ("sparse-only", "nms_free")}


def tiny_config():
    """The smoke preset cut to seconds (3 variants, one seed, 6 steps)."""
    return get_preset("smoke").replace(
        name="tiny", budget=Budget(steps=6, batch_size=4, warmup_steps=2, grad_every=3, eval_every=6, checkpoint_every=6),
        n_convergence=2, bootstrap=20, capacity=(), controls=())


@pytest.fixture()
def scenes_export(tmp_path):
    """A COCO export of synthetic scenes, written by the CLI as a user would."""
    assert main(["experiments", "data", "--out", str(tmp_path / "scenes"), "-n", "10", "--seed", "3",
                 "--preset", "smoke"]) == 0                      # 64×64 scenes
    return tmp_path / "scenes" / "annotations.json", tmp_path / "scenes" / "images"


def test_split_is_declared_by_id_hash(tmp_path, scenes_export):
    ann, images = scenes_export
    src = CocoSource.declare(ann, images, holdout=0.3, split_seed=5)
    ids = list(range(1, 11))
    train, held = src.split(ids)
    rank = sorted(ids, key=lambda i: hashlib.sha256(f"5:{i}".encode()).hexdigest())
    assert held == rank[:3] and sorted(train + held) == ids      # round(0.3 · 10) smallest hashes held out
    assert src.split(ids[::-1])[1] == held                       # the file's order does not matter
    assert CocoSource.declare(ann, images, holdout=0.3, split_seed=6).split(ids)[1] != held
    assert len(CocoSource.declare(ann, images, holdout=0.01).split(ids)[1]) == 1       # at least one held out
    assert len(CocoSource.declare(ann, images, holdout=0.99).split(ids)[0]) == 1       # at least one trains
    # Declared up front: the split, the size and the file's content are in the key; the synthetic key is not moved.
    quick = get_preset("quick")
    assert "data" not in quick.to_dict() or quick.to_dict()["data"] is None
    committed = read_results_if_any("reports/results/experiments-quick/experiments_summary.json")
    if committed is not None:
        assert committed["meta"]["config_key"] == quick.key()
    a = with_data(quick, src).key()
    assert a != quick.key() and a != with_data(quick, CocoSource.declare(ann, images, holdout=0.4)).key()
    coco = json.loads(ann.read_text())
    coco["annotations"][0]["category_id"] = coco["categories"][-1]["id"]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(coco))
    changed = CocoSource.declare(edited, images, holdout=0.3, split_seed=5)
    assert changed.annotations_sha256 != src.annotations_sha256
    assert with_data(quick, changed).key() != a


def read_results_if_any(path):
    from pathlib import Path

    p = Path(__file__).resolve().parent.parent / path
    return read_results(p) if p.exists() else None


def test_data_switches_refuse_bad_values(tmp_path, scenes_export, capsys):
    ann, images = scenes_export
    assert parse_data("synthetic") is None and parse_data("coco:a.json:imgs") == ("a.json", "imgs")
    assert parse_size("64") == (64, 64) and parse_size("96x128") == (96, 128)
    for bad in ("50", "64x", "0", "abc"):
        with pytest.raises(HsgprofError, match="multiples of 32"):
            parse_size(bad)
    cache, out = tmp_path / "cache", tmp_path / "out"
    for argv, msg in ((["--data", "voc:x"], "--data 'voc:x' is not accepted"),
                      (["--data", f"coco:{tmp_path}/missing.json:{images}"], "does not exist"),
                      (["--data", f"coco:{ann}:{tmp_path}/nowhere"], "does not exist"),
                      (["--data", f"coco:{ann}:{images}", "--holdout", "1.5"], "--holdout 1.5 is not accepted"),
                      (["--data", f"coco:{ann}:{images}", "--image-size", "50"], "--image-size '50' is not accepted"),
                      (["--holdout", "0.2"], "--holdout only apply to --data coco")):
        assert main(["experiments", "run", "--preset", "smoke", "--cache", str(cache), "--out", str(out), *argv]) == 2
        assert msg in capsys.readouterr().err, argv
    assert not cache.exists() and not out.exists()


def test_coco_export_of_synthetic_scenes_trains_and_compares_end_to_end(tmp_path, scenes_export, monkeypatch, capsys):
    ann, images = scenes_export
    monkeypatch.setattr("hsgprof.experiments.get_preset", lambda name: tiny_config())
    assert main(["experiments", "run", "--preset", "smoke", "--data", f"coco:{ann}:{images}", "--holdout", "0.4",
                 "--workers", "1", "--quiet", "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "cache")]) == 0
    printed = capsys.readouterr().out
    assert "theorem.entropy" in printed and "COCO AP on the held-out images" in printed
    out = tmp_path / "out"
    nll = read_results(out / "experiments_coco_nll.json", "experiments.coco_nll")
    cfg = nll["provenance"]["config"]
    assert cfg["data"]["num_classes"] == 4 and cfg["data"]["holdout"] == 0.4 and cfg["capacity"] == []
    assert nll["meta"]["data"]["holdout_images"] == 4 and nll["meta"]["data"]["train_images"] == 6
    assert nll["meta"]["note"] == NO_FLOOR
    rows = nll["rows"]
    assert {(r["variant"], r["head"]) for r in rows} == HEADS
    scored = rows[0]["n_objects"]
    assert scored > 0 and all(r["n_objects"] == scored and r["nll_class"] > 0 and r["floor"] == "unknown" for r in rows)
    diff = read_results(out / "experiments_coco_nll_difference.json")["rows"]
    assert {(r["variant"], r["head"]) for r in diff} == HEADS - {("grid-only", "dense")}
    by = {(r["variant"], r["head"]): r["nll_class"] for r in rows}
    for r in diff:                                               # Δ = NLL_grid − NLL_other on the same objects
        assert r["value"] == pytest.approx(by[("grid-only", "dense")] - by[(r["variant"], r["head"])], abs=1e-9)
        assert r["boot_low"] <= r["value"] <= r["boot_high"] and "no known H(Y|X)" in r["note"]
    ap = read_results(out / "experiments_coco_ap.json")["rows"]
    assert {(r["variant"], r["mode"]) for r in ap} == MODES and all(0 <= r["AP"] <= 1 for r in ap)
    summary = read_results(out / "experiments_coco_summary.json", "experiments.coco_summary")["rows"]
    primary = [r for r in summary if not r["verdict"].startswith("(secondary)")]
    assert len(primary) == 1 and primary[0]["verdict"] == "inconclusive"       # one seed: no interval
    assert "no known H(Y|X)" in primary[0]["evidence"]
    assert main(["experiments", "summary", str(out)]) == 0 and "entropy_difference_class" in capsys.readouterr().out
    # The held-out ground truth is the export's own (64×64 images: no resize), so it scores AP 1 against itself.
    sets = coco_eval_sets(with_data(tiny_config(), CocoSource.declare(ann, images, holdout=0.4)))
    gt = sets["holdout"].gt
    as_dets = [{"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
               for a in gt["annotations"]]
    assert coco_ap(gt, as_dets)["AP"] == pytest.approx(1.0)
    source = json.loads(ann.read_text())
    for a in gt["annotations"]:
        assert a["bbox"] == next(b["bbox"] for b in source["annotations"] if b["id"] == a["id"])


def test_foreign_coco_set_trains_and_compares_end_to_end(tmp_path, one_torch_thread):
    """Sparse ids, crowd, a zero-width box, grey/RGBA images, an empty image, 32×48 resized to 64×64."""
    ann, images, coco = write_foreign_coco(tmp_path, textured=True)
    with pytest.warns(UserWarning, match="crowd"):               # announced once, when the source is declared
        src = CocoSource.declare(ann, images, holdout=0.34, split_seed=0, size=(64, 64))
    assert src.num_classes == 3 and src.split([7, 9, 11]) == ([9, 11], [7])
    cfg = with_data(tiny_config(), src)
    sets = coco_eval_sets(cfg)
    gt = sets["holdout"].gt
    assert [im["id"] for im in gt["images"]] == [7]
    crowd = [a for a in gt["annotations"] if a["iscrowd"]]      # the crowd box stays in the ground truth, scaled
    assert len(crowd) == 1 and crowd[0]["bbox"] == pytest.approx([0.0, 0.0, 20 * 64 / 48, 20 * 64 / 32])
    kept = [a for a in gt["annotations"] if not a["iscrowd"]]
    assert len(kept) == 1 and kept[0]["category_id"] == 3                          # id 90 -> label 2 -> 3
    assert torch.equal(sets["holdout"].scenes[0].labels, torch.tensor([2]))
    paths = run_experiment(cfg, tmp_path / "out", tmp_path / "cache", progress=False, workers=1)
    nll = read_results(paths["nll"])["rows"]
    assert {(r["variant"], r["head"]) for r in nll} == HEADS
    assert all(r["n_objects"] == 1 and r["n_images"] == 1 for r in nll)            # image 7's one non-crowd box
    meta = read_results(paths["nll"])["meta"]["data"]
    assert meta["skipped_annotations"] == {"crowd": [101], "degenerate": [102]}
    assert [c["category_id"] for c in meta["categories"]] == [1, 3, 90]
    ap = read_results(paths["ap"])["rows"]
    assert {(r["variant"], r["mode"]) for r in ap} == MODES and all(r["n_gt"] == 1 for r in ap)
    diff = read_results(paths["nll_difference"])["rows"]
    assert len(diff) == 4 and all(r["n_objects"] == 1 for r in diff)
