"""Ground-truth cases: distributions whose entropy, MI or CMI is known in closed form.

Tests and the validation script share these, so a number checked by a test is the number the
report shows.  Every case samples from a ``numpy.random.Generator`` and carries its truth
(nats), computed here from the closed form, never typed in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from scipy.special import digamma, gammaln, xlogy

from hsgprof.info.gaussian import cmi_from_cov, entropy_from_cov, mi_from_cov

Sampler = Callable[[int, np.random.Generator], tuple[np.ndarray, ...]]


@dataclass(frozen=True)
class Case:
    """One ground-truth distribution: ``sample(n, rng)`` returns (x, y) or (x, y, z) or (x,)."""

    name: str
    quantity: str  # "mi", "cmi" or "entropy"
    truth: float   # nats
    sampler: Sampler = field(repr=False)
    data: str = "continuous"  # "continuous", "mixed" (discrete x, continuous y) or "discrete"
    params: dict[str, Any] = field(default_factory=dict)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
        return self.sampler(n, rng)


def _gauss_pair(n: int, d: int, rho: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, d))
    y = rho * x + np.sqrt(1.0 - rho**2) * rng.standard_normal((n, d))
    return x, y


def gaussian_mi_truth(d: int, rho: float) -> float:
    """I(X;Y) for d independent coordinate pairs each with correlation rho: −(d/2) log(1 − rho²)."""
    cov = np.block([[np.eye(d), rho * np.eye(d)], [rho * np.eye(d), np.eye(d)]])
    return mi_from_cov(cov, list(range(d)), list(range(d, 2 * d)))


def rho_for_mi(d: int, mi: float) -> float:
    """The per-coordinate correlation that gives ``mi`` nats with d coordinate pairs."""
    return float(np.sqrt(1.0 - np.exp(-2.0 * mi / d)))


def correlated_gaussian(d: int, rho: float) -> Case:
    """X, Y ∈ R^d, coordinate i of Y correlated rho with coordinate i of X."""
    return Case(f"gauss_d{d}_rho{rho:g}", "mi", gaussian_mi_truth(d, rho),
                lambda n, rng: _gauss_pair(n, d, rho, rng), params={"d": d, "rho": rho})


def independent(d: int, dist: str = "gaussian") -> Case:
    """Independent X, Y (I = 0), Gaussian or uniform."""
    def s(n, rng):
        if dist == "uniform":
            return rng.random((n, d)), rng.random((n, d))
        return rng.standard_normal((n, d)), rng.standard_normal((n, d))
    return Case(f"independent_{dist}_d{d}", "mi", 0.0, s, params={"d": d, "rho": 0.0, "dist": dist})


def monotone_transformed(d: int, rho: float) -> Case:
    """Correlated Gaussians passed through exp on X and a cube on Y: MI unchanged, distribution far from Gaussian."""
    def s(n, rng):
        x, y = _gauss_pair(n, d, rho, rng)
        return np.exp(x), y**3
    return Case(f"monotone_d{d}_rho{rho:g}", "mi", gaussian_mi_truth(d, rho), s, params={"d": d, "rho": rho})


def _linear_gaussian(coefs: dict[str, dict[str, float]], order: list[str]):
    """Covariance of a linear-Gaussian structural model v = sum_p c[v][p] p + N(0, 1)."""
    m = len(order)
    b = np.zeros((m, m))
    for v, parents in coefs.items():
        for p, c in parents.items():
            b[order.index(v), order.index(p)] = c
    a = np.linalg.inv(np.eye(m) - b)
    return a @ a.T, a


def _sem_case(name: str, coefs: dict[str, dict[str, float]], params: dict) -> Case:
    order = ["x", "z", "y"]
    cov, a = _linear_gaussian(coefs, order)
    truth = cmi_from_cov(cov, [0], [2], [1])

    def s(n, rng):
        v = rng.standard_normal((n, 3)) @ a.T
        return v[:, [0]], v[:, [2]], v[:, [1]]
    return Case(name, "cmi", truth, s, params={**params, "d": 1, "mi_xy": mi_from_cov(cov, [0], [2])})


def gaussian_chain(a: float = 1.0, b: float = 1.0, direct: float = 0.0) -> Case:
    """Chain X → Z → Y (I(X;Y|Z) = 0), optionally with a direct edge X → Y (I(X;Y|Z) > 0)."""
    coefs = {"z": {"x": a}, "y": {"z": b, **({"x": direct} if direct else {})}}
    return _sem_case(f"chain_a{a:g}_b{b:g}_c{direct:g}", coefs, {"a": a, "b": b, "direct": direct})


def gaussian_collider(a: float = 1.0, b: float = 1.0) -> Case:
    """Collider X → Z ← Y: I(X;Y) = 0 but I(X;Y|Z) > 0."""
    coefs = {"z": {"x": a, "y": b}}
    order = ["x", "y", "z"]
    cov, mat = _linear_gaussian(coefs, order)
    truth = cmi_from_cov(cov, [0], [1], [2])

    def s(n, rng):
        v = rng.standard_normal((n, 3)) @ mat.T
        return v[:, [0]], v[:, [1]], v[:, [2]]
    return Case(f"collider_a{a:g}_b{b:g}", "cmi", truth, s, params={"a": a, "b": b, "d": 1, "mi_xy": 0.0})


def discrete_uniform_mixture(m: int = 4) -> Case:
    """X uniform on {0..m−1}, Y | X uniform on [X, X+2] (Gao et al. 2017): I = log m − (m−1)/m · log 2."""
    truth = float(np.log(m) - (m - 1) / m * np.log(2))

    def s(n, rng):
        x = rng.integers(0, m, size=n).astype(float)
        return x[:, None], (x + 2.0 * rng.random(n))[:, None]
    return Case(f"mixture_m{m}", "mi", truth, s, data="mixed", params={"m": m, "d": 1})


def symmetric_channel(m: int = 4, err: float = 0.3) -> Case:
    """Discrete X uniform on m symbols; Y = X with probability 1 − err, else uniform on all m symbols."""
    p_same = 1 - err + err / m
    h_cond = -(xlogy(p_same, p_same) + (m - 1) * xlogy(err / m, err / m))
    truth = float(np.log(m) - h_cond)

    def s(n, rng):
        x = rng.integers(0, m, size=n)
        y = np.where(rng.random(n) < err, rng.integers(0, m, size=n), x)
        return x[:, None].astype(float), y[:, None].astype(float)
    return Case(f"channel_m{m}_e{err:g}", "mi", truth, s, data="discrete", params={"m": m, "err": err, "d": 1})


def _t_entropy(d: int, nu: float, logdet: float) -> float:
    """Differential entropy of a d-variate Student-t with nu dof and scale matrix of log-determinant ``logdet``."""
    return (0.5 * logdet + d / 2 * np.log(nu * np.pi) + gammaln(nu / 2) - gammaln((nu + d) / 2)
            + (nu + d) / 2 * (digamma((nu + d) / 2) - digamma(nu / 2)))


def student_t(d: int, rho: float, nu: float) -> Case:
    """Multivariate Student-t (X, Y) with the scale matrix of :func:`correlated_gaussian`.

    Its copula is not Gaussian (tail dependence; MI > 0 even at rho = 0), so it checks the
    methods that are exact only for Gaussian copulas.  Marginals of a multivariate t are t
    with the same nu, so I = H(X) + H(Y) − H(X, Y) in closed form.
    """
    truth = float(2 * _t_entropy(d, nu, 0.0) - _t_entropy(2 * d, nu, d * np.log(1 - rho**2)))

    def s(n, rng):
        x, y = _gauss_pair(n, d, rho, rng)
        w = np.sqrt(nu / rng.chisquare(nu, size=(n, 1)))
        return x * w, y * w
    return Case(f"student_d{d}_rho{rho:g}_nu{nu:g}", "mi", truth, s, params={"d": d, "rho": rho, "nu": nu})


def gaussian_entropy_case(d: int, rho: float = 0.5) -> Case:
    """Entropy of an equicorrelated d-variate Gaussian with unequal scales."""
    scales = np.linspace(0.5, 2.0, d)
    corr = np.full((d, d), rho) + (1 - rho) * np.eye(d)
    cov = corr * np.outer(scales, scales)
    chol = np.linalg.cholesky(cov)
    return Case(f"gauss_entropy_d{d}", "entropy", entropy_from_cov(cov),
                lambda n, rng: (rng.standard_normal((n, d)) @ chol.T,), params={"d": d, "rho": rho})


def uniform_entropy_case(d: int, width: float = 2.0) -> Case:
    """Uniform on a d-cube of side ``width``: H = d log(width)."""
    return Case(f"uniform_entropy_d{d}", "entropy", float(d * np.log(width)),
                lambda n, rng: (width * rng.random((n, d)),), params={"d": d, "width": width})
