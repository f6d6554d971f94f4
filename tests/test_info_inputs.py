"""Bad input gives one-line ValueErrors naming the bad value and what is accepted; good input is accepted in every form."""

from __future__ import annotations

import numpy as np
import pytest

from hsgprof.errors import HsgprofError
from hsgprof.info import InfoResult, METHODS, cmi, entropy, methods_for, mi

RNG = np.random.default_rng(0)
X = RNG.standard_normal((200, 2))
Y = X[:, :1] + RNG.standard_normal((200, 1))
Z = RNG.standard_normal(200)


def _one_line(exc: pytest.ExceptionInfo) -> str:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    assert isinstance(exc.value, ValueError)
    assert "accepted" in msg, msg
    return msg


@pytest.mark.parametrize("call, needle", [
    (lambda: mi(X, Y[:150]), "N=150"),
    (lambda: cmi(X, Y, Z[:10]), "z has N=10"),
    (lambda: mi(np.where(np.arange(200)[:, None] == 5, np.nan, X), Y), "NaN/inf"),
    (lambda: mi(X, np.full((200, 1), np.inf)), "NaN/inf"),
    (lambda: mi(X[:3], Y[:3], k=3), "N=3 samples but k=3"),
    (lambda: mi(X, Y, k=0), "k=0"),
    (lambda: mi(np.c_[X, np.ones(200)], Y), "column 2 is constant"),
    (lambda: mi(X, Y, method="nope"), "unknown method 'nope'"),
    (lambda: cmi(X, Y, Z, method="ksg1"), "unknown method 'ksg1' for cmi"),
    (lambda: entropy(X, method="fp"), "unknown method 'fp' for entropy"),
    (lambda: mi(X, Y, kk=3), "unknown option(s) kk"),
    (lambda: mi(X, Y, ci="bootstrap"), "ci='bootstrap' duplicates rows"),
    (lambda: mi(X, Y, ci="jackknife", method="gaussian"), "unknown ci"),
    (lambda: mi(X, Y, units="bans"), "unknown units"),
    (lambda: mi(X, Y, seed=-1), "seed=-1"),
    (lambda: mi(X, Y, backend="gpu"), "unknown backend"),
    (lambda: mi(X, Y, method="plugin"), "distinct values"),
    (lambda: mi(X, Y, method="probe"), "distinct values"),
    (lambda: mi(X, Y, ci=True, level=1.5), "level=1.5"),
    (lambda: mi(np.zeros((5, 2, 2)), Y[:5]), "shape (5, 2, 2)"),
    (lambda: mi(np.array(["a"] * 200), Y), "dtype"),
    (lambda: entropy(X, test=True), "unknown option(s) test"),
])
def test_bad_input_is_one_line_value_error(call, needle):
    with pytest.raises(HsgprofError) as exc:
        call()
    assert needle in _one_line(exc)


def test_ties_without_jitter_are_refused_with_the_remedy():
    x = np.repeat(np.arange(10.0), 20)[:, None]
    y = np.repeat(np.arange(10.0), 20)[:, None] % 3
    with pytest.raises(HsgprofError) as exc:
        mi(x, y, method="ksg1", jitter=None)
    assert "mixed" in _one_line(exc)


def test_accepts_torch_lists_and_1d():
    torch = pytest.importorskip("torch")
    a = mi(torch.from_numpy(X[:, 0]), torch.from_numpy(Y[:, 0]), seed=0)
    b = mi(list(X[:, 0]), Y[:, 0], seed=0)
    c = mi(X[:, :1], Y, seed=0)
    assert a.value == b.value == c.value
    assert a.dims == {"x": 1, "y": 1} and a.n == 200


def test_result_records_method_params_seed_and_converts_units():
    r = mi(X, Y, method="ksg1", k=4, seed=123)
    assert isinstance(r, InfoResult)
    assert r.method == "ksg1" and r.params["k"] == 4 and r.seed == 123 and r.n == 200
    b = r.to("bits")
    assert b.units == "bits" and b.value == pytest.approx(r.value / np.log(2))
    assert b.nats == pytest.approx(r.value) and r.bits == pytest.approx(b.value)
    assert mi(X, Y, units="bits", k=4, seed=123).value == pytest.approx(b.value)
    row = r.as_dict()
    assert row["method"] == "ksg1" and row["ci_low"] is None


def test_seed_reproduces_every_random_step():
    x = np.round(X, 1)  # ties: jitter is drawn from the seed
    y = np.round(Y, 1)
    with pytest.warns(UserWarning, match="mixed"):
        a = mi(x, y, ci=True, test=True, n_perm=9, seed=7)
    with pytest.warns(UserWarning):
        b = mi(x, y, ci=True, test=True, n_perm=9, seed=7)
    assert (a.value, a.ci, a.p_value) == (b.value, b.ci, b.p_value)
    assert a.details["jitter_applied"] and a.details["tied_columns"] == 3
    g = mi(X, Y, seed=np.random.default_rng(3))
    assert isinstance(g.seed, int) and mi(X, Y, seed=g.seed).value == g.value
    fresh = mi(X, Y)
    assert isinstance(fresh.seed, int)


def test_every_method_is_listed_with_its_quantities():
    assert set(methods_for("mi")) >= {"ksg1", "ksg2", "ksg_gc", "mixed", "gaussian", "copula", "plugin",
                                      "miller_madow", "infonce", "nwj", "probe"}
    assert set(methods_for("cmi")) >= {"fp", "fp_gc", "mixed", "gaussian", "copula", "plugin", "miller_madow"}
    assert set(methods_for("entropy")) >= {"kl", "gaussian", "plugin", "miller_madow"}
    assert all(m.summary for m in METHODS.values())
