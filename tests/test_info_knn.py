"""The k-NN engine: both back ends give identical numbers, and KSG/FP match the reference implementations."""

from __future__ import annotations

import numpy as np
import pytest

from hsgprof.info import cases as C
from hsgprof.info import cmi, entropy, knn, mi


def _data(n=1500, d=2, seed=0):
    x, y = C.correlated_gaussian(d, 0.8).sample(n, np.random.default_rng(seed))
    z = np.random.default_rng(seed + 1).standard_normal((n, 1))
    return x, y, z


@pytest.mark.parametrize("d", [1, 3])
def test_tree_and_brute_backends_agree_exactly(d):
    x, y, z = _data(d=d)
    for f in (knn.ksg1, knn.ksg2, knn.mixed_mi):
        assert f(x, y, 3, backend="tree") == f(x, y, 3, backend="brute")
    assert knn.frenzel_pompe(x, y, z, 3, backend="tree") == knn.frenzel_pompe(x, y, z, 3, backend="brute")
    assert knn.kl_entropy(x, 3, backend="tree") == knn.kl_entropy(x, 3, backend="brute")


def test_one_dimensional_counts_match_brute_force_including_boundaries():
    rng = np.random.default_rng(5)
    v = np.round(rng.standard_normal(400), 2)  # many exact ties and exact-boundary distances
    r = np.abs(v - v[rng.integers(0, 400, 400)])
    r[:50] = np.nextafter(r[:50], np.inf)
    d = np.abs(v[:, None] - v[None, :])
    for inclusive in (False, True):
        ref = ((d <= r[:, None]) if inclusive else (d < r[:, None])).sum(1) - (1 if inclusive else (r > 0))
        assert np.array_equal(knn._count_1d(v, r, inclusive), ref)


def test_ksg1_and_fp_equal_ennemi_on_identical_data():
    ennemi = pytest.importorskip("ennemi")
    x, y, z = _data(d=1)
    ours = knn.ksg1(x, y, 3)
    theirs = float(np.asarray(ennemi.estimate_mi(y[:, 0], x[:, 0], k=3, preprocess=False)).ravel()[0])
    assert ours == pytest.approx(theirs, abs=1e-6)  # ennemi uses an approximate digamma
    ours_c = knn.frenzel_pompe(x, y, z, 3)
    theirs_c = float(np.asarray(ennemi.estimate_mi(y[:, 0], x[:, 0], cond=z[:, 0], k=3, preprocess=False)).ravel()[0])
    assert ours_c == pytest.approx(theirs_c, abs=1e-6)


def test_ksg1_equals_sklearn_mutual_info_regression():
    sk = pytest.importorskip("sklearn.feature_selection")
    x, y, _ = _data(d=1, n=3000)
    xs, ys = knn.standardize(x)[0], knn.standardize(y)[0]
    theirs = float(sk.mutual_info_regression(xs, ys[:, 0], n_neighbors=3, random_state=0)[0])
    assert knn.ksg1(xs, ys, 3) == pytest.approx(theirs, abs=2e-3)  # sklearn jitters every value by ~1e-10


def test_mixed_equals_ksg1_on_continuous_data_and_plugin_on_discrete():
    x, y, _ = _data(d=1)
    assert mi(x, y, "mixed", seed=0).value == pytest.approx(mi(x, y, "ksg1", seed=0).value, abs=1e-3)
    case = C.symmetric_channel(4, 0.3)
    a, b = case.sample(5000, np.random.default_rng(1))
    assert mi(a, b, "mixed").value == pytest.approx(mi(a, b, "plugin").value, abs=0.01)


def test_ksg2_kl_and_estimator_scale_handling():
    x, y, _ = _data(d=1, n=5000)
    assert mi(1000 * x, y, "ksg1", seed=0).value == pytest.approx(mi(x, y, "ksg1", seed=0).value, abs=1e-9)
    case = C.gaussian_entropy_case(2)
    (g,) = case.sample(10_000, np.random.default_rng(0))
    assert entropy(g, "kl").value == pytest.approx(case.truth, abs=0.05)
    assert entropy(3.0 * g, "kl").value == pytest.approx(case.truth + 2 * np.log(3.0), abs=0.05)
    assert abs(mi(x, y, "ksg2").value - C.gaussian_mi_truth(1, 0.8)) < 0.05


def test_cmi_mixed_handles_discrete_conditioning():
    rng = np.random.default_rng(0)
    z = rng.integers(0, 3, 4000).astype(float)
    x = z + rng.standard_normal(4000)
    y = z + rng.standard_normal(4000)  # X ⟂ Y | Z, but dependent marginally
    assert abs(cmi(x, y, z, "mixed").value) < 0.05
    assert mi(x, y, "mixed").value > 0.05
