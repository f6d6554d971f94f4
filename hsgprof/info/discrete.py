"""Plug-in and Miller–Madow estimators for discrete data.

Each row of an ``(N, d)`` array is one symbol; symbols are counted with ``numpy.unique``.
``plugin`` is the maximum-likelihood entropy −Σ p̂ log p̂, biased low by about (m − 1)/(2N)
for m observed symbols; ``miller_madow`` adds that first-order correction back.  MI and CMI are
sums and differences of entropies, so the corrections partly cancel but not fully.
"""

from __future__ import annotations

import numpy as np

from hsgprof.errors import HsgprofError

MAX_DISTINCT_FRACTION = 0.5  # more distinct rows than this fraction of N: the data are not discrete


def symbols(a: np.ndarray, what: str = "x") -> np.ndarray:
    """Integer codes 0..m-1 for the distinct rows of ``a``; refuses data that look continuous."""
    _, inv = np.unique(a, axis=0, return_inverse=True)
    inv = inv.reshape(-1)
    m, n = int(inv.max()) + 1, a.shape[0]
    if m > MAX_DISTINCT_FRACTION * n and n >= 10:
        raise HsgprofError(f"{what} has {m} distinct values in N={n} rows; plugin/miller_madow need discrete data "
                           f"(at most {MAX_DISTINCT_FRACTION:.0%} distinct); accepted: integer or categorical codes, "
                           "or use ksg1/mixed for continuous data")
    return inv


def _join(*codes: np.ndarray) -> np.ndarray:
    out = codes[0].astype(np.int64)
    for c in codes[1:]:
        _, out = np.unique(out * (int(c.max()) + 1) + c, return_inverse=True)
        out = out.reshape(-1)
    return out


def entropy_codes(codes: np.ndarray, *, miller_madow: bool = False) -> float:
    """Plug-in (optionally Miller–Madow-corrected) entropy of integer codes, in nats."""
    n = codes.size
    c = np.bincount(codes)
    c = c[c > 0]
    h = float(np.log(n) - np.sum(c * np.log(c)) / n)
    if miller_madow:
        h += (c.size - 1) / (2.0 * n)
    return h


def entropy(x: np.ndarray, *, miller_madow: bool = False) -> float:
    """H(X) for discrete ``x`` (rows are symbols)."""
    return entropy_codes(symbols(x, "x"), miller_madow=miller_madow)


def mi(x: np.ndarray, y: np.ndarray, *, miller_madow: bool = False) -> float:
    """I(X;Y) = H(X) + H(Y) − H(X,Y) for discrete data."""
    cx, cy = symbols(x, "x"), symbols(y, "y")
    h = lambda c: entropy_codes(c, miller_madow=miller_madow)  # noqa: E731
    return h(cx) + h(cy) - h(_join(cx, cy))


def cmi(x: np.ndarray, y: np.ndarray, z: np.ndarray, *, miller_madow: bool = False) -> float:
    """I(X;Y|Z) = H(X,Z) + H(Y,Z) − H(Z) − H(X,Y,Z) for discrete data."""
    cx, cy, cz = symbols(x, "x"), symbols(y, "y"), symbols(z, "z")
    h = lambda c: entropy_codes(c, miller_madow=miller_madow)  # noqa: E731
    return h(_join(cx, cz)) + h(_join(cy, cz)) - h(cz) - h(_join(cx, cy, cz))
