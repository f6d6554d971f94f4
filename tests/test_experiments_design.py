"""Theory-experiment design (issue 12): scene controls, the key gap against the measured receptive
field, the validity gate, the power analysis, batch prefetch and bitwise reproducibility."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hsgdet import build_model
from hsgdet.data.scenes import HIDDEN_KEY, KEY_COLORS, SceneConfig, generate_scenes, known_quantities, scene_batch
from hsgprof.experiments import gate as G
from hsgprof.experiments import power as P
from hsgprof.experiments.config import Budget, Curriculum, get_preset

from conftest import load_analysis

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- scenes and model
def test_controls_change_only_what_they_declare():
    cfg = SceneConfig(height=64, width=256, key_gap=112)
    base = generate_scenes(cfg, 40, 3)
    hidden = generate_scenes(cfg.replace(show_key=False), 40, 3)
    plane = generate_scenes(cfg.replace(z_plane=True), 40, 3)
    for a, h, p in zip(base, hidden, plane):
        assert torch.equal(a.boxes, h.boxes) and torch.equal(a.labels, h.labels) and a.z == h.z == p.z
        x1, y1, x2, y2 = a.key_box
        assert torch.all(a.image[:, y1:y2, x1:x2] == KEY_COLORS[a.z])
        assert torch.all(h.image[:, y1:y2, x1:x2] == HIDDEN_KEY)                 # the same grey for both z
        outside = torch.ones(a.image.shape[1:], dtype=torch.bool)
        outside[y1:y2, x1:x2] = False
        assert torch.equal(a.image[:, outside], h.image[:, outside])           # nothing else changed
        assert p.image.shape[0] == 4 and torch.equal(p.image[:3], a.image) and torch.all(p.image[3] == a.z)
    assert known_quantities(cfg.replace(show_key=False))["h_bit_given_x"] == pytest.approx(math.log(2))
    assert known_quantities(cfg.replace(z_plane=True))["h_bit_given_x"] == known_quantities(cfg)["h_bit_given_x"]
    images, _, _ = scene_batch(cfg.replace(z_plane=True), 0, 0)
    assert images.shape == (0, 4, 64, 256)


@pytest.mark.parametrize("key", [{}, {"key_size": 16, "key_height": 62}], ids=["square", "band"])
def test_key_gap_keeps_every_object_away_from_the_key(key):
    cfg = SceneConfig(height=64, width=256, key_gap=112, **key)
    n = 0
    for s in generate_scenes(cfg, 200, 9):
        kx1, ky1, kx2, ky2 = s.key_box                                      # xyxy, exclusive ends
        assert (kx2 - kx1, ky2 - ky1) == (cfg.key_size, cfg.key_height or cfg.key_size)
        assert torch.all(s.image[:, ky1:ky2, kx1:kx2] == KEY_COLORS[s.z])
        for x1, y1, x2, y2 in s.boxes.tolist():
            gap = max(x1 - kx2, kx1 - x2, y1 - ky2, ky1 - y2)                 # empty pixels between them
            assert gap >= cfg.key_gap
            n += 1
    assert n > 300
    with pytest.raises(ValueError, match="key_gap=300"):
        SceneConfig(height=64, width=256, key_gap=300)
    with pytest.raises(ValueError, match="key_height=63"):
        SceneConfig(height=64, width=256, key_height=63)


def test_key_corners_limit_where_the_key_goes_and_all_four_draw_as_before():
    left = SceneConfig(height=32, width=960, key_gap=672, key_corners=(0, 2))
    scenes = generate_scenes(left, 64, 3)
    assert {s.key_box[0] for s in scenes} == {1}                              # inset one pixel from the left
    assert {s.key_box[1] for s in scenes} == {1, 32 - 1 - left.key_size}      # both left corners drawn
    default, listed = SceneConfig(), SceneConfig(key_corners=(0, 1, 2, 3))
    a, b = generate_scenes(default, 8, 5), generate_scenes(listed, 8, 5)
    assert all(torch.equal(x.image, y.image) and x.key_box == y.key_box for x, y in zip(a, b))
    assert SceneConfig(key_corners=[0, 2]) == SceneConfig(key_corners=(0, 2))        # a list (from JSON) is kept as a tuple
    for bad in [(), (4,), (0, 0)]:
        with pytest.raises(ValueError, match=r"key_corners=\("):
            SceneConfig(key_corners=bad)


def test_a_scene_field_added_later_leaves_the_keys_of_configs_that_do_not_use_it():
    """``key_height`` and ``key_corners`` at their defaults are absent from a config's dict (so existing
    results keep their config keys), and present, changing the key, when set."""
    quick = get_preset("quick")
    assert not {"key_height", "key_corners"} & set(quick.to_dict()["train_scene"])
    band = quick.replace(train_scene=quick.train_scene.replace(key_height=30))
    assert band.to_dict()["train_scene"]["key_height"] == 30 and band.key() != quick.key()
    left = quick.replace(train_scene=quick.train_scene.replace(key_corners=(0, 2)))
    assert left.to_dict()["train_scene"]["key_corners"] == (0, 2) and left.key() not in (quick.key(), band.key())


def test_extra_input_planes_change_only_the_stem():
    a, b = build_model("hsgdet-tiny"), build_model("hsgdet-tiny", extra_input_planes=1)
    assert b.backbone.stem.conv.in_channels == 4 and a.backbone.stem.conv.in_channels == 3
    diff = {k for k, v in a.state_dict().items() if v.shape != b.state_dict()[k].shape}
    assert diff == {"backbone.stem.conv.weight"}
    b.eval()
    assert b(torch.rand(1, 4, 64, 64), output_mode="raw")["dense_logits"].shape[-1] == 4
    with pytest.raises(ValueError, match=r"shape \[B,4,H,W\]"):
        b(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match="extra_input_planes=-1"):
        build_model("hsgdet-tiny", extra_input_planes=-1)


# ----------------------------------------------------------------------------- design vs receptive field
def test_the_far_key_lies_outside_the_grid_only_theoretical_field():
    """The far preset's key gap exceeds half the grid-only model's *theoretical* field width at every
    dense level, measured on a canvas wide enough that no field touches its left or right border:
    no path of the grid-only network, trained or not, reaches from any object to the key."""
    from hsgprof.adapters.hsgdet import rf_levels
    from hsgprof.receptive import fields

    far = get_preset("far")
    torch.manual_seed(0)
    model = build_model(far.preset, variant="grid-only", **far.model_kwargs())
    wide = 2048
    levels = fields(model, rf_levels, (1, 3, far.val_scene.height, wide), far.design.share, 1, 0, 0)
    assert [lv.name for lv in levels] == ["P3", "P4", "P5"]
    for lv in levels:
        width = lv.theoretical_hw[1]
        assert width < wide, f"{lv.name}: the field fills the {wide}-px canvas; measure on a wider one"
        assert far.val_scene.key_gap > width / 2, f"{lv.name}: field {width} px wide reaches a key {far.val_scene.key_gap} px away"
    assert far.val_scene.width > far.val_scene.key_gap + far.val_scene.key_size + far.val_scene.max_size


@pytest.mark.parametrize("preset", ["quick", "full"])
def test_key_lies_outside_the_grid_only_effective_field(preset):
    """The declared key gap exceeds the grid-only model's effective radius at every dense level,
    re-measured here on the preset's canvas with random weights (the design rule)."""
    from hsgprof.experiments.fields import grid_fields

    cfg = get_preset(preset)
    doc = grid_fields(cfg, grow=False)
    assert [lv["name"] for lv in doc["levels"]] == ["P3", "P4", "P5"]
    assert doc["key_outside_effective_field"], doc["radii"]
    assert cfg.val_scene.key_gap > max(doc["radii"].values())


def test_controls_are_declared_runs_with_their_own_scenes():
    from hsgprof.experiments.runner import eval_sets, run_specs

    cfg = get_preset("quick")
    specs = run_specs(cfg)
    ctl = [s for s in specs if s.is_control]
    assert {s.tag for s in ctl} == {"control-positive", "control-negative"}
    assert {s.seed for s in ctl} == set(cfg.seeds)
    pos = next(s for s in ctl if s.tag == "control-positive")
    assert pos.variant == "grid-only" and dict(pos.scene) == {"z_plane": True} and dict(pos.overrides) == {
        "extra_input_planes": 1}
    small = get_preset("smoke").replace(n_val=4, n_occlusion=2, n_dense_per_bin=1, n_convergence=2)
    sets = eval_sets(small, pos)
    assert sets["val"].images().shape[1] == 4


# ----------------------------------------------------------------------------- gate
def _controls(pos: float, neg: float) -> pd.DataFrame:
    cfg = get_preset("quick")
    floor = known_quantities(cfg.val_scene)["h_bit_given_x"]
    rows = []
    for name, variant, head, values in (("positive", "grid-only", "dense", [pos, pos + 0.01]),
                                        ("negative", "hybrid", "sparse", [neg, neg - 0.01])):
        for seed, v in enumerate(values):
            rows += [{"tag": f"control-{name}", "set": "val", "head": head, "seed": seed, "nll_bit": v}] * 5
    return G.control_rows(pd.DataFrame(rows), cfg, floor)


def test_gate_passes_only_when_both_controls_do():
    cfg = get_preset("quick")
    floor = known_quantities(cfg.val_scene)["h_bit_given_x"]
    ok = G.gate_status(_controls(floor + 0.05, math.log(2)), cfg)
    assert ok["passed"] and ok["missing"] == []
    bad_pos = G.gate_status(_controls(floor + 0.2, math.log(2)), cfg)
    assert not bad_pos["passed"] and "positive control" in bad_pos["missing"][0]
    bad_neg = G.gate_status(_controls(floor, 0.5), cfg)
    assert not bad_neg["passed"] and "negative" in bad_neg["missing"][0]
    assert not G.gate_status(pd.DataFrame(), cfg)["passed"]


def test_failed_gate_makes_compared_verdicts_no_power():
    s = pd.DataFrame([{"measurement": "entropy_difference", "verdict": "supported", "evidence": "e"},
                      {"measurement": "delta_occlusion", "verdict": "(secondary) refuted", "evidence": "e"},
                      {"measurement": "gradient_collapse", "verdict": "supported", "evidence": "e"}])
    failed = G.apply_gate(s, {"passed": False, "text": "gate failed", "missing": ["the positive control"]})
    assert failed.verdict.tolist() == ["inconclusive", "(secondary) inconclusive", "supported"]
    assert failed.gate.tolist() == ["failed", "failed", "not required"]
    assert failed.evidence[0].startswith("no power") and "verdict before the gate: supported" in failed.evidence[0]
    passed = G.apply_gate(s, {"passed": True, "text": "gate passed", "missing": []})
    assert passed.verdict.tolist() == s.verdict.tolist() and passed.gate[0] == "passed"


# ----------------------------------------------------------------------------- power
def test_minimum_detectable_difference_formula():
    from scipy import stats

    k = stats.t.ppf(0.975, 4) + stats.t.ppf(0.8, 4)
    assert P.mdd(5, 0.03, 0.0, 100) == pytest.approx(k * math.sqrt(2 * 0.03 ** 2 / 5))
    assert P.mdd(1, 0.03, 0.1, 100) == math.inf
    assert P.mdd(10, 0.03, 0.5, 100) < P.mdd(5, 0.03, 0.5, 100)
    n = P.seeds_needed(0.05, 0.03, 0.5, 500)
    assert P.mdd(n, 0.03, 0.5, 500) <= 0.05 < P.mdd(n - 1, 0.03, 0.5, 500)
    assert P.objects_needed(0.05, 20, 0.5, 0.5) is None                    # seed noise alone is too big
    m = P.objects_needed(0.05, 8, 0.01, 0.6)
    assert P.mdd(8, 0.01, 0.6, m) <= 0.05 < P.mdd(8, 0.01, 0.6, m - 1)


def test_variance_components_recover_known_sigmas():
    rng = np.random.default_rng(0)
    frames = [pd.DataFrame({"seed": s, "nll_bit": rng.normal(0.4 + rng.normal(0, 0.05), 0.3, 4000)})
              for s in range(40)]
    c = P.variance_components(pd.concat(frames))
    assert c["sigma_object"] == pytest.approx(0.3, rel=0.02)
    assert c["sigma_seed"] == pytest.approx(0.05, rel=0.3)
    pooled = P.pooled([c, {**c, "sigma_object": 0.5}])
    assert pooled["sigma_object"] == 0.5 and pooled["df_seed"] == 78


# ----------------------------------------------------------------------------- prefetch and reproducibility
def test_prefetch_gives_the_same_batches():
    from hsgprof.experiments.train import Prefetch

    cfg = SceneConfig()
    on, off = Prefetch(cfg, 3, 7, 2, 6, enabled=True), Prefetch(cfg, 3, 7, 2, 6, enabled=False)
    try:
        for step in range(2, 6):
            (a, ta), (b, tb) = on.get(step), off.get(step)
            assert torch.equal(a, b) and all(torch.equal(x["boxes"], y["boxes"]) for x, y in zip(ta, tb))
    finally:
        on.close()


def test_same_run_twice_is_bitwise_identical(tmp_path):
    """On one machine (same CPU, same torch, one thread) a run is reproducible bit for bit."""
    from hsgprof.experiments.train import RunSpec, train_run

    cfg = get_preset("smoke").replace(budget=Budget(steps=6, batch_size=2, warmup_steps=2, grad_every=3,
                                                    eval_every=100, checkpoint_every=100))
    spec = RunSpec("hybrid", 3)
    a, la = train_run(cfg, spec, tmp_path / "a", progress=False, resume=False)
    b, lb = train_run(cfg, spec, tmp_path / "b", progress=False, resume=False)
    for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), k
    assert [r["loss"] for r in la["train"]] == [r["loss"] for r in lb["train"]]


def test_claims_read_gpu_experiment_results_first(tmp_path):
    """A GPU measurement folder's experiments/ wins over the quick results; without one, quick is used."""
    from hsgprof.claims.measures import MEASURES
    from hsgprof.report.store import ResultsStore
    from hsgprof.results import write_results

    def summary(value, folder):
        row = {"claim": "theorem.entropy", "measurement": "entropy_difference", "value": value, "ci_low": value - 0.01,
               "ci_high": value + 0.01, "unit": "nats", "verdict": "supported", "evidence": "e", "gate": "passed"}
        return write_results(folder / "experiments_summary.json", "experiments.summary", [row],
                             meta={"config_name": folder.name, "gate": {"passed": True}})

    quick = summary(0.1, tmp_path / "quick")
    gpu_dir = tmp_path / "measurements" / "nvidia-h200-2099-01-01" / "experiments"
    summary(0.3, gpu_dir)
    store = ResultsStore()
    store.add_files([quick])
    assert MEASURES["entropy_difference"](store).value == pytest.approx(-0.1)       # ledger sign: hybrid − grid
    store.add_measurements(tmp_path / "measurements")
    m = MEASURES["entropy_difference"](store)
    assert m.value == pytest.approx(-0.3) and "experiments" in m.source and "validity gate passed" in m.device


def test_the_quick_preset_rests_on_the_committed_pilots():
    """The quick budget is the one the pilots passed the gate with (the power plan written into the config)."""
    from pathlib import Path

    from hsgprof.results import read_results

    quick = get_preset("quick")
    root = Path(__file__).resolve().parent.parent
    doc = read_results(root / quick.power.pilot, "experiments.pilots")
    meta = doc["meta"]
    b = meta["budget"]
    assert (b["steps"], b["batch_size"], b["lr"]) == (quick.budget.steps, quick.budget.batch_size, quick.budget.lr)
    assert meta["gate"]["positive_pass"] and meta["gate"]["negative_pass"]
    assert meta["key_gap"] == quick.val_scene.key_gap
    assert quick.val_scene.key_gap > max(lv["effective_radius"] for lv in meta["fields"]["levels"])


@pytest.mark.parametrize("preset", ["far", "full"])
def test_the_far_design_presets_rest_on_pilots_of_their_own_design(preset):
    """The power plan cites pilots trained on the preset's own canvas, key, model, curriculum and
    budget; the controls there behave (the gate), and its seeds detect |Δ| ≥ δ by those pilots'
    variances."""
    import json
    from pathlib import Path

    from hsgprof.results import read_results

    cfg = get_preset(preset)
    doc = read_results(Path(__file__).resolve().parent.parent / cfg.power.pilot, "experiments.pilots")
    meta, mine = doc["meta"], json.loads(json.dumps(cfg.to_dict()))
    b = meta["budget"]
    assert (b["steps"], b["batch_size"], b["lr"]) == (cfg.budget.steps, cfg.budget.batch_size, cfg.budget.lr)
    for key in ("preset", "model_overrides", "train_scene", "val_scene", "n_val", "controls", "curriculum"):
        got = doc["provenance"]["config"].get(key, Curriculum().as_dict() if key == "curriculum" else None)  # before it: none
        assert got == mine[key], key
    assert meta["gate"]["positive_pass"] and meta["gate"]["negative_pass"]
    sig, pw = meta["pooled"], cfg.power
    assert P.mdd(len(cfg.seeds), sig["sigma_seed"], sig["sigma_object"], meta["objects_per_run"], pw.alpha,
                 pw.power) <= pw.delta


def test_learnability_counts_a_head_as_learned_only_once_it_stays_below_the_threshold():
    from hsgprof.experiments.learnability import learned_at

    curve = [{"step": 0, "nll_bit_dense": 0.69, "nll_bit_sparse": 0.69},
             {"step": 10, "nll_bit_dense": 0.25, "nll_bit_sparse": 0.69},      # a dip that does not last
             {"step": 20, "nll_bit_dense": 0.6, "nll_bit_sparse": 0.69},
             {"step": 30, "nll_bit_dense": 0.28, "nll_bit_sparse": 0.29},
             {"step": 40, "nll_bit_dense": 0.27, "nll_bit_sparse": float("nan")}]
    assert learned_at(curve, "dense", 0.3) == 30
    assert learned_at(curve, "sparse", 0.3) is None                      # NaN is never "learned"
    assert learned_at(curve, "dense", 0.2) is None


def _learnability_file(tmp_path, cfg, steps, learned, variant="hybrid"):
    from hsgprof.results import write_results

    pilot = cfg.replace(budget=dataclasses.replace(cfg.budget, steps=steps))
    rows = learned if isinstance(learned, list) else [(0, h, s) for h, s in learned.items()]
    meta = {"budget": pilot.budget.__dict__, "variant": variant, "learned": [{"seed": seed, "head": h, "learned_at_step": s}
                                                           for seed, h, s in rows]}
    return write_results(tmp_path / "learn.json", "experiments.learnability", [], config=pilot.to_dict(), meta=meta)


def test_a_budget_is_checked_against_the_learnability_pilot_of_the_same_model_and_batch(tmp_path):
    from hsgprof.experiments import get_preset
    from hsgprof.experiments import learnability as L

    quick = get_preset("quick")                                           # 600 steps × batch 8
    f = _learnability_file(tmp_path, quick, 5000, {"dense": 4000, "sparse": None})
    assert L.budget_check(quick, f)["status"] == L.BELOW
    assert L.budget_check(quick, f)["learned_at_step"] == 4000
    longer = quick.replace(budget=dataclasses.replace(quick.budget, steps=4000))
    assert L.budget_check(longer, f)["status"] == L.REACHES
    f = _learnability_file(tmp_path, quick, 800, {"dense": None, "sparse": None})
    assert L.budget_check(quick, f)["status"] == L.NEVER                   # 800 ≥ 600 and nothing learned
    assert L.budget_check(longer, f)["status"] == L.UNKNOWN                # the preset trains longer than the pilot
    other = quick.replace(budget=dataclasses.replace(quick.budget, batch_size=64))
    assert L.budget_check(other, f)["status"] == L.UNKNOWN                 # another batch: not comparable
    assert L.budget_check(quick, tmp_path / "missing.json")["status"] == L.UNKNOWN
    # several seeds: "reaches" only when every seed learned (any head) within the preset's steps
    f = _learnability_file(tmp_path, quick, 1500, [(0, "dense", None), (0, "sparse", 500),
                                                   (1, "dense", 400), (1, "sparse", None)])
    assert L.budget_check(quick, f)["status"] == L.REACHES
    assert L.budget_check(quick, f)["seeds_learned_in_budget"] == 2
    f = _learnability_file(tmp_path, quick, 1500, [(0, "sparse", 500), (1, "sparse", None), (2, "sparse", 1500)])
    check = L.budget_check(quick, f)
    assert check["status"] == L.BELOW and (check["seeds_learned"], check["seeds_learned_in_budget"]) == (2, 1)
    assert check["learned_at_step"] == 500 and "2 of 3" in check["text"]
    # a grid-only pilot (the design's reach control) is never read as the preset's learnability
    f = _learnability_file(tmp_path, quick, 1500, {"dense": 400}, variant="grid-only")
    assert L.budget_check(quick, f)["status"] == L.UNKNOWN and "grid-only" in L.budget_check(quick, f)["text"]


def test_the_committed_learnability_pilots_are_read_against_their_presets():
    from hsgprof.experiments import get_preset
    from hsgprof.experiments import learnability as L

    for preset in ("quick", "full", "far"):
        if L.budget_check(get_preset(preset))["pilot_steps"] is not None:    # a committed pilot exists
            check = L.budget_check(get_preset(preset))
            assert check["status"] != L.UNKNOWN, check["text"]             # a committed pilot matches its preset
    for preset in ("far", "full"):                                         # the far design: the grid-only model cannot see the key
        assert L.reach_check(get_preset(preset))["status"] == L.NOT_LEARNED, preset
    assert L.budget_check(get_preset("quick"))["status"] == L.BELOW       # quick: learned at 4000 > 600 steps
    if L.reach_path("quick").is_file():                                     # the committed reach control matches too
        assert L.reach_check(get_preset("quick"))["status"] != L.UNKNOWN


def test_the_reach_control_says_whether_the_grid_only_model_learned_the_key(tmp_path):
    from hsgprof.experiments import learnability as L

    quick = get_preset("quick")
    f = _learnability_file(tmp_path, quick, 5000, {"dense": 2000}, variant="grid-only")
    check = L.reach_check(quick, f)
    assert check["status"] == L.IN_REACH and check["learned_at_step"] == 2000
    f = _learnability_file(tmp_path, quick, 5000, [(0, "dense", None), (1, "dense", 2500)], variant="grid-only")
    check = L.reach_check(quick, f)
    assert check["status"] == L.IN_REACH and "1 of 2 seed(s), first at step 2500" in check["text"]
    assert "does not isolate the global block" in check["text"]
    f = _learnability_file(tmp_path, quick, 5000, {"dense": None}, variant="grid-only")
    assert L.reach_check(quick, f)["status"] == L.NOT_LEARNED
    f = _learnability_file(tmp_path, quick, 5000, {"dense": 2000})                      # a hybrid pilot
    assert L.reach_check(quick, f)["status"] == L.UNKNOWN
    other = quick.replace(budget=dataclasses.replace(quick.budget, lr=1e-2))
    f = _learnability_file(tmp_path, quick, 5000, {"dense": 2000}, variant="grid-only")
    assert L.reach_check(other, f)["status"] == L.UNKNOWN                                # another budget
    assert L.reach_check(quick, tmp_path / "missing.json")["status"] == L.UNKNOWN


def test_the_report_states_the_learnability_of_the_preset_its_results_are_from():
    from hsgprof.experiments import get_preset
    from hsgprof.experiments import learnability as L
    from hsgprof.report.theory import _learnability

    quick = get_preset("quick")
    text = _learnability({"config_name": "quick", "config_key": quick.key()})
    check = L.budget_check(quick)
    assert text is not None and check["text"] in text and L.pilot_path("quick").name in text
    reach = L.reach_check(quick)
    assert (reach["text"][1:] in text) == (reach["status"] != L.UNKNOWN)
    assert _learnability({"config_name": "quick", "config_key": "another-design"}) is None    # not this preset's results
    assert _learnability({"config_name": "smoke", "config_key": get_preset("smoke").key()}) is None   # no pilot


def test_the_gpu_command_announces_a_budget_its_pilot_says_cannot_learn(tmp_path, monkeypatch):
    """Before any run: ``hsgprof experiments gpu`` reads the preset's learnability pilot, warns, and
    records the outcome with its results (CUDA and the runs are stood in for: only the check is tested)."""
    import hsgprof.experiments as X
    import hsgprof.experiments.gpu as GPU
    from hsgprof.experiments import learnability as L

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "stand-in GPU")
    monkeypatch.setattr(GPU, "_nvidia_smi", lambda: "")
    monkeypatch.setattr(X, "run_experiment", lambda *a, **k: {})
    written = {}
    monkeypatch.setattr("hsgprof.results.write_results", lambda path, kind, rows, **k: written.setdefault(kind, rows))
    lines: list[str] = []
    rec = GPU.run_gpu_preset(tmp_path / "experiments", "quick", workers=1, run_tests=False, log=lines.append)
    check = L.budget_check(get_preset("quick"))
    assert check["status"] == L.BELOW
    assert any("WARNING: learnability: " + check["text"] in line for line in lines)
    assert rec["learnability"] == L.BELOW and written["experiments.gpu_run"][0]["learnability_text"] == check["text"]
    host = [line for line in lines if "host speed: reference " in line]             # no estimate of quick: not compared
    assert len(host) == 1 and rec["host_check"] == GPU.NOT_COMPARED and rec["host_reference"]["median_s"] > 0


def test_a_pilot_config_changes_only_what_it_is_given():
    """analyses/experiments_pilots.pilot_config: a candidate budget (evaluation every tenth of it) and,
    as a design change, the key size of every scene set; nothing else of the preset moves."""
    mod = load_analysis("experiments_pilots")
    quick = get_preset("quick")
    cfg = mod.pilot_config("quick", steps=1000)
    assert (cfg.budget.steps, cfg.budget.eval_every, cfg.budget.lr) == (1000, 100, quick.budget.lr)
    assert cfg.val_scene == quick.val_scene and cfg.key() != quick.key()
    big = quick.train_scene.key_size * 2
    keyed = mod.pilot_config("quick", steps=1000, key_size=big)
    assert {keyed.train_scene.key_size, keyed.val_scene.key_size, keyed.occlusion_scene.key_size} == {big}
    assert keyed.val_scene.replace(key_size=quick.val_scene.key_size) == quick.val_scene
    assert keyed.budget == cfg.budget and keyed.key() != cfg.key()
    assert mod.pilot_config("quick", steps=1000, scene={"key_size": big}) == keyed       # key_size is shorthand
    weighted = mod.pilot_config("quick", steps=1000, model={"loss_dense_cls": 2.0})
    assert dict(weighted.model_overrides) == {**dict(quick.model_overrides), "loss_dense_cls": 2.0}
    assert weighted.train_scene == quick.train_scene and weighted.key() not in (cfg.key(), keyed.key())


@pytest.mark.parametrize("arg,message", [
    ("scene.bogus=1", "scene.bogus is not a field of SceneConfig"),
    ("model.loss_dense_cls=x2", "model.loss_dense_cls='x2' is a str; the field is of type float"),
    ("scene.key_height=1.5", "scene.key_height=1.5 is a float; the field is of type int"),
    ("colour=red", "options ['colour'] not accepted"),
    ("variant=sparse-only", "variant='sparse-only' is not accepted (hybrid, grid-only)"),
    ("probe=2", "probe=2 is too few images"),
    ("seeds", "argument 'seeds' is not KEY=VALUE"),
    ("batch_size=big", "batch_size='big' is not accepted; need a number (int)"),
    ("seeds=0;1", "seeds='0;1' is not accepted"),
    ("curriculum.bogus=1", "curriculum.bogus is not a field of SceneConfig"),
    ("curriculum.share=half", "curriculum.share='half' is not accepted; need a number"),
    ("curriculum.until=1.5", "curriculum.until=1.5 is not accepted"),
    ("curriculum.share=0.75", "curriculum.share pilot(s) a candidate, not the preset as declared: give out=FILE"),
    ("lr=4e-3", "lr pilot(s) a candidate"),
])
def test_the_learnability_script_refuses_a_bad_design_option_in_one_line(arg, message, capsys):
    assert load_analysis("experiments_learnability").main(["quick", "steps=10", arg]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_a_grid_only_pilot_goes_to_the_reach_control_file_by_default():
    from hsgprof.experiments.learnability import pilot_path, reach_path

    script = load_analysis("experiments_learnability")
    assert script.default_out("full", "grid-only") == reach_path("full") != pilot_path("full")
    assert script.default_out("full", "hybrid") == pilot_path("full")


@pytest.mark.parametrize("argv,message", [
    (["quick", "seeds"], "argument 'seeds' is not KEY=VALUE"),
    (["quick", "colour=red"], "options ['colour'] not accepted"),
    (["quick", "steps=x"], "steps='x' is not accepted; need a number (int)"),
    (["quick", "seeds=0,a"], "seeds='0,a' is not accepted"),
    (["nope"], "unknown experiment preset 'nope'"),
    (["quick", "curriculum.share=half"], "curriculum.share='half' is not accepted; need a number"),
    (["quick", "curriculum.bogus=1"], "curriculum.bogus is not a field of SceneConfig"),
    (["quick", "scene.key_size=3"], "options ['scene.key_size'] not accepted"),
])
def test_the_pilots_script_refuses_bad_arguments_in_one_line_before_any_run(argv, message, capsys, tmp_path):
    out = tmp_path / "pilots.json"
    assert load_analysis("experiments_pilots").main([*argv, f"out={out}"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not out.exists()
    assert load_analysis("experiments_pilots").main(["quick", f"out={tmp_path}"]) == 2       # a folder: before any run
    assert "is a folder" in capsys.readouterr().err


def test_the_pilots_script_refuses_a_candidate_curriculum_without_its_own_out_file(capsys):
    assert load_analysis("experiments_pilots").main(["quick", "curriculum.share=0.5"]) == 2
    err = capsys.readouterr().err.strip()
    assert "give out=FILE (the default, experiments_pilots_quick.json, is the preset's own)" in err
    assert len(err.splitlines()) == 1


def test_the_gpu_presets_former_declaration_and_its_candidate_pilots_are_what_the_docs_say():
    """The full preset's first declaration (curriculum share 0.5) and the candidate pilots that led to
    the present one (share 0.75 at 256 validation images) stay as evidence: each file holds the
    design the docs cite it for, and differs from the present declaration in that alone."""
    import json
    from pathlib import Path

    from hsgprof.results import read_results

    pilots = Path(__file__).resolve().parent.parent / "reports/results/pilots"
    mine = json.loads(json.dumps(get_preset("full").to_dict()))
    for name, kind, share, n_val in (("experiments_learnability_full_near50.json", "experiments.learnability", 0.5, 256),
                                     ("experiments_learnability_full_near50_grid-only.json", "experiments.learnability", 0.5, 256),
                                     ("experiments_pilots_full_near50.json", "experiments.pilots", 0.5, 256),
                                     ("experiments_pilots_full_near75.json", "experiments.pilots", 0.75, 256)):
        config = read_results(pilots / name, kind)["provenance"]["config"]
        assert (config["curriculum"]["share"], config["n_val"]) == (share, n_val), name
        assert config["curriculum"]["scene"] == mine["curriculum"]["scene"] and config["train_scene"] == mine["train_scene"]
        assert (config["curriculum"]["share"], config["n_val"]) != (mine["curriculum"]["share"], mine["n_val"])
