"""H(Y|X;θ) as held-out negative log-likelihood on a declared discrete representation of Y.

**Representation.** Y is the vector of class labels of the ground-truth objects, each at its
ground-truth location (positions and families are visible in X; the class *bit* is not).
A branch's predictive distribution for object o is a categorical over the C classes built from
the class logits it outputs at o (:mod:`hsgprof.experiments.evaluate` says which anchor or query):

    q_T(c) ∝ σ(ℓ_c)^(1/T),    q = (1 − ε)·q_T + ε/C,

i.e. the branch's per-class sigmoid scores normalised over classes (both heads are trained
with per-class sigmoids), tempered by T and mixed with ε of the uniform so every NLL is finite.
T = 1 is the raw model; the primary numbers use T fitted on a disjoint calibration half (one
scalar per model and branch), which keeps the distribution a valid held-out predictor.
Objects a branch leaves without a prediction (more objects than queries) get the uniform.

**Why it upper-bounds H(Y|X).** For any predictive q that did not see the evaluation data,
E[−ln q(Y|X)] = H(Y|X) + E_X KL(p(·|X) ‖ q(·|X)) ≥ H(Y|X). The product over objects is itself a
distribution over the label vector, so the per-object sum bounds the joint entropy too (and
exceeds it by at least the total correlation between labels given X, e.g. I(Y_i;Y_j|X) for
linked pairs: a factorised head *cannot* represent that dependence).

The *bit* NLL is the same distribution restricted to the object's family,
q(bit) = q(2f + bit) / (q(2f) + q(2f + 1)): the part of Y only global context can resolve.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, logsumexp

from hsgprof.experiments.evaluate import ObjectOutputs

HEADS = ("dense", "sparse", "mix")


def log_probs(logits: np.ndarray, temperature: float = 1.0, eps: float = 1e-3) -> np.ndarray:
    """ln q over classes (M, C) from class logits (M, C): normalised tempered sigmoids, ε-smoothed."""
    logits = np.asarray(logits, np.float64)
    logsig = -np.logaddexp(0.0, -logits)                          # ln σ(ℓ)
    lq = log_softmax(logsig / temperature, axis=-1)
    c = logits.shape[-1]
    return np.logaddexp(np.log1p(-eps) + lq, math.log(eps / c))


def class_nll(logq: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-object class NLL in nats from ln q (M, C) and labels (M,) (any class count)."""
    labels = np.asarray(labels, int)
    return -logq[np.arange(len(labels)), labels]


def nll_terms(logq: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-object (class NLL, bit NLL) in nats from ln q (M, C) and labels (M,)."""
    labels = np.asarray(labels, int)
    m = np.arange(len(labels))
    nll_class = class_nll(logq, labels)
    sib = labels ^ 1
    nll_bit = -(logq[m, labels] - np.logaddexp(logq[m, labels], logq[m, sib]))
    return nll_class, nll_bit


def fit_temperature(logits: np.ndarray, labels: np.ndarray, eps: float = 1e-3) -> float:
    """The T in [0.05, 20] that minimises the class NLL on (logits, labels)."""
    if len(labels) == 0:
        return 1.0
    res = minimize_scalar(lambda lt: class_nll(log_probs(logits, math.exp(lt), eps), labels).mean(),
                          bounds=(math.log(0.05), math.log(20.0)), method="bounded", options={"xatol": 1e-3})
    return float(math.exp(res.x))


def head_log_probs(out: ObjectOutputs, head: str, temperatures: dict[str, float], eps: float) -> np.ndarray:
    """ln q (M, C) of one head ('dense', 'sparse', or 'mix' = the equal mixture of both)."""
    c = (out.dense_logits if out.dense_logits is not None else out.sparse_logits).shape[1]
    if head == "dense":
        if out.dense_logits is None:
            raise ValueError("this model has no dense (grid) branch")
        return log_probs(out.dense_logits, temperatures.get("dense", 1.0), eps)
    if head == "sparse":
        if out.sparse_logits is None:
            raise ValueError("this model has no sparse (query) branch")
        lq = log_probs(out.sparse_logits, temperatures.get("sparse", 1.0), eps)
        lq[~out.sparse_matched.astype(bool)] = -math.log(c)       # unmatched: the uniform
        return lq
    if head == "mix":
        both = np.stack([head_log_probs(out, "dense", temperatures, eps),
                         head_log_probs(out, "sparse", temperatures, eps)])
        return logsumexp(both, axis=0) - math.log(2)
    raise ValueError(f"head={head!r}; accepted: {', '.join(HEADS)}")


def available_heads(out: ObjectOutputs) -> tuple[str, ...]:
    has_d, has_s = out.dense_logits is not None, out.sparse_logits is not None
    return tuple(h for h, ok in (("dense", has_d), ("sparse", has_s), ("mix", has_d and has_s)) if ok)


def calibrate(out: ObjectOutputs, calib_mask: np.ndarray, eps: float) -> dict[str, float]:
    """One temperature per branch, fitted on the calibration objects only."""
    labels = out.meta["label"].to_numpy()
    temps = {}
    if out.dense_logits is not None:
        temps["dense"] = fit_temperature(out.dense_logits[calib_mask], labels[calib_mask], eps)
    if out.sparse_logits is not None:
        ok = calib_mask & out.sparse_matched.astype(bool)
        temps["sparse"] = fit_temperature(out.sparse_logits[ok], labels[ok], eps)
    return temps


def per_object_nll(out: ObjectOutputs, head: str, temperatures: dict[str, float], eps: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(class NLL, bit NLL) per object, nats."""
    return nll_terms(head_log_probs(out, head, temperatures, eps), out.meta["label"].to_numpy())


def bit_probability(out: ObjectOutputs, head: str, temperatures: dict[str, float], eps: float) -> np.ndarray:
    """The head's probability that the object's bit is 1, within its family (M,)."""
    lq = head_log_probs(out, head, temperatures, eps)
    fam = out.meta["family"].to_numpy()
    m = np.arange(len(fam))
    l0, l1 = lq[m, 2 * fam], lq[m, 2 * fam + 1]
    return np.exp(l1 - np.logaddexp(l0, l1))
