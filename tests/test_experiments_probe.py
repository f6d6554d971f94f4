"""The key probe (hsgprof.experiments.probe): its two controls behave, and bad input is refused."""

from __future__ import annotations

import pytest

from hsgprof.errors import HsgprofError
from hsgprof.experiments.config import get_preset
from hsgprof.experiments.probe import key_probe, probe_text

from conftest import load_analysis

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _quick(**scene):
    q = get_preset("quick")
    return q.replace(val_scene=q.val_scene.replace(**scene))


def test_the_probe_reads_a_z_plane_and_not_a_hidden_key():
    """Positive control: z in an extra input plane is read at initialisation; negative control: with
    the key painted the same grey for both z, no level reads it (and the split is by image)."""
    plane = key_probe(_quick(z_plane=True), "grid-only", images=256, extra={"extra_input_planes": 1})
    hidden = key_probe(_quick(show_key=False), "grid-only", images=256)
    assert plane["reads_key"] and max(lv["accuracy"] for lv in plane["levels"]) > 0.6
    assert not hidden["reads_key"]
    assert all(lv["ci_low"] <= 0.5 <= lv["ci_high"] for lv in hidden["levels"])
    assert 0 < hidden["objects_scored"] < hidden["objects"]
    assert [lv["name"] for lv in hidden["levels"]] == ["P3", "P4", "P5"]
    assert [lv["stride"] for lv in hidden["levels"]] == [8, 16, 32]
    assert "does not read the key" in probe_text(hidden) and "reads the key" in probe_text(plane)


def test_the_probe_refuses_what_it_cannot_probe():
    with pytest.raises(HsgprofError, match="images=2 is too few"):
        key_probe(get_preset("quick"), images=2)
    with pytest.raises(HsgprofError, match="variant 'sparse-only' has no grid path"):
        key_probe(get_preset("quick"), "sparse-only", images=8)


def test_probing_a_given_model_leaves_its_weights_and_statistics_alone():
    """``model=``: a partly trained model is probed as it is (the pilots' ``probe=`` option), on a copy:
    its BatchNorm running statistics and weights are unchanged afterwards."""
    import torch

    from hsgprof.adapters.hsgdet_experiments import build_model

    quick = get_preset("quick")
    torch.manual_seed(0)
    model = build_model(quick.preset, variant="hybrid", **quick.model_kwargs()).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    given = key_probe(quick, images=16, model=model)
    assert given["variant"] == "hybrid" and not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert given == key_probe(quick, "hybrid", images=16, seed=0)      # the same weights: the same probe


def test_the_committed_probe_backs_the_declared_quick_design():
    """The committed probe results: the controls behaved and the declared quick key is read by no
    grid-only level; a smaller re-measurement here agrees."""
    from hsgprof.provenance import REPO_ROOT
    from hsgprof.results import read_results

    doc = read_results(REPO_ROOT / "reports/results/pilots/experiments_probe_quick.json", "experiments.probe")
    assert doc["meta"]["controls_pass"]
    declared = [r for r in doc["rows"] if r["design"] == "declared" and r["variant"] == "grid-only"]
    assert len(declared) == 3 and not any(r["reads_key"] for r in declared)
    assert not key_probe(get_preset("quick"), "grid-only", images=256)["reads_key"]


def test_the_probe_script_writes_controls_and_designs(tmp_path, capsys):
    mod = load_analysis("experiments_probe")
    out = tmp_path / "probe.json"
    assert mod.main(["quick", "images=16", "designs=declared", f"out={out}"]) == 0
    from hsgprof.results import read_results

    rows = read_results(out, "experiments.probe")["rows"]
    assert {(r["design"], r["variant"]) for r in rows} == {("control-plane", "grid-only"), ("control-hidden", "grid-only"),
                                                         ("declared", "grid-only"), ("declared", "hybrid")}
    assert mod.main(["quick", "designs=nope"]) == 2
    assert "design 'nope' is not known" in capsys.readouterr().err
    assert mod.main(["quick", "images"]) == 2
    err = capsys.readouterr().err.strip()
    assert "argument 'images' is not KEY=VALUE" in err and len(err.splitlines()) == 1
    assert mod.main(["quick", "images=many"]) == 2
    assert "images='many' is not accepted; need a number (int)" in capsys.readouterr().err
