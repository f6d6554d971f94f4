"""Closed-form estimators under a Gaussian assumption, and Gaussian-copula MI (Ince et al. 2017).

``gaussian``: entropies of a multivariate normal with the sample covariance, combined into
MI and CMI.  Exact (up to sampling error) when the data are jointly Gaussian; otherwise it
measures only the linear (second-order) dependence.

``copula``: each column is first replaced by the normal quantile of its rank (the "copula
normalisation"), which makes every marginal exactly Gaussian without changing MI, then the
Gaussian formula is applied.  The result is exact for any monotone transform of a Gaussian
and a lower bound on MI in general (Ince et al. 2017, Hum. Brain Mapp. 38:1541).

Both use the analytic bias correction of the log-determinant of a Wishart matrix
(``bias_correct=True``), so their error at N = 100 is already small.
"""

from __future__ import annotations

import numpy as np
from scipy.special import digamma
from scipy.stats import norm, rankdata

from hsgprof.errors import HsgprofError


def copnorm(a: np.ndarray) -> np.ndarray:
    """Copula-normalise each column: ``norm.ppf(rank / (N + 1))`` (ties get their average rank)."""
    return norm.ppf(rankdata(a, axis=0) / (a.shape[0] + 1))


def logdet_cov(a: np.ndarray, *, bias_correct: bool = True, what: str = "x") -> float:
    """log det of the sample covariance of ``a`` (N, d); with ``bias_correct`` an unbiased estimate of log det Σ.

    E[log det S] = log det Σ + d log(2/(N-1)) + sum_{i=1..d} ψ((N-i)/2) for the covariance S of N
    Gaussian samples; the correction subtracts those terms.
    """
    n, d = a.shape
    if n <= d + 1:
        raise HsgprofError(f"N={n} samples for a {d}-dimensional covariance of {what}; accepted: N > d + 1")
    c = np.atleast_2d(np.cov(a, rowvar=False))
    sign, ld = np.linalg.slogdet(c)
    if sign <= 0 or not np.isfinite(ld):
        raise HsgprofError(f"the covariance of {what} is singular (collinear or duplicated columns); "
                           "accepted: linearly independent columns")
    if bias_correct:
        ld -= d * np.log(2.0 / (n - 1)) + float(np.sum(digamma((n - np.arange(1, d + 1)) / 2.0)))
    return float(ld)


def gaussian_entropy(x: np.ndarray, *, bias_correct: bool = True) -> float:
    """Differential entropy of N(μ, Σ̂): ½ (d log 2πe + log det Σ̂), in nats."""
    d = x.shape[1]
    return 0.5 * (d * np.log(2 * np.pi * np.e) + logdet_cov(x, bias_correct=bias_correct))


def gaussian_mi(x: np.ndarray, y: np.ndarray, *, bias_correct: bool = True) -> float:
    """I(X;Y) = ½ log(det Σx det Σy / det Σxy) for jointly Gaussian data, in nats."""
    xy = np.hstack([x, y])
    return 0.5 * (logdet_cov(x, bias_correct=bias_correct, what="x") + logdet_cov(y, bias_correct=bias_correct, what="y")
                  - logdet_cov(xy, bias_correct=bias_correct, what="(x, y)"))


def gaussian_cmi(x: np.ndarray, y: np.ndarray, z: np.ndarray, *, bias_correct: bool = True) -> float:
    """I(X;Y|Z) = ½ log(det Σxz det Σyz / (det Σz det Σxyz)) for jointly Gaussian data, in nats."""
    bc = bias_correct
    return 0.5 * (logdet_cov(np.hstack([x, z]), bias_correct=bc, what="(x, z)")
                  + logdet_cov(np.hstack([y, z]), bias_correct=bc, what="(y, z)")
                  - logdet_cov(z, bias_correct=bc, what="z")
                  - logdet_cov(np.hstack([x, y, z]), bias_correct=bc, what="(x, y, z)"))


def copula_mi(x: np.ndarray, y: np.ndarray, *, bias_correct: bool = True) -> float:
    """Gaussian-copula MI: :func:`gaussian_mi` on copula-normalised columns."""
    return gaussian_mi(copnorm(x), copnorm(y), bias_correct=bias_correct)


def copula_cmi(x: np.ndarray, y: np.ndarray, z: np.ndarray, *, bias_correct: bool = True) -> float:
    """Gaussian-copula CMI: :func:`gaussian_cmi` on copula-normalised columns."""
    return gaussian_cmi(copnorm(x), copnorm(y), copnorm(z), bias_correct=bias_correct)


# ----------------------------------------------------------------------------- closed-form truths

def mi_from_cov(cov: np.ndarray, ix: list[int], iy: list[int]) -> float:
    """Exact I(X;Y) of a Gaussian with covariance ``cov``; X, Y are the listed coordinates."""
    def ld(idx: list[int]) -> float:
        return float(np.linalg.slogdet(cov[np.ix_(idx, idx)])[1])
    return 0.5 * (ld(ix) + ld(iy) - ld(ix + iy))


def cmi_from_cov(cov: np.ndarray, ix: list[int], iy: list[int], iz: list[int]) -> float:
    """Exact I(X;Y|Z) of a Gaussian with covariance ``cov``."""
    def ld(idx: list[int]) -> float:
        return float(np.linalg.slogdet(cov[np.ix_(idx, idx)])[1])
    return 0.5 * (ld(ix + iz) + ld(iy + iz) - ld(iz) - ld(ix + iy + iz))


def entropy_from_cov(cov: np.ndarray) -> float:
    """Exact differential entropy of a Gaussian with covariance ``cov``."""
    d = cov.shape[0]
    return 0.5 * (d * np.log(2 * np.pi * np.e) + float(np.linalg.slogdet(cov)[1]))
