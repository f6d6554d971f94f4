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


def test_coco_loader_on_a_foreign_fixture(tmp_path):
    """A hand-built COCO set unlike the project's own: sparse ids, crowd, zero-width box, grey image, no annotations."""
    from foreign_coco import write_foreign_coco

    _, _, coco = write_foreign_coco(tmp_path)
    with pytest.warns(UserWarning) as caught:
        ds = CocoDataset(tmp_path / "ann.json", tmp_path / "img")
    msg = str(caught[0].message)
    assert "1 crowd annotation(s)" in msg and "ids 101" in msg and "dropped: ids 102" in msg
    assert ds.skipped == {"crowd": [101], "degenerate": [102]}
    # Sparse ids 1, 3, 90 -> contiguous labels 0, 1, 2, and back.
    assert ds.category_to_label == {1: 0, 3: 1, 90: 2} and ds.label_to_category == [1, 3, 90]
    assert ds.category_names == ["person", "car", "toothbrush"] and ds.num_classes == 3
    image, target = ds[0]                                        # grey image, one kept box, crowd left out
    assert image.shape == (3, 32, 48) and torch.allclose(image, torch.full_like(image, 100 / 255))
    assert target["boxes"].tolist() == [[1.0, 2.0, 11.0, 7.0]] and target["labels"].tolist() == [2]
    assert int(target["image_id"]) == 7
    _, target = ds[1]                                            # zero-width box dropped, float box kept
    assert target["boxes"].tolist() == [[5.5, 6.0, 8.5, 10.5]] and target["labels"].tolist() == [0]
    image, target = ds[2]                                        # RGBA, no annotations: empty target
    assert image.shape == (3, 32, 48) and target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)
    with pytest.warns(UserWarning):
        kept = CocoDataset(tmp_path / "ann.json", tmp_path / "img", keep_empty=False, size=(64, 96))
    assert [im["id"] for im in kept.images] == [7, 9]
    assert kept[0][1]["boxes"].tolist() == [[2.0, 4.0, 22.0, 14.0]]
    coco["annotations"][0]["bbox"] = [1, 2, "10", 5]
    (tmp_path / "bad.json").write_text(json.dumps(coco))
    with pytest.raises(ValueError, match="expected \\[x, y, w, h\\] numbers"):
        CocoDataset(tmp_path / "bad.json", tmp_path / "img")


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
    real = T.generate_scenes

    def interrupted(scene, batch, seed):
        if seed[1] == 4:
            raise KeyboardInterrupt
        return real(scene, batch, seed)

    monkeypatch.setattr(T, "generate_scenes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        T.train_run(cfg, spec, tmp_path / "b", progress=False)
    assert T.load_checkpoint(tmp_path / "b" / "checkpoint.pt")["step"] == 3
    monkeypatch.setattr(T, "generate_scenes", real)
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


def test_a_non_finite_gradient_stops_the_run_before_the_weights_change(tmp_path, monkeypatch):
    from hsgprof.experiments import train as T

    cfg = get_preset("smoke").replace(budget=Budget(steps=4, batch_size=2, warmup_steps=1, grad_every=100,
                                                    eval_every=100, checkpoint_every=2))
    real = torch.nn.utils.clip_grad_norm_
    calls = []

    def exploding(params, max_norm, *a, **k):              # the third step's gradient overflows
        calls.append(1)
        norm = real(params, max_norm, *a, **k)
        return norm * float("inf") if len(calls) == 3 else norm

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", exploding)
    with pytest.raises(HsgprofError, match=r"grad_total became non-finite at step 2 .*checkpoint before"):
        T.train_run(cfg, T.RunSpec("grid-only", 0), tmp_path, progress=False)
    assert T.load_checkpoint(tmp_path / "checkpoint.pt")["step"] == 2


def test_stability_detects_spikes_and_collapse():
    from hsgprof.experiments.tables import stability_rows

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
                 "convergence", "convergence_steps", "ap", "summary", "controls", "fields"):
        doc = read_results(out / f"experiments_{name}.json", f"experiments.{name}")
        assert doc["provenance"]["config"]["name"] == "smoke"
        assert doc["meta"]["seeds"] == [0]
    summary = read_results(out / "experiments_summary.json")["rows"]
    measurements = {r["measurement"] for r in summary}
    assert {"entropy_difference", "mi_queries_given_grid", "gradient_collapse", "nms_optional"} <= measurements
    assert {"control_positive", "control_negative", "power", "entropy_difference_global_block",
            "queries_over_global_block"} <= measurements
    meta = read_results(out / "experiments_summary.json")["meta"]
    assert set(meta["gate"]) >= {"passed", "text", "missing"} and meta["design"]["key_gap"] == 2
    for r in summary:
        assert r["gate"] in ("passed", "failed", "not required")
        if r["claim"] == "design.gate":
            assert r["verdict"] in ("pass", "fail")
        elif r["claim"] == "design.power":
            assert r["verdict"] in ("adequate", "underpowered")
        else:
            assert r["verdict"].split(") ")[-1] in ("supported", "refuted", "inconclusive", "not measurable as stated")
        if r["gate"] == "failed":                     # a failed gate leaves no compared verdict standing
            assert r["verdict"].endswith("inconclusive") and r["evidence"].startswith("no power")
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


def test_parent_progress_advances_as_worker_runs_finish(capsys):
    """Workers train silently; the parent's bar and hook advance once per finished run, in completion order."""
    import threading
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from hsgprof.experiments.runner import track_runs

    gates = [threading.Event() for _ in range(3)]

    def silent_run(i):
        gates[i].wait(10)
        return f"run{i}", float(i)

    seen = []

    def hook(done, total, key, secs):
        seen.append((done, total, key))
        if done < 3:                                             # let the next run finish only now
            gates[{1: 2, 2: 0}[done]].set()

    with ThreadPoolExecutor(3) as pool:
        futures = [pool.submit(silent_run, i) for i in range(3)]
        gates[1].set()
        n = track_runs((f.result() for f in as_completed(futures)), 3, progress=True, on_run_done=hook)
    assert n == 3 and seen == [(1, 3, "run1"), (2, 3, "run2"), (3, 3, "run0")]
    err = capsys.readouterr().err
    assert "experiment runs" in err and "3/3" in err and "run0 0 s" in err
    track_runs(iter([("a", 1.0)]), 1, progress=False, on_run_done=lambda *a: seen.append(a))
    assert seen[-1] == (1, 1, "a", 1.0) and capsys.readouterr().err == ""     # quiet, hook still called

    def failing():
        yield "ok", 1.0
        raise RuntimeError("worker failed")

    with pytest.raises(RuntimeError, match="worker failed"):
        track_runs(failing(), 2, progress=False)


def test_cli_config_and_errors(capsys, tmp_path):
    assert main(["experiments", "config", "quick"]) == 0
    captured = capsys.readouterr()
    cfg = json.loads(captured.out)
    assert "learnability: " in captured.err and "reach: " in captured.err       # the design's pilots, on stderr
    assert cfg["name"] == "quick" and cfg["seeds"] == [0, 1] and len(cfg["variants"]) == 3
    assert [c["name"] for c in cfg["controls"]] == ["positive", "negative"] and cfg["gate"]["positive_within"] == 0.1
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
    assert len(quick.seeds) >= 2 and set(quick.variants) == {"hybrid", "grid-only", "sparse-only"}
    assert quick.power.pilot and quick.val_scene.key_gap > 0 and {c.expect for c in quick.controls} == {"floor", "ln2"}
    assert quick.replace(convergence_target=0.4).key() != quick.key()
    d = quick.to_dict()
    for k in ("train_scene", "budget", "convergence_target", "spike_mad", "collapse_ratio", "hybrid_entropy_head",
              "capacity", "prob_eps", "controls", "gate", "power", "design"):
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


# ----------------------------------------------------------------------------- analysis on hand-made inputs
def _cap(series, axis="ladder"):
    """A capacity table from {capacity index: [Δ per seed]}."""
    import pandas as pd

    return pd.DataFrame([{"capacity": f"c{x}", "axis": axis, "index": x, "seed": s, "delta": d}
                         for x, ds in series.items() for s, d in enumerate(ds)])


def test_capacity_trend_classes_hand_made_series():
    from hsgprof.experiments.tables import trend
    from hsgprof.experiments.config import TrendRule

    rule = TrendRule()
    xs = (100, 200, 400, 800)
    prop = _cap({x: [1e-4 * x * (1 + 0.02 * (s - 1)) for s in range(3)] for x in xs})
    t = trend(prop, rule)
    assert t["trend"] == "proportional" and t["r2_through_origin"] == pytest.approx(1.0)
    mono = _cap({x: [0.05 + 0.01 * math.log(x) + 1e-3 * s for s in range(3)] for x in xs})
    t = trend(mono, rule)
    assert t["trend"] == "monotone" and t["monotone_increasing"] and t["r2_through_origin"] < 0.9
    down = _cap({x: [0.2 - 1e-4 * x + 1e-3 * s for s in range(3)] for x in xs})
    assert trend(down, rule)["trend"] == "monotone" and "decreasing" in trend(down, rule)["trend_reason"]
    wiggle = _cap({100: [0.1, 0.11, 0.12], 200: [0.3, 0.31, 0.32], 400: [0.05, 0.06, 0.07], 800: [0.2, 0.21, 0.22]})
    assert trend(wiggle, rule)["trend"] == "neither"
    # Too few points, too few seeds (the quick set: 3 points, 1 seed), or a flat change not excluded.
    assert trend(_cap({100: [0.1, 0.1, 0.1], 200: [0.2, 0.2, 0.2]}), rule)["trend"] == "inconclusive"
    one_seed = trend(_cap({x: [1e-4 * x] for x in (260, 4160, 49920)}), rule)
    assert one_seed["trend"] == "inconclusive" and "seed" in one_seed["trend_reason"]
    noisy = _cap({100: [0.0, 0.1, 0.2], 200: [0.1, 0.105, 0.11], 400: [0.3, 0.0, 0.03]})
    t = trend(noisy, rule)
    assert t["monotone_increasing"] and t["trend"] == "inconclusive" and "contains 0" in t["trend_reason"]
    # The rule is data: a looser declared R² threshold turns the monotone series proportional.
    assert trend(mono, TrendRule(proportional_r2=-100.0))["trend"] == "proportional"


def test_capacity_rule_is_declared_and_drives_the_verdict():
    from pathlib import Path

    import pandas as pd

    from hsgprof.experiments.tables import capacity_trend
    from hsgprof.experiments.verdicts import capacity_verdict
    from hsgprof.experiments.config import TrendRule
    from hsgprof.results import read_results

    quick = get_preset("quick")
    assert quick.capacity_trend == TrendRule() and quick.to_dict()["capacity_trend"]["proportional_r2"] == 0.9
    assert quick.replace(capacity_trend=TrendRule(min_seeds=2)).key() != quick.key()
    committed = Path(__file__).resolve().parent.parent / "reports/results/experiments-quick/experiments_summary.json"
    if committed.exists():                                       # the committed results are the declared preset's
        assert read_results(committed)["meta"]["config_key"] == quick.key()
    xs = (100, 200, 400, 800)
    prop = _cap({x: [1e-4 * x * (1 + 0.02 * (s - 1)) for s in range(3)] for x in xs})
    assert capacity_verdict(prop, quick)["verdict"] == "supported"
    wiggle = _cap({100: [0.1] * 3, 200: [0.3] * 3, 400: [0.05] * 3, 800: [0.2] * 3})
    row = capacity_verdict(wiggle, quick)
    assert row["verdict"] == "refuted" and row["trend"] == "neither" and "trend: neither" in row["evidence"]
    assert capacity_verdict(_cap({x: [1e-4 * x] for x in xs}), quick)["verdict"] == "inconclusive"
    # Per axis: each axis's points plus the default point are classed on their own.
    axes = pd.concat([_cap({x: [1e-4 * x * (1 + 0.02 * s) for s in range(3)] for x in (100, 200)}, "N"),
                      _cap({400: [0.04, 0.0408, 0.0416]}, "default"),
                      _cap({x: [0.3, 0.31, 0.32] if x == 800 else [0.01, 0.02, 0.03] for x in (800, 1600)}, "K")])
    by_axis = capacity_trend(axes, quick.capacity_trend)["by_axis"]
    assert by_axis["N"]["trend"] == "proportional" and by_axis["K"]["trend"] == "neither"


def _eval_log(ap50, every=100):
    return [{"step": i * every, "mode": "nms_free", "AP": a / 2, "AP50": a} for i, a in enumerate(ap50)]


def test_convergence_censoring():
    """A run that never reaches the target is censored at budget + one interval, never counted as converged."""
    import pandas as pd

    from hsgprof.experiments.tables import convergence_rows
    from hsgprof.experiments.verdicts import convergence_verdict

    cfg = get_preset("quick")                                    # AP50 ≥ 0.05, nms_free, 1000 steps, every 100
    censored_at = cfg.budget.steps + cfg.budget.eval_every
    fast, never, exact = [0.0, 0.02, 0.06, 0.04], [0.0, 0.01, 0.049, 0.03], [0.0, 0.0, 0.0, 0.05]
    records = [{"spec": {"tag": "main", "variant": v, "seed": s}, "log": {"eval": _eval_log(curve)}}
               for s in range(3) for v, curve in (("hybrid", fast), ("sparse-only", never))]
    records.append({"spec": {"tag": "main", "variant": "grid-only", "seed": 0}, "log": {"eval": _eval_log(exact)}})
    records.append({"spec": {"tag": "cap-small", "variant": "hybrid", "seed": 0}, "log": {"eval": _eval_log(fast)}})
    _, reach = convergence_rows(records, cfg)
    assert len(reach) == 7                                       # capacity runs are not convergence runs
    r = reach.set_index(["variant", "seed"])
    assert r.loc[("hybrid", 0), "reached"] and r.loc[("hybrid", 0), "steps_to_target"] == 200
    assert not r.loc[("sparse-only", 1), "reached"] and np.isnan(r.loc[("sparse-only", 1), "steps_to_target"])
    assert r.loc[("sparse-only", 1), "steps_lower_bound"] == censored_at
    assert r.loc[("grid-only", 0), "steps_to_target"] == 300     # reaching the target exactly counts
    row = convergence_verdict(reach, cfg)
    assert row["value"] == 200 - censored_at and row["verdict"] == "supported"
    assert "3 of 6 runs never reached the target" in row["evidence"]
    # Swapped: the hybrid is the censored one -> refuted; both censored -> inconclusive, not "equal".
    swapped = reach.assign(variant=reach.variant.map({"hybrid": "sparse-only", "sparse-only": "hybrid"}))
    assert convergence_verdict(swapped, cfg)["verdict"] == "refuted"
    never_rows = reach[reach.variant == "sparse-only"]
    both = pd.concat([never_rows.assign(variant="hybrid"), never_rows])
    row = convergence_verdict(both, cfg)
    assert row["verdict"] == "inconclusive" and row["value"] == 0 and "6 of 6" in row["evidence"]


def test_pair_dependence_gap_on_hand_made_pairs():
    """gap = mean pair NLL − known H(Y_i, Y_j | X); residual dependence is what the predictions leave unexplained."""
    import pandas as pd

    from hsgprof.experiments.tables import known, pair_rows

    cfg = get_preset("quick")
    kq = known(cfg)
    rows = []
    bits = [0, 1, 1, 0, 1, 0, 0, 1]
    for variant, informed in (("grid-only", False), ("hybrid", True)):
        for k, b in enumerate(bits):                             # pair k: occluded 2k (partner 2k+1), occluder 2k+1
            for idx, partner, occluder, nll in ((2 * k, 2 * k + 1, False, 0.3), (2 * k + 1, 2 * k, True, 0.5)):
                rows.append({"idx": idx, "partner": partner, "occluder": occluder, "nll": nll, "bit": b,
                             "p": (0.9 if b else 0.1) if informed else 0.5, "variant": variant})
        rows.append({"idx": 16, "partner": -1, "occluder": False, "nll": 9.0, "bit": 1, "p": 0.5, "variant": variant})
        rows.append({"idx": 17, "partner": 99, "occluder": False, "nll": 9.0, "bit": 1, "p": 0.5, "variant": variant})
    d = pd.DataFrame(rows)
    obj = pd.DataFrame({"tag": "main", "variant": d.variant, "seed": 0, "head": "dense", "primary": True, "set": "val",
                        "image": d.idx // 2, "obj": d.idx, "index": d.idx, "partner": d.partner,
                        "occluder": d.occluder, "bit": d.bit, "nll_bit": d.nll, "p_bit1": d.p,
                        "occlusion": 0.5})
    extra = obj.assign(primary=False, nll_bit=5.0)               # a non-primary branch is not scored
    out = pair_rows(pd.concat([obj, extra], ignore_index=True), cfg).set_index("variant")
    for v in ("grid-only", "hybrid"):
        assert out.loc[v, "n_pairs"] == len(bits)                # unpaired and partner-less objects left out
        assert out.loc[v, "pair_nll"] == pytest.approx(0.8)
        assert out.loc[v, "gap"] == pytest.approx(0.8 - kq["h_pair_given_x"])
        assert out.loc[v, "model_i_pair"] == 0.0
    assert out.loc["grid-only", "residual_i_pair"] > 0.6        # linked bits, uninformative predictions
    assert out.loc["hybrid", "residual_i_pair"] == 0.0           # the predictions explain the link
