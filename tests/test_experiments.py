"""Theory experiments: generator statistics, COCO I/O and AP, the I(Y;Q|X)=0 toy, NLL, trainer, runner, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from hsgdet.data.coco import CocoDataset, read_coco, save_scenes, scenes_to_coco, to_uint8, write_coco
from hsgdet.data.scenes import KEY_COLORS, SceneConfig, generate_scenes, known_quantities, pair_joint
from hsgprof.cli import main
from hsgprof.errors import HsgprofError
from hsgprof.experiments import entropy as E
from hsgprof.experiments.config import Budget, get_preset
from hsgprof.experiments.information import plugin_cmi, probe_information, toy_deterministic_queries
from hsgprof.experiments.metrics import ap_by_density, ap_by_occlusion, coco_ap

def smoke_config():
    """The smoke preset (what the notebooks' tests read)."""
    return get_preset("smoke")


@pytest.fixture(scope="session")
def smoke_results(tmp_path_factory):
    from hsgprof.experiments import run_experiment

    base = tmp_path_factory.getbasetemp()
    out = base / "experiments-smoke"
    paths = run_experiment(smoke_config(), out, base / "experiments-cache", progress=False)
    return out, paths, base / "experiments-cache"


# ----------------------------------------------------------------------------- generator
def test_generator_statistics_match_parameters():
    cfg = SceneConfig(height=96, width=96, min_objects=2, max_objects=8, dependency=0.6, pair_prob=0.4,
                      pair_link=0.5, overlap_levels=(0.2, 0.6), min_size=8, max_size=14)
    scenes = generate_scenes(cfg, 600, seed=3)
    counts = np.array([len(s.labels) for s in scenes])
    assert counts.min() >= cfg.min_objects and counts.max() <= cfg.max_objects
    assert abs(counts.mean() - (cfg.min_objects + cfg.max_objects) / 2) < 0.3
    bits = np.concatenate([s.bits.numpy() for s in scenes])
    z = np.concatenate([np.full(len(s.labels), s.z) for s in scenes])
    p = (1 + cfg.dependency) / 2
    agree = (bits == z).mean()
    assert abs(agree - p) < 4 * math.sqrt(p * (1 - p) / len(bits)), (agree, p)
    # Families are balanced and the key shows z.
    fams = np.concatenate([s.families.numpy() for s in scenes])
    assert abs(fams.mean() - 0.5) < 0.05
    for s in scenes[:50]:
        x1, y1, x2, y2 = s.key_box
        assert torch.allclose(s.image[:, y1:y2, x1:x2], torch.full((3, y2 - y1, x2 - x1), KEY_COLORS[s.z]))
        assert (s.boxes[:, 0] >= 0).all() and (s.boxes[:, 2] <= cfg.width).all()
    # Overlaps: occluded members of a pair are covered by exactly a declared level (pixel rounding).
    occluded = np.concatenate([s.occlusion[(s.pair >= 0) & ~s.occluder] for s in scenes])
    assert len(occluded) > 100
    nearest = np.min(np.abs(occluded[:, None] - np.array(cfg.overlap_levels)[None]), 1)
    assert (nearest < 0.1).mean() > 0.95
    # Pair link: P(bit_j == bit_i) = r + (1 − r)(p² + (1 − p)²).
    same = []
    for s in scenes:
        for i in np.flatnonzero((s.pair >= 0) & ~s.occluder):
            same.append(int(s.bits[i] == s.bits[s.pair[i]]))
    want = cfg.pair_link + (1 - cfg.pair_link) * (p ** 2 + (1 - p) ** 2)
    assert abs(np.mean(same) - want) < 4 * math.sqrt(want * (1 - want) / len(same))
    # Free objects never overlap anything but their declared partner.
    for s in scenes[:100]:
        free = np.flatnonzero(s.pair < 0)
        assert (s.occlusion[free] == 0).all()


def test_generator_is_seeded_and_dense_scenes_exceed_200_objects():
    cfg = SceneConfig(height=256, width=256, min_objects=201, max_objects=240, min_size=8, max_size=12, pair_prob=0.1)
    a, b = generate_scenes(cfg, 2, 7), generate_scenes(cfg, 2, 7)
    assert torch.equal(a[0].image, b[0].image) and torch.equal(a[1].labels, b[1].labels)
    assert all(len(s.labels) > 200 for s in a)


def test_known_quantities_limits():
    assert known_quantities(SceneConfig(dependency=1.0))["h_bit_given_x"] == 0.0
    k0 = known_quantities(SceneConfig(dependency=0.0))
    assert k0["h_bit_given_x"] == pytest.approx(math.log(2)) and k0["info_global"] == pytest.approx(0.0)
    assert known_quantities(SceneConfig(key_size=0, dependency=0.9))["info_global"] == pytest.approx(0.0)
    assert known_quantities(SceneConfig(pair_link=0.0))["i_pair_given_x"] == pytest.approx(0.0, abs=1e-12)
    assert known_quantities(SceneConfig(pair_link=0.8, dependency=0.5))["i_pair_given_x"] > 0.05
    assert pair_joint(0.7, 0.3).sum() == pytest.approx(1.0)


def test_generator_rejects_bad_parameters():
    with pytest.raises(ValueError, match="dependency"):
        SceneConfig(dependency=1.5)
    with pytest.raises(ValueError, match="overlap_range"):
        SceneConfig(overlap_range=(0.5, 0.2))
    with pytest.raises(ValueError, match="too small"):
        SceneConfig(height=16)


# ----------------------------------------------------------------------------- COCO
def test_coco_round_trip(tmp_path):
    cfg = SceneConfig(pair_prob=0.5)
    scenes = generate_scenes(cfg, 6, seed=1)
    path = save_scenes(tmp_path, scenes, cfg.num_classes)
    coco = read_coco(path)
    assert len(coco["images"]) == 6 and len(coco["annotations"]) == sum(len(s.labels) for s in scenes)
    ds = CocoDataset(path, tmp_path / "images")
    assert len(ds) == 6 and ds.num_classes == cfg.num_classes
    for i, s in enumerate(scenes):
        image, target = ds[i]
        assert torch.equal(to_uint8(image), to_uint8(s.image))
        assert torch.equal(target["boxes"], s.boxes) and torch.equal(target["labels"], s.labels)
    occ = [a["occlusion"] for a in coco["annotations"]]
    assert occ == pytest.approx(np.concatenate([s.occlusion for s in scenes]).tolist())
    images, targets = CocoDataset(path, tmp_path / "images", size=(32, 32)).batch([0, 1])
    assert images.shape == (2, 3, 32, 32)
    assert torch.allclose(targets[0]["boxes"], scenes[0].boxes / 2)


def test_coco_reader_refuses_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_coco(bad)
    with pytest.raises(ValueError, match="does not exist"):
        read_coco(tmp_path / "missing.json")
    coco = scenes_to_coco(generate_scenes(SceneConfig(), 2, 0), 4)
    coco["annotations"][0]["image_id"] = 999
    with pytest.raises(ValueError, match="not in 'images'"):
        write_coco(tmp_path / "x.json", coco)
    assert not (tmp_path / "x.json").exists()


def _gt_as_results(gt, shift=0.0):
    return [{"image_id": a["image_id"], "category_id": a["category_id"],
             "bbox": [a["bbox"][0] + shift, a["bbox"][1], a["bbox"][2], a["bbox"][3]], "score": 0.9}
            for a in gt["annotations"]]


def test_coco_ap_perfect_empty_and_binned():
    scenes = generate_scenes(SceneConfig(pair_prob=0.6, overlap_levels=(0.0, 0.6)), 12, 2)
    gt = scenes_to_coco(scenes, 4)
    assert coco_ap(gt, _gt_as_results(gt))["AP"] == pytest.approx(1.0)
    assert coco_ap(gt, [])["AP"] == 0.0
    assert coco_ap(gt, _gt_as_results(gt, shift=6.0))["AP"] < 0.9
    rows = ap_by_occlusion(gt, _gt_as_results(gt), ((0.0, 0.05), (0.5, 1.01)))
    assert [r["AP"] for r in rows] == pytest.approx([1.0, 1.0])
    # Detections only for unoccluded objects: the occluded bin has AP 0, the other stays 1.
    keep = {a["id"] for a in gt["annotations"] if a["occlusion"] < 0.05}
    part = [r for r, a in zip(_gt_as_results(gt), gt["annotations"]) if a["id"] in keep]
    rows = ap_by_occlusion(gt, part, ((0.0, 0.05), (0.5, 1.01)))
    assert rows[0]["AP"] == pytest.approx(1.0) and rows[1]["AP"] == pytest.approx(0.0)
    dens = ap_by_density(gt, _gt_as_results(gt), ((1, 4), (4, 100)))
    assert sum(r["n_images"] for r in dens) == 12


# ----------------------------------------------------------------------------- information
def test_cmi_is_zero_when_queries_are_a_function_of_the_image():
    toy = toy_deterministic_queries(n=20000, seed=1)
    assert abs(toy["cmi_q_function_of_x"]) < 1e-12          # I(Y;Q|X) = 0 exactly for Q = f(X)
    assert toy["mi_q"] > 0.1                                # yet Q is informative about Y on its own
    assert toy["cmi_q_with_noise"] > 0.1                    # and a Q with its own noise is not 0
    assert abs(toy["cmi_continuous"]) < 0.1 or math.isnan(toy["cmi_continuous"])


def test_cmi_zero_with_the_project_estimators():
    info = pytest.importorskip("hsgprof.info")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 8, 5000)
    y = (x % 2) ^ (rng.random(5000) < 0.2)
    assert info.cmi(y, x % 4, x, method="plugin").value == pytest.approx(0.0, abs=1e-9)


def test_plugin_cmi_known_values():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 4, 50000)
    assert plugin_cmi(x, x) == pytest.approx(math.log(4), abs=0.01)
    assert plugin_cmi(x, rng.integers(0, 4, 50000)) == pytest.approx(0.0, abs=0.002)


def test_probe_information_sees_what_only_q_carries():
    rng = np.random.default_rng(0)
    n = 3000
    y = rng.integers(0, 2, n)
    g = rng.standard_normal((n, 2))
    q = np.column_stack([2.0 * (y - 0.5) + rng.standard_normal(n) * 0.5, rng.standard_normal(n)])
    train = np.arange(n) < n // 2
    res = probe_information(y, g, q, np.arange(n), train, n_boot=50)
    assert res["cmi_q_given_g"] > 0.3 and res["cmi_q_given_g_low"] > 0.2
    res0 = probe_information(y, q, g, np.arange(n), train, n_boot=50)   # roles swapped: g carries nothing
    assert abs(res0["cmi_q_given_g"]) < 0.05


# ----------------------------------------------------------------------------- NLL
def test_nll_of_the_true_distribution_is_the_entropy_and_bounds_it():
    rng = np.random.default_rng(0)
    p = np.array([0.7, 0.1, 0.15, 0.05])
    labels = rng.choice(4, size=40000, p=p)
    h = -(p * np.log(p)).sum()
    # Sigmoid logits whose normalised scores are p: logit = log(p / (1 − p)) gives σ = p.
    logits = np.tile(np.log(p / (1 - p)), (len(labels), 1))
    nll, _ = E.nll_terms(E.log_probs(logits, 1.0, 1e-6), labels)
    assert nll.mean() == pytest.approx(h, abs=0.02)
    wrong = np.tile(np.log(p[::-1] / (1 - p[::-1])), (len(labels), 1))
    nll_wrong, _ = E.nll_terms(E.log_probs(wrong, 1.0, 1e-6), labels)
    assert nll_wrong.mean() > h + 0.3
    t = E.fit_temperature(logits * 3.0, labels, 1e-6)     # sharpened by 3: the fit undoes it
    assert 2.0 < t < 4.5


def test_bit_nll_is_within_the_family():
    logits = np.array([[5.0, 5.0, -9.0, -9.0]])          # family 0, bits equally likely
    _, b = E.nll_terms(E.log_probs(logits, 1.0, 1e-3), np.array([1]))
    assert b[0] == pytest.approx(math.log(2), abs=1e-3)


# ----------------------------------------------------------------------------- trainer
def test_checkpoint_resume_is_exact(tmp_path, monkeypatch):
    from hsgprof.experiments import train as T

    cfg = get_preset("smoke").replace(budget=Budget(steps=6, batch_size=4, warmup_steps=2, grad_every=2,
                                                    eval_every=100, checkpoint_every=3))
    spec = T.RunSpec("hybrid", 0)
    m1, log1 = T.train_run(cfg, spec, tmp_path / "a", progress=False)
    assert T.load_checkpoint(tmp_path / "a" / "checkpoint.pt")["step"] == 6
    # Interrupt the same run at step 4 (after the step-3 checkpoint), then resume it.
    real = T.scene_batch

    def interrupted(scene, batch, seed):
        if seed[1] == 4:
            raise KeyboardInterrupt
        return real(scene, batch, seed)

    monkeypatch.setattr(T, "scene_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        T.train_run(cfg, spec, tmp_path / "b", progress=False)
    assert T.load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 3
    monkeypatch.setattr(T, "scene_batch", real)
    m2, log2 = T.train_run(cfg, spec, tmp_path / "b", progress=False)
    for (k, a), b in zip(m1.state_dict().items(), m2.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k
    assert [r["loss"] for r in log1["train"]] == pytest.approx([r["loss"] for r in log2["train"]], rel=1e-5)
    assert {"shared_dense", "shared_sparse", "shared_cosine"} <= set(log1["grad"][0])


def test_checkpoint_of_another_config_is_refused(tmp_path):
    from hsgprof.experiments.train import RunSpec, train_run

    cfg = get_preset("smoke").replace(budget=Budget(steps=2, batch_size=2, eval_every=100, checkpoint_every=2))
    train_run(cfg, RunSpec("grid-only", 0), tmp_path, progress=False)
    other = cfg.replace(budget=Budget(steps=3, batch_size=2, eval_every=100, checkpoint_every=2, lr=1e-4))
    with pytest.raises(HsgprofError, match="another config"):
        train_run(other, RunSpec("grid-only", 0), tmp_path, progress=False)


def test_stability_detects_spikes_and_collapse():
    from hsgprof.experiments.analysis import stability_rows

    cfg = get_preset("smoke")
    n = 200
    flat = [{"step": i, "loss": 1.0, "loss_dense": 1.0, "loss_sparse": 1.0, "grad_dense": 1.0 + 0.01 * (i % 3),
             "grad_sparse": 1.0 + 0.01 * (i % 5), "grad_shared": 1.0, "grad_total": 1.0} for i in range(n)]
    rec = {"spec": {"tag": "main", "variant": "hybrid", "seed": 0}, "log": {"train": flat, "grad": []}}
    rows = stability_rows([rec], cfg)
    assert not rows.collapse.any() and rows.spikes.sum() == 0
    bad = [dict(r) for r in flat]
    bad[50]["grad_dense"] = 50.0                               # one spike
    for r in bad[100:]:
        r["grad_sparse"] = 1e-5                                # vanished while the loss stays high
    rows = stability_rows([{**rec, "log": {"train": bad, "grad": []}}], cfg).set_index("branch")
    assert rows.loc["dense", "spikes"] == 1 and rows.loc["sparse", "collapse"]
    assert not rows.loc["dense", "collapse"]


# ----------------------------------------------------------------------------- runner, results, CLI
def test_smoke_experiment_writes_every_table(smoke_results):
    from hsgprof.results import read_results

    out, paths, _ = smoke_results
    for name in ("entropy", "entropy_summary", "information", "pairs", "occlusion", "capacity", "stability",
                 "convergence", "convergence_steps", "ap", "summary"):
        doc = read_results(out / f"experiments_{name}.json", f"experiments.{name}")
        assert doc["provenance"]["config"]["name"] == "smoke"
        assert doc["meta"]["seeds"] == [0]
    summary = read_results(out / "experiments_summary.json")["rows"]
    measurements = {r["measurement"] for r in summary}
    assert {"entropy_difference", "mi_queries_given_grid", "gradient_collapse", "nms_optional"} <= measurements
    for r in summary:
        assert r["verdict"].split(") ")[-1] in ("supported", "refuted", "inconclusive", "not measurable as stated")
    info = read_results(out / "experiments_information.json")["rows"]
    toy = {r["quantity"]: r["value"] for r in info if r["g_source"] == "toy"}
    assert toy["toy[cmi_q_function_of_x]"] == 0.0


def test_trained_hybrid_beats_untrained_on_ap(smoke_results):
    from hsgprof.results import results_frame

    out, _, _ = smoke_results
    curves = results_frame(out / "experiments_convergence.json")
    h = curves[(curves.variant == "hybrid") & (curves["mode"] == "fused")].sort_values("step")
    assert h.AP50.iloc[0] < h.AP50.iloc[-1], h[["step", "AP50"]].to_dict("records")
    assert h.AP50.iloc[-1] > 0.05


def test_rerun_reuses_finished_runs(smoke_results, tmp_path):
    from hsgprof.experiments import run_experiment

    out, _, cache = smoke_results
    ckpts = sorted(cache.glob("*/*/checkpoint.pt"))
    before = [p.stat().st_mtime_ns for p in ckpts]
    run_experiment(smoke_config(), tmp_path / "again", cache, progress=False)
    assert [p.stat().st_mtime_ns for p in ckpts] == before
    a = json.loads((out / "experiments_entropy.json").read_text())["rows"]
    b = json.loads((tmp_path / "again" / "experiments_entropy.json").read_text())["rows"]
    assert a == b


def test_cli_config_and_errors(capsys, tmp_path):
    assert main(["experiments", "config", "quick"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["name"] == "quick" and cfg["seeds"] == [0, 1, 2] and len(cfg["variants"]) == 3
    assert main(["experiments", "config", "nope"]) == 2
    assert "unknown experiment preset" in capsys.readouterr().err
    assert main(["experiments", "summary", str(tmp_path)]) == 2
    if not torch.cuda.is_available():
        assert main(["experiments", "run", "--preset", "smoke", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert main(["experiments", "data", "--out", str(tmp_path / "d"), "-n", "3", "--set", "occlusion"]) == 0
    assert len(list((tmp_path / "d" / "images").glob("*.png"))) == 3
    assert len(read_coco(tmp_path / "d" / "annotations.json")["images"]) == 3


def test_cli_summary_prints_verdicts(smoke_results, capsys):
    out, _, _ = smoke_results
    assert main(["experiments", "summary", str(out)]) == 0
    text = capsys.readouterr().out
    assert "theorem.entropy" in text and "verdict" in text


def test_presets_declare_everything_up_front():
    quick, full = get_preset("quick"), get_preset("full")
    assert quick.key() != full.key() and quick.key() == get_preset("quick").key()
    assert len(quick.seeds) >= 3 and set(quick.variants) == {"hybrid", "grid-only", "sparse-only"}
    assert quick.replace(convergence_target=0.4).key() != quick.key()
    d = quick.to_dict()
    for k in ("train_scene", "budget", "convergence_target", "spike_mad", "collapse_ratio", "hybrid_entropy_head",
              "capacity", "prob_eps"):
        assert k in d


def test_nll_pipeline_reaches_the_known_floor_for_an_oracle():
    """A predictor that reads z gets bit NLL ≈ H_b((1+s)/2); one that cannot gets ≈ ln 2."""
    import pandas as pd

    from hsgprof.experiments.evaluate import ObjectOutputs, _object_meta

    cfg = SceneConfig(dependency=0.8)
    scenes = generate_scenes(cfg, 400, seed=5)
    meta = _object_meta(scenes, "val")
    p = (1 + cfg.dependency) / 2
    fam, z = meta.family.to_numpy(), meta.z.to_numpy()
    probs = np.full((len(meta), 4), 1e-4)
    probs[np.arange(len(meta)), 2 * fam + z] = p                 # the oracle: bit = z w.p. p
    probs[np.arange(len(meta)), 2 * fam + (1 - z)] = 1 - p
    oracle = ObjectOutputs(meta, np.log(probs / (1 - probs)), None, None, None, None)
    _, bit = E.per_object_nll(oracle, "dense", {}, 1e-6)
    known = known_quantities(cfg)
    assert bit.mean() == pytest.approx(known["h_bit_given_x"], abs=0.03)
    blind = ObjectOutputs(meta, np.zeros((len(meta), 4)), None, None, None, None)
    _, bit0 = E.per_object_nll(blind, "dense", {}, 1e-6)
    assert bit0.mean() == pytest.approx(math.log(2), abs=1e-6)
    assert isinstance(meta, pd.DataFrame)
