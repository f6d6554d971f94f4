"""What the entropy theorem's mutual-information term can and cannot mean, measured.

**I(Y; Q | X) = 0 when Q = f(X).** The queries of a trained detector are a deterministic function
of the image (fixed weights, no sampling), so given X they are constant and carry no further
information about anything: I(Y; Q | X) = H(Q | X) − H(Q | X, Y) = 0 − 0. The bound
H(Y|X;θ) ≤ H_grid − I(Y_global; Q | X) therefore reduces to H_hybrid ≤ H_grid, and the
subtracted term cannot explain any gap. :func:`toy_deterministic_queries` shows it numerically
(the plug-in estimate is exactly 0 on a discrete toy; a Q with its own noise gives > 0).

**What carries the seed's intent: I(Y_global; Q | G)**, with G the grid branch's features at
the object and Y_global the class bit (the part of Y only global context resolves). After a
declared reduction (PCA of G and of Q to ``pca_dims`` each, fitted on the first half of the
objects and whitened), it is estimated by

* the **probe** estimate: CE(bit | G) − CE(bit | G, Q) on the held-out half, each CE the
  cross-entropy of a logistic-regression probe trained on the first half. Each CE upper-bounds
  its conditional entropy; their difference is an estimate, not a bound (both probes can be
  misspecified), and is reported as such with a cluster-bootstrap CI over images;
* the validated k-NN estimators of :mod:`hsgprof.info` (``cmi(y, q, g, method=...)``), when
  that package provides them.

Both are capped by the known ceiling I(bit; X) ≤ ln 2 − H_b((1 + s)/2) (only the key informs the bit).
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from hsgprof.experiments.stats import cluster_bootstrap


# ----------------------------------------------------------------------------- plug-in (discrete)
def _codes(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    return np.unique(a, axis=0, return_inverse=True)[1].ravel()


def plugin_entropy(*cols: np.ndarray) -> float:
    """Plug-in joint entropy (nats) of discrete columns."""
    code = _codes(np.column_stack([np.asarray(c).reshape(len(c), -1) for c in cols]))
    p = np.bincount(code) / code.size
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def plugin_cmi(x: np.ndarray, y: np.ndarray, z: np.ndarray | None = None, miller_madow: bool = False) -> float:
    """Plug-in I(X; Y | Z) in nats for discrete arrays (I(X; Y) when z is None).

    Computed per stratum of Z as Σ_z p(z) I(X; Y | Z = z), so a Y-or-X that is constant within
    every stratum gives exactly 0. ``miller_madow`` subtracts the first-order bias (m − 1)/(2n)
    of every entropy term.
    """
    x, y = _codes(x), _codes(y)
    z = np.zeros_like(x) if z is None else _codes(z)
    n = x.size
    total = 0.0
    for zv in np.unique(z):
        m = z == zv
        xs, ys = x[m], y[m]
        if np.unique(xs).size < 2 or np.unique(ys).size < 2:
            continue                                     # constant within the stratum: exactly 0
        terms = []
        for cols in ((xs,), (ys,), (xs, ys)):
            h = plugin_entropy(*cols)
            if miller_madow:
                k = np.unique(np.column_stack(cols), axis=0).shape[0]
                h += (k - 1) / (2 * xs.size)
            terms.append(h)
        total += m.sum() / n * (terms[0] + terms[1] - terms[2])
    return float(total)


def toy_deterministic_queries(n: int = 20000, n_x: int = 16, flip: float = 0.2, seed: int = 0) -> dict[str, float]:
    """I(Y; Q | X) on a toy: X uniform on n_x values, Y = (X mod 2) flipped w.p. ``flip``.

    ``cmi_q_function_of_x``: Q = X mod 4, a deterministic function of X -> exactly 0.
    ``mi_q``: the same Q *without* conditioning on X, I(Y; Q) > 0 (Q is informative about Y).
    ``cmi_q_with_noise``: Q' = Y xor Bernoulli(0.1), not a function of X -> > 0 (the contrast
    that shows the estimate can be non-zero).
    ``cmi_continuous``: X ~ N(0, I_3), Q = tanh(A X) (deterministic), Y = X_1 + noise, by the
    k-NN CMI estimator of :mod:`hsgprof.info` (method ``fp``) when available; else NaN.
    """
    rng = np.random.default_rng(seed)
    x = rng.integers(0, n_x, n)
    y = (x % 2) ^ (rng.random(n) < flip)
    q = x % 4
    q_noisy = y ^ (rng.random(n) < 0.1)
    out = {"cmi_q_function_of_x": plugin_cmi(y, q, x), "mi_q": plugin_cmi(y, q),
           "cmi_q_with_noise": plugin_cmi(y, q_noisy, x), "cmi_continuous": float("nan")}
    xc = rng.standard_normal((min(n, 2000), 3))
    qc = np.tanh(xc @ rng.standard_normal((3, 2)))
    yc = xc[:, :1] + 0.5 * rng.standard_normal((len(xc), 1))
    res = info_cmi(yc, qc, xc, "fp")
    if res.get("status") == "ok":
        out["cmi_continuous"] = res["value"]
    return out


# ----------------------------------------------------------------------------- hsgprof.info bridge
def info_cmi(x: np.ndarray, y: np.ndarray, z: np.ndarray, method: str, ci: bool = False, seed: int = 0
             ) -> dict[str, Any]:
    """``hsgprof.info.cmi(x, y, z, method=...)`` as a row; status says when it is not available."""
    try:
        from hsgprof import info
        fn = info.cmi
    except (ImportError, AttributeError):
        return {"status": "unavailable (hsgprof.info.cmi not importable)", "value": float("nan")}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fn(x, y, z, method=method, ci=ci, seed=seed) if ci else fn(x, y, z, method=method, seed=seed)
    except Exception as exc:                             # an estimator refusing the input is a result too
        return {"status": f"error: {type(exc).__name__}: {exc}"[:200], "value": float("nan")}
    row = {"status": "ok", "value": float(getattr(res, "value", float("nan")))}
    for attr in ("ci_low", "ci_high", "p_value"):
        v = getattr(res, attr, None)
        if v is not None:
            row[attr] = float(v)
    ci = getattr(res, "ci", None)
    if ci is not None and len(ci) == 2:
        row["ci_low"], row["ci_high"] = float(ci[0]), float(ci[1])
    return row


# ----------------------------------------------------------------------------- PCA and probes
def pca_reduce(a: np.ndarray, fit_mask: np.ndarray, dims: int) -> np.ndarray:
    """Project ``a`` on the top ``dims`` principal axes of ``a[fit_mask]``, whitened."""
    a = np.asarray(a, float)
    mu = a[fit_mask].mean(0)
    centred = a[fit_mask] - mu
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    k = min(dims, vt.shape[0])
    scale = s[:k] / math.sqrt(max(fit_mask.sum() - 1, 1))
    return (a - mu) @ vt[:k].T / np.where(scale > 1e-12, scale, 1.0)


def probe_ce(features: np.ndarray | None, y: np.ndarray, train: np.ndarray) -> np.ndarray:
    """Per-object held-out cross-entropy (nats) of a logistic-regression probe y ~ features.

    ``features`` None: the probe is the training prior (the no-feature baseline). Predicted
    probabilities are clipped to [1e-6, 1 − 1e-6].
    """
    y = np.asarray(y, int)
    test = ~train
    if features is None or np.unique(y[train]).size < 2:
        p1 = np.clip(y[train].mean() if train.any() else 0.5, 1e-6, 1 - 1e-6)
        p = np.full(test.sum(), p1)
    else:
        from sklearn.linear_model import LogisticRegression

        clf = LogisticRegression(C=1.0, max_iter=2000)
        clf.fit(features[train], y[train])
        p = np.clip(clf.predict_proba(features[test])[:, 1], 1e-6, 1 - 1e-6)
    yt = y[test]
    return -(yt * np.log(p) + (1 - yt) * np.log(1 - p))


def probe_information(y: np.ndarray, g: np.ndarray, q: np.ndarray, groups: np.ndarray, train: np.ndarray,
                      n_boot: int = 200, level: float = 0.95, seed: int = 0) -> dict[str, float]:
    """Probe estimates (nats): I(Y;Q|G) = CE(Y|G) − CE(Y|G,Q), plus I(Y;G), I(Y;Q), with CIs."""
    ce0 = probe_ce(None, y, train)
    ce_g = probe_ce(g, y, train)
    ce_q = probe_ce(q, y, train)
    ce_gq = probe_ce(np.column_stack([g, q]), y, train)
    grp = np.asarray(groups)[~train]
    out: dict[str, float] = {"ce_none": ce0.mean(), "ce_g": ce_g.mean(), "ce_q": ce_q.mean(), "ce_gq": ce_gq.mean(),
                             "n_train": int(train.sum()), "n_test": int((~train).sum())}
    for name, diff in (("cmi_q_given_g", ce_g - ce_gq), ("mi_g", ce0 - ce_g), ("mi_q", ce0 - ce_q)):
        lo, hi = cluster_bootstrap(diff, grp, n_boot, level, seed)
        out[name], out[f"{name}_low"], out[f"{name}_high"] = float(diff.mean()), lo, hi
    return out
