"""High-MI correction: k-NN estimators with a Gaussian-copula reference bias correction.

Why: KSG assumes the joint density is roughly uniform inside each k-NN ball.  When the
dependence is strong the joint mass lies near a thin manifold, the assumption fails and KSG
underestimates, badly when the truth is large (d = 4 per variable, ρ = 0.9, truth 3.32 nats:
about −0.37 nats at N = 10,000).

What: ``ksg_gc`` (and ``fp_gc`` for CMI) measures that bias on data whose answer is known and
removes it.

1. Copula-normalise every column (rank → normal quantile).  MI is unchanged, marginals become
   exactly Gaussian.
2. Run KSG-1 (Frenzel–Pompe for CMI) on the normalised data: ``raw``.
3. Draw ``n_ref`` Gaussian surrogates with the same N and the same sample correlation
   matrix, normalise them the same way, and on each compute KSG minus the (bias-corrected)
   closed-form Gaussian MI of that surrogate.  Their mean ``b`` is KSG's bias for a
   distribution with this copula correlation at this N and k.  (Using the surrogate's own
   closed-form estimate as a control variate cancels most of its sampling noise.)
4. Return ``raw − b``.

For any distribution with a Gaussian copula (Gaussian data and every monotone transform of it)
the correction is exact in expectation; for other dependence it removes the part of the bias
that the Gaussian reference shares, and the estimator stays consistent because both KSG terms
converge (``b → 0`` as N grows).  The validation suite reports its error on Student-t data,
whose copula is not Gaussian, next to the Gaussian cases.
"""

from __future__ import annotations

import numpy as np

from hsgprof.errors import HsgprofError
from hsgprof.info import knn
from hsgprof.info.gaussian import copnorm, gaussian_cmi, gaussian_mi


def _surrogates(corr: np.ndarray, n: int, n_ref: int, rng: np.random.Generator, what: str):
    try:
        chol = np.linalg.cholesky(corr)
    except np.linalg.LinAlgError:
        raise HsgprofError(f"the copula correlation of {what} is singular (collinear columns); "
                           "accepted: linearly independent columns") from None
    for _ in range(n_ref):
        yield copnorm(rng.standard_normal((n, corr.shape[0])) @ chol.T)


def ksg_gc(x: np.ndarray, y: np.ndarray, k: int, rng: np.random.Generator, *, n_ref: int = 4,
           jitter: float | None = 1e-10, backend: str = "auto") -> tuple[float, dict]:
    """KSG-1 minus its bias on Gaussian-copula surrogates (see module docstring); value in nats and details."""
    xc, yc = copnorm(x), copnorm(y)
    (xj, yj), info = knn._prepare([xc, yc], normalize=False, jitter=jitter, rng=rng)
    raw = knn.ksg1(xj, yj, k, backend=backend)
    dx = x.shape[1]
    corr = np.corrcoef(np.hstack([xc, yc]), rowvar=False)
    refs = [knn.ksg1(s[:, :dx], s[:, dx:], k, backend=backend) - gaussian_mi(s[:, :dx], s[:, dx:])
            for s in _surrogates(corr, x.shape[0], n_ref, rng, "(x, y)")]
    bias = float(np.mean(refs))
    return raw - bias, {"ksg_raw": raw, "reference_bias": bias,
                        "reference_bias_se": float(np.std(refs, ddof=1) / np.sqrt(n_ref)) if n_ref > 1 else None,
                        "gaussian_copula_mi": gaussian_mi(xc, yc), **info}


def fp_gc(x: np.ndarray, y: np.ndarray, z: np.ndarray, k: int, rng: np.random.Generator, *, n_ref: int = 4,
          jitter: float | None = 1e-10, backend: str = "auto") -> tuple[float, dict]:
    """Frenzel–Pompe CMI minus its bias on Gaussian-copula surrogates; value in nats and details."""
    xc, yc, zc = copnorm(x), copnorm(y), copnorm(z)
    (xj, yj, zj), info = knn._prepare([xc, yc, zc], normalize=False, jitter=jitter, rng=rng)
    raw = knn.frenzel_pompe(xj, yj, zj, k, backend=backend)
    dx, dy = x.shape[1], y.shape[1]
    corr = np.corrcoef(np.hstack([xc, yc, zc]), rowvar=False)
    refs = []
    for s in _surrogates(corr, x.shape[0], n_ref, rng, "(x, y, z)"):
        sx, sy, sz = s[:, :dx], s[:, dx:dx + dy], s[:, dx + dy:]
        refs.append(knn.frenzel_pompe(sx, sy, sz, k, backend=backend) - gaussian_cmi(sx, sy, sz))
    bias = float(np.mean(refs))
    return raw - bias, {"fp_raw": raw, "reference_bias": bias,
                        "reference_bias_se": float(np.std(refs, ddof=1) / np.sqrt(n_ref)) if n_ref > 1 else None,
                        "gaussian_copula_cmi": gaussian_cmi(xc, yc, zc), **info}
