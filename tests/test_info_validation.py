"""The ground-truth cases are right, and the validation pipeline and CLI produce their files."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import integrate, stats

from hsgprof.cli import main as cli_main
from hsgprof.info import cases as C
from hsgprof.info import validation as V
from hsgprof.info.gaussian import cmi_from_cov


def test_gaussian_truths_match_textbook_formulas():
    for d, rho in [(1, 0.5), (4, 0.9)]:
        assert C.correlated_gaussian(d, rho).truth == pytest.approx(-d / 2 * np.log(1 - rho**2))
    assert C.correlated_gaussian(4, C.rho_for_mi(4, 1.0)).truth == pytest.approx(1.0)
    assert C.gaussian_chain(1, 1).truth == pytest.approx(0.0, abs=1e-12)
    # collider X -> Z <- Y with unit noises: I(X;Y|Z) = -1/2 log(1 - r^2), r = partial correlation of X, Y given Z
    cov = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 3.0]])
    r = -1 / 2  # partial correlation: -(1*1)/sqrt((3-1)(3-1))
    assert C.gaussian_collider(1, 1).truth == pytest.approx(-0.5 * np.log(1 - r**2))
    assert cmi_from_cov(cov, [0], [1], [2]) == pytest.approx(C.gaussian_collider(1, 1).truth)


def test_mixture_truth_matches_numerical_integration():
    m = 4
    case = C.discrete_uniform_mixture(m)

    def p_y(y):  # density of Y
        return sum(1 / m * 0.5 for x in range(m) if x <= y <= x + 2)

    h_y = -integrate.quad(lambda y: p_y(y) * np.log(p_y(y)) if p_y(y) > 0 else 0.0, 0, m + 1,
                          points=list(range(m + 2)), limit=200)[0]
    assert case.truth == pytest.approx(h_y - np.log(2), abs=1e-6)


def test_student_t_truth_matches_monte_carlo_log_density_ratio():
    case = C.student_t(1, 0.5, 3.0)
    x, y = case.sample(400_000, np.random.default_rng(0))
    xy = np.c_[x, y]
    scale = np.array([[1, 0.5], [0.5, 1]])
    lj = stats.multivariate_t(loc=[0, 0], shape=scale, df=3).logpdf(xy)
    lm = stats.t(df=3).logpdf(x[:, 0]) + stats.t(df=3).logpdf(y[:, 0])
    assert case.truth == pytest.approx(float(np.mean(lj - lm)), abs=0.01)
    assert C.student_t(1, 0.0, 3.0).truth > 0.01  # dependence without correlation


def test_channel_and_entropy_truths():
    c = C.symmetric_channel(4, 0.0)
    assert c.truth == pytest.approx(np.log(4))
    assert C.symmetric_channel(4, 1.0).truth == pytest.approx(0.0, abs=1e-12)
    assert C.uniform_entropy_case(3, 2.0).truth == pytest.approx(3 * np.log(2))


def test_pipeline_writes_results_and_figures(tmp_path):
    p = V.plan("quick")
    p.sweep_n, p.sweep_d, p.sweep_reps = (200, 400), (1,), {200: 2, 400: 2}
    p.coverage_n, p.coverage_reps, p.coverage_reps_corrected = (200,), {200: 3}, {200: 2}
    p.high_mi_rho, p.high_mi_reps, p.bias_n = (0.9,), 1, 500
    rows = V.stage_sweep(p) + V.stage_coverage(p) + V.stage_high_mi(p)
    import pandas as pd

    df = pd.DataFrame(rows)
    res = {"rows": df, "summary": V.summarize(df), "pitfalls": pd.DataFrame(), "plan": p,
           "stage_seconds": {}, "crosscheck": pd.DataFrame()}
    out = V.write_validation(res, tmp_path / "info_validation.json")
    doc = json.loads((tmp_path / "info_validation.json").read_text())
    assert doc["kind"] == "info_validation" and doc["rows"] and doc["meta"]["summary"]
    assert {f.name for f in out["figures"]} >= {"info_bias_vs_n.png", "info_bias_vs_n.pdf", "info_coverage.png",
                                                "info_high_mi.pdf"}
    s = res["summary"]
    assert {"bias", "sd", "rmse", "coverage"} <= set(s.columns)
    truth = C.correlated_gaussian(1, 0.5).truth
    row = s[(s["stage"] == "sweep") & (s["method"] == "gaussian") & (s["n"] == 400) & (s["rho"] == 0.5)]
    if len(row):
        assert row["mean"].iloc[0] == pytest.approx(truth + row["bias"].iloc[0])


def test_cli_validate_crosscheck_and_errors(tmp_path, capsys):
    pytest.importorskip("ennemi")
    out = tmp_path / "v.json"
    assert cli_main(["info", "validate", "--quick", "--stages", "crosscheck", "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    cc = [r for r in doc["rows"] if r["method"] == "ennemi"]
    assert cc and max(abs(r["diff_vs_ours"]) for r in cc) < 1e-6
    assert cli_main(["info", "validate", "--stages", "nope"]) == 2
    assert "unknown validation stage 'nope'" in capsys.readouterr().err
    assert cli_main(["info", "methods"]) == 0
    assert "ksg_gc" in capsys.readouterr().out


def test_unknown_plan_is_refused():
    with pytest.raises(ValueError, match="accepted: quick, full"):
        V.plan("medium")
