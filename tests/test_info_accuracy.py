"""The issue's accuracy targets, checked against closed-form truths (never against typed-in numbers).

Default tests check every target at a cheaper, still statistically sound setting; the
``slow`` ones sweep more cases and trials.  Tolerances are the issue's: |bias| <= 0.05 nats
for KSG-1 / Frenzel–Pompe at N = 10,000, and >= 90 % coverage for 95 % intervals.
"""

from __future__ import annotations

import numpy as np
import pytest

from hsgprof.info import cases as C
from hsgprof.info import cmi, entropy, mi
from hsgprof.info.validation import estimate_case

TOL = 0.05  # nats, from the issue
N = 10_000


def mean_error(case: C.Case, method: str, reps: int = 3, n: int = N, **opts) -> float:
    errs = []
    for rep in range(reps):
        data = case.sample(n, np.random.default_rng([rep, 17]))
        errs.append(estimate_case(case, method, data, seed=rep, **opts).value - case.truth)
    return float(np.mean(errs))


def coverage(case: C.Case, method: str, trials: int, n: int) -> float:
    hits = 0
    for t in range(trials):
        data = case.sample(n, np.random.default_rng([t, 99]))
        r = estimate_case(case, method, data, seed=t, ci=True)
        hits += r.ci[0] <= case.truth <= r.ci[1]
    return hits / trials


# --------------------------------------------------------------------------- KSG-1 / FP bias targets

@pytest.mark.parametrize("case", [C.correlated_gaussian(1, 0.9), C.correlated_gaussian(2, 0.9),
                                  C.correlated_gaussian(2, 0.5), C.correlated_gaussian(4, C.rho_for_mi(4, 0.5)),
                                  C.independent(1)], ids=lambda c: c.name)
def test_ksg1_bias_within_tolerance(case):
    assert abs(mean_error(case, "ksg1")) <= TOL


@pytest.mark.xfail(strict=True, reason="plain KSG-1's own bias misses the 0.05-nat target at d=4 per variable, "
                                       "I=1 nat, N=10,000 (ennemi and scikit-learn agree with it); ksg_gc meets it")
def test_ksg1_bias_at_d4_one_nat():
    assert abs(mean_error(C.correlated_gaussian(4, C.rho_for_mi(4, 1.0)), "ksg1")) <= TOL


def test_ksg_gc_bias_at_d4_one_nat():
    assert abs(mean_error(C.correlated_gaussian(4, C.rho_for_mi(4, 1.0)), "ksg_gc")) <= TOL


@pytest.mark.parametrize("case", [C.gaussian_chain(1, 1), C.gaussian_chain(2, 2), C.gaussian_chain(1, 1, 0.5),
                                  C.gaussian_collider(1, 1)], ids=lambda c: c.name)
def test_fp_cmi_on_gaussian_chains_and_collider(case):
    assert abs(mean_error(case, "fp", reps=2)) <= TOL


# --------------------------------------------------------------------------- high MI

def test_high_mi_ksg1_bias_is_reported_and_ksg_gc_does_measurably_better():
    case = C.correlated_gaussian(4, 0.9)  # truth 3.32 nats
    e_ksg = mean_error(case, "ksg1", reps=2)
    e_gc = mean_error(case, "ksg_gc", reps=2)
    assert e_ksg < -0.2  # the documented failure of plain KSG is real on this machine's implementation
    assert abs(e_gc) <= TOL
    assert abs(e_gc) < abs(e_ksg) - 0.2


def test_ksg_gc_reports_its_parts():
    x, y = C.correlated_gaussian(4, 0.9).sample(3000, np.random.default_rng(0))
    r = mi(x, y, "ksg_gc", seed=0)
    d = r.details
    assert r.value == pytest.approx(d["ksg_raw"] - d["reference_bias"])
    assert d["reference_bias"] < -0.2 and r.params["n_ref"] == 4


# --------------------------------------------------------------------------- other methods on their cases

def test_parametric_methods_and_monotone_invariance():
    g = C.correlated_gaussian(2, 0.9)
    assert abs(mean_error(g, "gaussian", reps=2)) <= 0.02
    mono = C.monotone_transformed(1, 0.9)
    assert abs(mean_error(mono, "copula", reps=2)) <= 0.02  # invariant by construction
    assert abs(mean_error(mono, "ksg1", reps=2)) <= TOL
    assert mean_error(mono, "gaussian", reps=1) < -0.2  # Gaussian assumption broken: large error, as expected


def test_mixed_estimator_on_discrete_continuous_mixture():
    case = C.discrete_uniform_mixture(4)
    assert abs(mean_error(case, "mixed", reps=2)) <= TOL


def test_discrete_estimators_and_miller_madow_correction():
    # entropy of 8 equiprobable symbols from N = 50: plug-in is biased low by about (m-1)/(2N)
    hp, hm = [], []
    for rep in range(200):
        s = np.random.default_rng([rep, 3]).integers(0, 8, 50)
        hp.append(entropy(s, "plugin").value - np.log(8))
        hm.append(entropy(s, "miller_madow").value - np.log(8))
    assert np.mean(hp) < -0.04 and abs(np.mean(hm)) < 0.02
    case = C.symmetric_channel(6, 0.5)
    e_plug = mean_error(case, "plugin", reps=200, n=100)
    e_mm = mean_error(case, "miller_madow", reps=200, n=100)
    assert e_plug > 0.05 and abs(e_mm) < abs(e_plug)
    assert abs(mean_error(case, "plugin", reps=3, n=N)) <= 0.02


def test_kl_and_gaussian_entropy():
    for case in (C.gaussian_entropy_case(3), C.uniform_entropy_case(2)):
        assert abs(mean_error(case, "kl", reps=2)) <= TOL
    assert abs(mean_error(C.gaussian_entropy_case(3), "gaussian", reps=2)) <= 0.02


def test_neural_bounds_are_lower_bounds_that_learn():
    case = C.correlated_gaussian(1, 0.9)
    x, y = case.sample(3000, np.random.default_rng(0))
    for method in ("infonce", "nwj"):
        r = mi(x, y, method, ci=True, test=True, seed=0)
        assert r.value <= case.truth + 3 * r.se  # a lower bound, up to held-out noise
        assert r.value >= 0.6 * case.truth  # and it learned most of the dependence
        assert r.p_value < 1e-6
    xi, yi = C.independent(1).sample(2000, np.random.default_rng(1))
    r = mi(xi, yi, "infonce", test=True, seed=0)
    assert r.value <= 3 * mi(xi, yi, "infonce", ci=True, seed=0).se


def test_probe_lower_bounds_mi_with_discrete_labels():
    case = C.discrete_uniform_mixture(4)
    labels, feats = case.sample(4000, np.random.default_rng(0))
    r = mi(feats, labels, "probe", ci=True, test=True, seed=0)
    assert r.value <= case.truth + 3 * r.se
    assert r.value >= case.truth - 0.15
    assert r.p_value < 1e-6 and r.details["classes"] == 4


# --------------------------------------------------------------------------- intervals and tests

@pytest.mark.parametrize("case, method", [(C.correlated_gaussian(1, 0.9), "ksg1"),
                                          (C.gaussian_chain(1, 1, 0.5), "fp")], ids=["ksg1", "fp"])
def test_subsample_interval_coverage(case, method):
    # 100 trials: if the true coverage were 95 %, fewer than 90 hits has probability ~1 %.
    assert coverage(case, method, trials=100, n=1000 if method == "ksg1" else 500) >= 0.90


def test_plain_bootstrap_pitfall_is_real_and_refused():
    case = C.correlated_gaussian(1, 0.5)
    x, y = case.sample(1000, np.random.default_rng(0))
    full = mi(x, y, seed=0).value
    rng = np.random.default_rng(1)
    with pytest.warns(UserWarning, match="ties"):  # the duplicated rows are ties
        boots = [mi(x[i], y[i], seed=0).value for i in (rng.integers(0, 1000, 1000) for _ in range(10))]
    assert np.mean(boots) - full > 0.3  # duplicated rows inflate KSG: why ci="bootstrap" is refused
    sub = mi(x, y, ci=True, seed=0)
    assert sub.ci[0] < full < sub.ci[1] and sub.ci_method == "subsample"


def test_permutation_tests_detect_dependence_and_keep_independence():
    x, y = C.correlated_gaussian(1, 0.3).sample(1000, np.random.default_rng(0))
    assert mi(x, y, test=True, n_perm=99, seed=0).p_value <= 0.01
    xi, yi = C.independent(1).sample(1000, np.random.default_rng(1))
    assert mi(xi, yi, test=True, n_perm=99, seed=0).p_value > 0.05
    ch = C.gaussian_chain(1, 1, 0.5)
    assert cmi(*ch.sample(2000, np.random.default_rng(2)), test=True, n_perm=99, seed=0).p_value <= 0.01


def test_local_permutation_keeps_the_null_where_full_permutation_does_not():
    """Under X ⟂ Y | Z with strong X–Z dependence, local permutation rejects near alpha."""
    case = C.gaussian_chain(2, 2)
    rejections = 0
    trials = 30
    for t in range(trials):
        x, y, z = case.sample(500, np.random.default_rng([t, 5]))
        rejections += cmi(x, y, z, test=True, n_perm=49, seed=t).p_value <= 0.05
    # expected 1.5 of 30 at a valid 5 % level; 6 or more has probability < 1 % under a valid test
    assert rejections <= 5


@pytest.mark.slow
@pytest.mark.parametrize("case", [C.correlated_gaussian(2, 0.9), C.correlated_gaussian(1, 0.5),
                                  C.gaussian_chain(1, 1)], ids=lambda c: c.name)
def test_slow_coverage_more_cases(case):
    method = "ksg1" if case.quantity == "mi" else "fp"
    assert coverage(case, method, trials=200, n=1000) >= 0.90


@pytest.mark.slow
@pytest.mark.parametrize("rho", [0.3, 0.5, 0.7, 0.8, 0.9, 0.95])
def test_slow_ksg_gc_high_mi_sweep(rho):
    assert abs(mean_error(C.correlated_gaussian(4, rho), "ksg_gc", reps=5)) <= TOL


@pytest.mark.slow
@pytest.mark.parametrize("case", [C.correlated_gaussian(d, r) for d in (1, 2) for r in (0.1, 0.5, 0.7, 0.9)]
                         + [C.correlated_gaussian(4, C.rho_for_mi(4, m)) for m in (0.25, 0.5)],
                         ids=lambda c: c.name)
def test_slow_ksg1_bias_grid(case):
    assert abs(mean_error(case, "ksg1", reps=10)) <= TOL
