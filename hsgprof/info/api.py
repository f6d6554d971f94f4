"""Public API: ``mi``, ``cmi`` and ``entropy`` with one ``method=`` switch, intervals and tests.

Every call validates its input first (one-line ``ValueError`` naming the bad value and what is
accepted), resolves the ``seed`` into an integer that is recorded in the result, and splits it
into independent streams for the estimate (jitter, surrogates, network training), the
confidence interval and the test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from scipy.stats import norm

from hsgprof.errors import HsgprofError
from hsgprof.info import discrete, gaussian, highmi, knn, neural, uncertainty
from hsgprof.info._checks import as_2d, check_choice, check_int, check_k, check_prob, same_n
from hsgprof.info.result import UNITS, InfoResult

_KNN = {"k": 3, "jitter": 1e-10, "normalize": True, "backend": "auto"}
_NET = {"hidden": 64, "layers": 2, "embed": 32, "batch_size": 256, "max_epochs": 100, "patience": 10, "lr": 1e-3}
_PROBE = {"hidden": 64, "layers": 1, "batch_size": 256, "max_epochs": 100, "patience": 10, "lr": 1e-3,
          "weight_decay": 1e-4, "max_classes": 1000}


@dataclass(frozen=True)
class MethodSpec:
    """What a method estimates, its family (decides valid intervals/tests) and its options with defaults."""

    name: str
    family: str
    quantities: tuple[str, ...]
    defaults: dict[str, Any]
    summary: str


METHODS: dict[str, MethodSpec] = {m.name: m for m in [
    MethodSpec("ksg1", "knn", ("mi",), _KNN, "Kraskov-Stögbauer-Grassberger estimator 1 (max-norm k-NN)"),
    MethodSpec("ksg2", "knn", ("mi",), _KNN, "Kraskov-Stögbauer-Grassberger estimator 2 (per-variable radii)"),
    MethodSpec("fp", "knn", ("cmi",), _KNN, "Frenzel-Pompe k-NN conditional MI"),
    MethodSpec("ksg_gc", "knn", ("mi",), {"k": 3, "n_ref": 4, "jitter": 1e-10, "backend": "auto"},
               "KSG-1 with Gaussian-copula reference bias correction (for high MI)"),
    MethodSpec("fp_gc", "knn", ("cmi",), {"k": 3, "n_ref": 4, "jitter": 1e-10, "backend": "auto"},
               "Frenzel-Pompe with Gaussian-copula reference bias correction"),
    MethodSpec("mixed", "knn", ("mi", "cmi"), {"k": 3, "normalize": True, "backend": "auto"},
               "Gao et al. (2017) k-NN estimator for discrete-continuous mixtures"),
    MethodSpec("kl", "knn", ("entropy",), _KNN, "Kozachenko-Leonenko k-NN differential entropy"),
    MethodSpec("gaussian", "parametric", ("mi", "cmi", "entropy"), {"bias_correct": True},
               "closed form under a Gaussian assumption"),
    MethodSpec("copula", "parametric", ("mi", "cmi"), {"bias_correct": True},
               "Gaussian-copula MI (Ince et al. 2017), a lower bound in general"),
    MethodSpec("plugin", "discrete", ("mi", "cmi", "entropy"), {}, "plug-in (maximum-likelihood) for discrete data"),
    MethodSpec("miller_madow", "discrete", ("mi", "cmi", "entropy"), {}, "plug-in with Miller-Madow bias correction"),
    MethodSpec("infonce", "neural", ("mi",), _NET, "InfoNCE variational lower bound (held out, capped at log batch)"),
    MethodSpec("nwj", "neural", ("mi",), _NET, "NWJ variational lower bound (held out)"),
    MethodSpec("probe", "neural", ("mi",), _PROBE,
               "held-out cross-entropy difference (V-information), y = discrete labels"),
]}

CI_METHODS = {"knn": ("subsample",), "parametric": ("subsample", "bootstrap"), "discrete": ("subsample", "bootstrap"),
              "neural": ("heldout",)}
TESTS = {("mi", "knn"): ("permutation",), ("mi", "parametric"): ("permutation",),
         ("mi", "discrete"): ("permutation",), ("mi", "neural"): ("heldout",),
         ("cmi", "knn"): ("local_permutation",), ("cmi", "parametric"): ("local_permutation",),
         ("cmi", "discrete"): ("stratified_permutation", "local_permutation")}


def methods_for(quantity: str) -> list[str]:
    """Names of the methods that estimate ``quantity`` ("mi", "cmi" or "entropy")."""
    return [m.name for m in METHODS.values() if quantity in m.quantities]


# ----------------------------------------------------------------------------- one estimate

def _compute(method: str, quantity: str, arrays: list[np.ndarray], rng: np.random.Generator, opts: dict,
             main: bool = True) -> tuple[float, dict, np.ndarray | None]:
    """Run ``method`` on validated arrays; returns (value in nats, details, held-out terms or None)."""
    if method in ("ksg1", "ksg2", "fp", "kl", "mixed"):
        jitter = None if method == "mixed" else opts["jitter"]
        arrs, info = knn._prepare(arrays, normalize=opts["normalize"], jitter=jitter, rng=rng, warn_ties=main)
        k, b = opts["k"], opts["backend"]
        if method == "ksg1":
            v = knn.ksg1(*arrs, k, backend=b)
        elif method == "ksg2":
            v = knn.ksg2(*arrs, k, backend=b)
        elif method == "fp":
            v = knn.frenzel_pompe(*arrs, k, backend=b)
        elif method == "mixed":
            v = knn.mixed_mi(*arrs, k, backend=b) if quantity == "mi" else knn.mixed_cmi(*arrs, k, backend=b)
            info.pop("jitter_applied")
        else:
            v = knn.kl_entropy(arrs[0], k, backend=b)
            if opts["normalize"]:  # H(X) = H(X / s) + sum log s
                v += float(np.sum(np.log(arrays[0].std(axis=0))))
        return v, info, None
    if method in ("ksg_gc", "fp_gc"):
        f = highmi.ksg_gc if method == "ksg_gc" else highmi.fp_gc
        v, det = f(*arrays, opts["k"], rng, n_ref=opts["n_ref"], jitter=opts["jitter"], backend=opts["backend"])
        return v, det, None
    if method in ("gaussian", "copula"):
        bc = opts["bias_correct"]
        if quantity == "entropy":
            return gaussian.gaussian_entropy(arrays[0], bias_correct=bc), {}, None
        fn = {("gaussian", "mi"): gaussian.gaussian_mi, ("gaussian", "cmi"): gaussian.gaussian_cmi,
              ("copula", "mi"): gaussian.copula_mi, ("copula", "cmi"): gaussian.copula_cmi}[(method, quantity)]
        return fn(*arrays, bias_correct=bc), {}, None
    if method in ("plugin", "miller_madow"):
        mm = method == "miller_madow"
        fn = {"mi": discrete.mi, "cmi": discrete.cmi, "entropy": discrete.entropy}[quantity]
        return fn(*arrays, miller_madow=mm), {}, None
    if method in ("infonce", "nwj"):
        return neural.critic_bound(*arrays, rng, kind=method, **opts)
    if method == "probe":
        return neural.probe(*arrays, rng, **opts)
    raise AssertionError(method)  # pragma: no cover - names are checked before


# ----------------------------------------------------------------------------- checks

def _resolve_seed(seed: Any) -> int:
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**63 - 1))
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return int(seed)
    raise HsgprofError(f"seed={seed!r}; accepted: a non-negative int, a numpy.random.Generator, or None")


def _check_opts(spec: MethodSpec, opts: dict, n: int) -> dict:
    unknown = sorted(set(opts) - set(spec.defaults))
    if unknown:
        acc = ", ".join(spec.defaults) or "none"
        raise HsgprofError(f"unknown option(s) {', '.join(unknown)} for method {spec.name!r}; accepted: {acc}")
    o = {**spec.defaults, **opts}
    if "k" in o:
        o["k"] = check_k(o["k"], n)
    if "backend" in o:
        check_choice("backend", o["backend"], knn.BACKENDS)
    if "jitter" in o and o["jitter"] is not None:
        if not isinstance(o["jitter"], (int, float)) or not math.isfinite(o["jitter"]) or o["jitter"] < 0:
            raise HsgprofError(f"jitter={o['jitter']!r}; accepted: a small non-negative number (sd units) or None")
    if "n_ref" in o:
        o["n_ref"] = check_int("n_ref", o["n_ref"], 1)
    for key in ("hidden", "batch_size", "max_epochs", "patience", "embed", "max_classes"):
        if key in o:
            o[key] = check_int(key, o[key], 1 if key != "batch_size" else 2)
    if "layers" in o:
        o["layers"] = check_int("layers", o["layers"], 0)
    for key in ("lr",):
        if key in o:
            check_prob(key, o[key], 0.0, 10.0)
    return o


def _setup(quantity: str, method: Any, named: dict[str, Any], units: str, ci: Any, level: float, test: Any,
           seed: Any, opts: dict) -> tuple[MethodSpec, list[np.ndarray], dict, int, str | None, str | None]:
    if not isinstance(method, str) or method not in METHODS or quantity not in METHODS[method].quantities:
        raise HsgprofError(f"unknown method {method!r} for {quantity}; accepted: {', '.join(methods_for(quantity))}")
    spec = METHODS[method]
    check_choice("units", units, UNITS)
    arrays = [as_2d(name, a) for name, a in named.items()]
    n = same_n(**dict(zip(named, arrays)))
    o = _check_opts(spec, opts, n)
    ci_method = None
    if ci:
        accepted = CI_METHODS[spec.family]
        ci_method = accepted[0] if ci is True else ci
        if ci_method == "bootstrap" and spec.family == "knn":
            raise HsgprofError(f"ci='bootstrap' duplicates rows and biases k-NN estimators (KSG by about +0.7 nats at "
                               f"N=1,000); accepted for method {method!r}: {', '.join(accepted)}")
        check_choice(f"ci for method {method!r}", ci_method, accepted)
        check_prob("level", level)
    test_name = None
    if test:
        if quantity == "entropy":
            raise HsgprofError("entropy has no independence test; accepted: test=False")
        accepted = TESTS[(quantity, spec.family)]
        test_name = accepted[0] if test is True else test
        check_choice(f"test for method {method!r}", test_name, accepted)
    return spec, arrays, o, _resolve_seed(seed), ci_method, test_name


# ----------------------------------------------------------------------------- the driver

def _run(quantity: str, method: str, named: dict[str, Any], *, units: str, ci: Any, level: float, test: Any,
         n_perm: int, k_perm: int, n_resamples: int | None, seed: Any, opts: dict) -> InfoResult:
    spec, arrays, o, seed_int, ci_method, test_name = _setup(quantity, method, named, units, ci, level, test, seed, opts)
    if test_name:
        n_perm = check_int("n_perm", n_perm, 1)
        k_perm = check_int("k_perm", k_perm, 1)
    if n_resamples is not None:
        n_resamples = check_int("n_resamples", n_resamples, 2)
    n = arrays[0].shape[0]
    r_est, r_ci, r_test = (np.random.default_rng(s) for s in np.random.SeedSequence(seed_int).spawn(3))

    value, details, terms = _compute(method, quantity, arrays, r_est, o)

    def on_rows(rows: np.ndarray, rng: np.random.Generator) -> float:
        return _compute(method, quantity, [a[rows] for a in arrays], rng, o, main=False)[0]

    interval = se = None
    if ci_method == "heldout":
        se = uncertainty.clt_se(terms)
    elif ci_method == "subsample":
        min_size = max(10, 2 * (o.get("k", 3) + 1))
        se, det = uncertainty.subsample_se(on_rows, n, r_ci, repeats=n_resamples or 8, min_size=min_size)
        details["subsample"] = det
    elif ci_method == "bootstrap":
        se, det = uncertainty.bootstrap_se(on_rows, n, r_ci, n_boot=n_resamples or 200)
        details["bootstrap"] = det
    if ci_method:
        interval = uncertainty.normal_interval(value, se, level)

    p_value = None
    if test_name == "heldout":
        s = uncertainty.clt_se(terms)
        p_value = float(norm.sf(value / s)) if s > 0 else (0.0 if value > 0 else 1.0)
    elif test_name:
        perms, stat = _permutation_setup(quantity, method, test_name, arrays, r_test, n_perm, k_perm, o)
        p_value, null = uncertainty.permutation_pvalue(stat, value, perms)
        details["null_mean"], details["null_sd"] = float(null.mean()), float(null.std(ddof=1)) if len(null) > 1 else None

    f = 1.0 / math.log(2) if units == "bits" else 1.0
    params = dict(o)
    if test_name:
        params.update(n_perm=n_perm, **({"k_perm": k_perm} if test_name == "local_permutation" else {}))
    if ci_method in ("subsample", "bootstrap"):
        params["n_resamples"] = n_resamples or (8 if ci_method == "subsample" else 200)
    return InfoResult(quantity=quantity, method=method, value=value * f, units=units, n=n,
                      dims={name: a.shape[1] for name, a in zip(named, arrays)}, params=params, seed=seed_int,
                      ci=None if interval is None else (interval[0] * f, interval[1] * f),
                      level=level if ci_method else None, ci_method=ci_method,
                      se=None if se is None else se * f, p_value=p_value, test=test_name, details=details)


def _permutation_setup(quantity: str, method: str, test_name: str, arrays: list[np.ndarray], rng: np.random.Generator,
                       n_perm: int, k_perm: int, o: dict) -> tuple[Any, Callable[[np.ndarray], float]]:
    n = arrays[0].shape[0]
    est_rng = np.random.default_rng(int(rng.integers(2**63 - 1)))
    if quantity == "mi":
        x, y = arrays
        perms = uncertainty.full_permutations(n, rng, n_perm)
        return perms, lambda p: _compute(method, quantity, [x, y[p]], est_rng, o, main=False)[0]
    x, y, z = arrays
    if test_name == "stratified_permutation":
        perms = uncertainty.strata_permutations(discrete.symbols(z, "z"), rng, n_perm)
    else:
        perms = uncertainty.local_permutations(z, rng, n_perm, k_perm)
    return perms, lambda p: _compute(method, quantity, [x[p], y, z], est_rng, o, main=False)[0]


# ----------------------------------------------------------------------------- public functions

_COMMON_DOC = """
    units: "nats" (default) or "bits".
    ci: False, True (the method's default interval) or a name: "subsample" (k-NN and all others;
        Holmes & Nemenman 2019), "bootstrap" (parametric and discrete methods only), "heldout"
        (neural methods: CLT on held-out terms).  The interval is value ± z·se at ``level``.
    test: False, True (default test) or a name; see :data:`TESTS`.  ``n_perm`` permutations.
    n_resamples: subsample repeats per split count (default 8) or bootstrap samples (default 200).
    seed: int, numpy Generator or None (a fresh seed, recorded in the result).
    **opts: method options, e.g. ``k=3``, ``jitter=1e-10``, ``backend="auto"``; unknown options
        raise ``ValueError`` listing the accepted ones (:data:`METHODS` has the defaults).
"""


def mi(x: Any, y: Any, method: str = "ksg1", *, units: str = "nats", ci: bool | str = False, level: float = 0.95,
       test: bool | str = False, n_perm: int = 199, n_resamples: int | None = None, seed: Any = None,
       **opts: Any) -> InfoResult:
    """Mutual information I(X;Y) of paired samples ``x`` (N, dx) and ``y`` (N, dy); 1-D means d = 1.

    For ``method="probe"``, ``y`` holds discrete class labels and ``x`` the features.
    """
    return _run("mi", method, {"x": x, "y": y}, units=units, ci=ci, level=level, test=test, n_perm=n_perm,
                k_perm=5, n_resamples=n_resamples, seed=seed, opts=opts)


def cmi(x: Any, y: Any, z: Any, method: str = "fp", *, units: str = "nats", ci: bool | str = False,
        level: float = 0.95, test: bool | str = False, n_perm: int = 199, k_perm: int = 5,
        n_resamples: int | None = None, seed: Any = None, **opts: Any) -> InfoResult:
    """Conditional mutual information I(X;Y|Z).  The default test is Runge's local permutation (``k_perm`` neighbours in z)."""
    return _run("cmi", method, {"x": x, "y": y, "z": z}, units=units, ci=ci, level=level, test=test, n_perm=n_perm,
                k_perm=k_perm, n_resamples=n_resamples, seed=seed, opts=opts)


def entropy(x: Any, method: str = "kl", *, units: str = "nats", ci: bool | str = False, level: float = 0.95,
            n_resamples: int | None = None, seed: Any = None, **opts: Any) -> InfoResult:
    """Entropy H(X): differential (``kl``, ``gaussian``) or discrete (``plugin``, ``miller_madow``)."""
    return _run("entropy", method, {"x": x}, units=units, ci=ci, level=level, test=False, n_perm=1, k_perm=1,
                n_resamples=n_resamples, seed=seed, opts=opts)


for _f in (mi, cmi, entropy):
    _f.__doc__ = (_f.__doc__ or "") + "\n    Parameters\n    ----------" + _COMMON_DOC
