"""Validation suite: every estimator against closed-form truths, plus cross-checks and pitfalls.

Stages (each returns tidy rows, one per estimate or per trial):

* ``bias``: error of each method on each ground-truth case at each N (repeated draws):
  bias, standard deviation, RMSE.
* ``sweep``: the same over N (10^2 .. 10^5) and dimension d per variable (1 .. 32) for the
  correlated-Gaussian case (every continuous MI method but the neural ones), and over N for the
  CMI methods (chain with a direct edge) and the discrete ones (symmetric channel).
* ``high_mi``: KSG versus the corrected ``ksg_gc`` as the truth grows (d = 4 per variable).
* ``coverage``: 95 % subsample intervals: how often they contain the truth.
* ``crosscheck``: our KSG-1 / Frenzel–Pompe against scikit-learn's ``mutual_info_regression``
  and ``ennemi`` on the same data (dev-only dependencies; skipped with a note if absent).
* ``pitfalls``: plain bootstrap versus subsampling for KSG; full versus local permutation
  for a conditional-independence test under the null; KSG on tied data with and without
  jitter versus the mixed estimator.

:func:`run_validation` runs a plan (``quick`` or ``full``) and returns the rows and summary
tables; :func:`write_validation` also writes the results file and figures.  The figure
functions take a summary table and return a matplotlib ``Figure``.
"""

from __future__ import annotations

import time
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from hsgprof.errors import HsgprofError
from hsgprof.info import api, cases as C
from hsgprof.info import knn

DEFAULT_OUT = Path("reports/results/info_validation.json")
KIND = "info_validation"

MI_CONTINUOUS = ("ksg1", "ksg2", "ksg_gc", "mixed", "gaussian", "copula", "infonce", "nwj")
CMI_METHODS = ("fp", "fp_gc", "mixed", "gaussian", "copula")
NEURAL = ("infonce", "nwj", "probe")


def methods_for_case(case: C.Case, include_neural: bool = True) -> list[str]:
    """Which methods apply to a case (by its quantity and data type)."""
    if case.quantity == "entropy":
        out = ["kl", "gaussian"]
    elif case.quantity == "cmi":
        out = list(CMI_METHODS)
    elif case.data == "mixed":
        out = ["mixed", "ksg1", "probe"]
    elif case.data == "discrete":
        out = ["plugin", "miller_madow", "mixed"]
    else:
        out = list(MI_CONTINUOUS)
    return [m for m in out if include_neural or m not in NEURAL]


def estimate_case(case: C.Case, method: str, data: tuple[np.ndarray, ...], seed: int, *, ci: bool = False,
                  **opts: Any) -> api.InfoResult:
    """Run one method on one sample of a case (``probe`` gets the discrete variable as labels)."""
    if case.quantity == "entropy":
        return api.entropy(data[0], method=method, ci=ci, seed=seed, **opts)
    if case.quantity == "cmi":
        return api.cmi(*data, method=method, ci=ci, seed=seed, **opts)
    x, y = data
    if method == "probe":
        x, y = y, x  # features = continuous y, labels = discrete x
    return api.mi(x, y, method=method, ci=ci, seed=seed, **opts)


def _row(stage: str, case: C.Case, method: str, n: int, rep: int, seed: int, res: api.InfoResult | None,
         seconds: float, error: str | None = None) -> dict[str, Any]:
    row = {"stage": stage, "case": case.name, "quantity": case.quantity, "data": case.data, "method": method,
           "n": n, "d": case.params.get("d"), "rho": case.params.get("rho"), "rep": rep, "seed": seed,
           "truth": case.truth, "seconds": seconds, "failure": error}
    if res is not None:
        row.update(estimate=res.value, error=res.value - case.truth, ci_low=res.ci[0] if res.ci else None,
                   ci_high=res.ci[1] if res.ci else None, se=res.se,
                   covered=(res.ci[0] <= case.truth <= res.ci[1]) if res.ci else None)
    return row


def run_trials(stage: str, case: C.Case, methods: Iterable[str], n: int, reps: int, base_seed: int, *,
               ci: bool = False, progress: Callable[[str], None] | None = None,
               opts: dict[str, dict] | None = None) -> list[dict[str, Any]]:
    """``reps`` independent draws of size n; every method sees the same draw (paired comparison)."""
    rows = []
    methods = list(methods)
    for rep in range(reps):
        seed = int(np.random.SeedSequence([base_seed, n, rep, zlib.crc32(case.name.encode())]).generate_state(1)[0])
        data = case.sample(n, np.random.default_rng(seed))
        for m in methods:
            t0 = time.perf_counter()
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    res = estimate_case(case, m, data, seed, ci=ci, **(opts or {}).get(m, {}))
                rows.append(_row(stage, case, m, n, rep, seed, res, time.perf_counter() - t0))
            except HsgprofError as exc:  # e.g. KSG on ties without jitter: recorded, not hidden
                rows.append(_row(stage, case, m, n, rep, seed, None, time.perf_counter() - t0, str(exc)))
    if progress:
        progress(f"{stage}: {case.name} N={n} x{reps} [{', '.join(methods)}]")
    return rows


def summarize(rows: pd.DataFrame | list[dict]) -> pd.DataFrame:
    """Bias, sd, RMSE, coverage and time per (stage, case, method, N)."""
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    keys = ["stage", "case", "quantity", "method", "n", "d", "rho", "truth"]
    df = df.copy()
    for k in keys:
        if k not in df:
            df[k] = None
    df[["d", "rho"]] = df[["d", "rho"]].astype(float)
    ok = df[df["failure"].isna()] if "failure" in df else df
    g = ok.groupby(keys, dropna=False)
    out = g.agg(reps=("error", "size"), mean=("estimate", "mean"), bias=("error", "mean"), sd=("error", "std"),
                rmse=("error", lambda e: float(np.sqrt(np.mean(np.square(e))))), seconds=("seconds", "median"))
    if "covered" in ok and ok["covered"].notna().any():
        cov = ok[ok["covered"].notna()].groupby(keys, dropna=False)["covered"].mean().rename("coverage")
        out = out.join(cov)
    if "failure" in df:
        fails = df[df["failure"].notna()].groupby(keys, dropna=False).size().rename("failures")
        out = out.join(fails, how="outer")
    return out.reset_index()


# ----------------------------------------------------------------------------- plans

@dataclass
class Plan:
    """What a validation run covers; ``quick`` and ``full`` are the two presets."""

    name: str
    bias_n: int = 10_000
    bias_reps: int = 10
    neural_reps: int = 2
    sweep_n: tuple[int, ...] = (100, 1000, 10_000, 100_000)
    sweep_d: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    sweep_rho: tuple[float, ...] = (0.5, 0.9)
    sweep_methods: tuple[str, ...] = ("ksg1", "ksg2", "ksg_gc", "mixed", "gaussian", "copula")
    sweep_cmi_methods: tuple[str, ...] = ("fp", "fp_gc", "mixed", "gaussian", "copula")   # chain + direct edge, over N
    sweep_discrete_methods: tuple[str, ...] = ("plugin", "miller_madow", "mixed")          # symmetric channel, over N
    sweep_reps: dict[int, int] = field(default_factory=lambda: {100: 50, 1000: 20, 10_000: 5, 100_000: 2})
    sweep_max_joint_dim_large_n: int = 8  # N = 10^5 only up to this joint dimension (tree back end)
    high_mi_rho: tuple[float, ...] = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
    high_mi_reps: int = 5
    coverage_n: tuple[int, ...] = (100, 1000, 10_000)
    coverage_reps: dict[int, int] = field(default_factory=lambda: {100: 100, 1000: 100, 10_000: 40})
    coverage_methods_mi: tuple[str, ...] = ("ksg1", "ksg_gc", "gaussian", "copula")
    coverage_methods_cmi: tuple[str, ...] = ("fp", "fp_gc")
    coverage_reps_corrected: dict[int, int] = field(default_factory=lambda: {100: 100, 1000: 40, 10_000: 0})
    crosscheck_n: tuple[int, ...] = (1000, 10_000)
    crosscheck_reps: int = 10
    pitfall_trials: int = 100
    pitfall_perm: int = 99
    seed: int = 20240601


def plan(mode: str) -> Plan:
    """The ``quick`` (a few minutes) or ``full`` (about an hour on two cores) plan."""
    if mode == "full":
        return Plan("full")
    if mode == "quick":
        return Plan("quick", bias_reps=3, neural_reps=1, sweep_n=(1000, 10_000), sweep_d=(1, 4),
                    sweep_rho=(0.9,), sweep_methods=("ksg1", "ksg_gc", "copula"), sweep_cmi_methods=("fp",),
                    sweep_discrete_methods=("miller_madow",),
                    sweep_reps={1000: 5, 10_000: 2}, high_mi_rho=(0.5, 0.9), high_mi_reps=2,
                    coverage_n=(1000,), coverage_reps={1000: 30}, coverage_methods_mi=("ksg1",),
                    coverage_methods_cmi=("fp",), crosscheck_n=(10_000,), crosscheck_reps=2,
                    pitfall_trials=20, pitfall_perm=49)
    raise HsgprofError(f"unknown validation mode {mode!r}; accepted: quick, full")


def bias_cases() -> list[C.Case]:
    """The ground-truth cases of the N = 10,000 bias table."""
    return [C.correlated_gaussian(1, 0.5), C.correlated_gaussian(1, 0.9), C.correlated_gaussian(2, 0.5),
            C.correlated_gaussian(2, 0.9), C.correlated_gaussian(4, C.rho_for_mi(4, 0.5)),
            C.correlated_gaussian(4, C.rho_for_mi(4, 1.0)), C.correlated_gaussian(4, 0.9),
            C.independent(1), C.independent(4, "uniform"), C.monotone_transformed(1, 0.9),
            C.monotone_transformed(2, 0.5), C.student_t(1, 0.5, 3.0), C.student_t(4, 0.9, 3.0),
            C.gaussian_chain(1.0, 1.0), C.gaussian_chain(2.0, 2.0), C.gaussian_chain(1.0, 1.0, 0.5),
            C.gaussian_collider(1.0, 1.0), C.discrete_uniform_mixture(4), C.symmetric_channel(4, 0.3),
            C.gaussian_entropy_case(2), C.uniform_entropy_case(2)]


# ----------------------------------------------------------------------------- stages

NEURAL_CASES = ("gauss_d1_rho0.9", "gauss_d2_rho0.9", "gauss_d4_rho0.627271", "gauss_d4_rho0.9",
                "independent_gaussian_d1", "student_d4_rho0.9_nu3", "mixture_m4")


def stage_bias(p: Plan, progress=None) -> list[dict]:
    rows = []
    for case in bias_cases():
        fast = methods_for_case(case, include_neural=False)
        rows += run_trials("bias", case, fast, p.bias_n, p.bias_reps, p.seed, progress=progress)
        neural = [m for m in methods_for_case(case) if m in NEURAL]
        if neural and p.neural_reps and case.name in NEURAL_CASES:  # neural fits cost seconds each
            rows += run_trials("bias", case, neural, p.bias_n, p.neural_reps, p.seed, progress=progress)
    return rows


def stage_sweep(p: Plan, progress=None) -> list[dict]:
    rows = []
    for rho in p.sweep_rho:
        for d in p.sweep_d:
            case = C.correlated_gaussian(d, rho)
            for n in p.sweep_n:
                if n >= 100_000 and 2 * d > p.sweep_max_joint_dim_large_n:
                    continue
                methods = [m for m in p.sweep_methods if not (m in ("gaussian", "copula") and n <= 2 * d + 2)]
                rows += run_trials("sweep", case, methods, n, p.sweep_reps.get(n, 3), p.seed, progress=progress)
    # CMI and discrete methods have no d to sweep here: their cases are over N only
    for case, methods in ((C.gaussian_chain(1.0, 1.0, 0.5), p.sweep_cmi_methods),
                          (C.symmetric_channel(4, 0.3), p.sweep_discrete_methods)):
        for n in p.sweep_n:
            if methods:
                rows += run_trials("sweep", case, methods, n, p.sweep_reps.get(n, 3), p.seed, progress=progress)
    return rows


def stage_high_mi(p: Plan, progress=None) -> list[dict]:
    rows = []
    for rho in p.high_mi_rho:
        rows += run_trials("high_mi", C.correlated_gaussian(4, rho), ("ksg1", "ksg2", "ksg_gc", "copula"),
                           p.bias_n, p.high_mi_reps, p.seed, progress=progress)
    for rho in (0.5, 0.9):
        rows += run_trials("high_mi", C.student_t(4, rho, 3.0), ("ksg1", "ksg2", "ksg_gc", "copula"),
                           p.bias_n, p.high_mi_reps, p.seed, progress=progress)
    return rows


def stage_coverage(p: Plan, progress=None) -> list[dict]:
    rows = []
    mi_cases = [C.correlated_gaussian(1, 0.5), C.correlated_gaussian(1, 0.9), C.correlated_gaussian(2, 0.9)]
    cmi_cases = [C.gaussian_chain(1.0, 1.0), C.gaussian_chain(1.0, 1.0, 0.5)]
    for n in p.coverage_n:
        for case in mi_cases + cmi_cases:
            methods = p.coverage_methods_mi if case.quantity == "mi" else p.coverage_methods_cmi
            plain = [m for m in methods if not m.endswith("_gc")]
            corrected = [m for m in methods if m.endswith("_gc")]  # 5x the cost: fewer trials
            for ms, reps in ((plain, p.coverage_reps.get(n, 20)), (corrected, p.coverage_reps_corrected.get(n, 10))):
                if ms and reps:
                    rows += run_trials("coverage", case, ms, n, reps, p.seed + 1, ci=True, progress=progress)
    return rows


def stage_crosscheck(p: Plan, progress=None) -> list[dict]:
    """Our KSG-1 / FP next to scikit-learn and ennemi on identical (standardised) data."""
    rows = []
    try:
        import ennemi
    except ImportError:  # pragma: no cover - dev dependency
        ennemi = None
    try:
        from sklearn.feature_selection import mutual_info_regression
    except ImportError:  # pragma: no cover - dev dependency
        mutual_info_regression = None
    for case in (C.correlated_gaussian(1, 0.5), C.correlated_gaussian(1, 0.9), C.monotone_transformed(1, 0.9),
                 C.gaussian_chain(1.0, 1.0, 0.5)):
        for n in p.crosscheck_n:
            for rep in range(p.crosscheck_reps):
                seed = p.seed + 7 * rep + n
                data = case.sample(n, np.random.default_rng(seed))
                std = [knn.standardize(a)[0] for a in data]
                ours = estimate_case(case, "ksg1" if case.quantity == "mi" else "fp", tuple(std), seed)
                base = {"stage": "crosscheck", "case": case.name, "quantity": case.quantity, "n": n, "rep": rep,
                        "seed": seed, "truth": case.truth, "d": 1, "rho": case.params.get("rho"), "failure": None}
                rows.append({**base, "method": "hsgprof_" + ours.method, "estimate": ours.value,
                             "error": ours.value - case.truth})
                if ennemi is not None:
                    if case.quantity == "mi":
                        v = float(np.asarray(ennemi.estimate_mi(std[1][:, 0], std[0][:, 0], k=3, preprocess=False)).ravel()[0])
                    else:
                        v = float(np.asarray(ennemi.estimate_mi(std[1][:, 0], std[0][:, 0], cond=std[2][:, 0], k=3,
                                                                preprocess=False)).ravel()[0])
                    rows.append({**base, "method": "ennemi", "estimate": v, "error": v - case.truth,
                                 "diff_vs_ours": v - ours.value})
                if mutual_info_regression is not None and case.quantity == "mi":
                    v = float(mutual_info_regression(std[0], std[1][:, 0], n_neighbors=3, random_state=seed)[0])
                    rows.append({**base, "method": "sklearn", "estimate": v, "error": v - case.truth,
                                 "diff_vs_ours": v - ours.value})
        if progress:
            progress(f"crosscheck: {case.name}")
    return rows


def stage_pitfalls(p: Plan, progress=None) -> list[dict]:
    """The three measured pitfalls, re-measured: bootstrap duplicates, full permutation for CMI, ties.

    The tie warnings these deliberate misuses raise are expected here and silenced.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*column\(s\) have ties.*")
        return _pitfalls(p, progress)


def _pitfalls(p: Plan, progress=None) -> list[dict]:
    from hsgprof.info import uncertainty

    rows = []
    # 1. plain bootstrap vs subsampling for KSG-1 at N = 1,000
    case, n = C.correlated_gaussian(1, 0.5), 1000
    for t in range(p.pitfall_trials):
        rng = np.random.default_rng([p.seed, 1, t])
        x, y = case.sample(n, rng)
        full = api.mi(x, y, "ksg1", seed=t).value
        boots = [api.mi(x[i], y[i], "ksg1", seed=t).value for i in (rng.integers(0, n, n) for _ in range(50))]
        lo, hi = np.percentile(boots, [2.5, 97.5])
        sub = api.mi(x, y, "ksg1", ci=True, seed=t)
        rows.append({"stage": "pitfall", "pitfall": "bootstrap", "case": case.name, "n": n, "rep": t,
                     "truth": case.truth, "estimate": full, "bootstrap_mean": float(np.mean(boots)),
                     "bootstrap_shift": float(np.mean(boots) - full), "bootstrap_covered": bool(lo <= case.truth <= hi),
                     "subsample_covered": bool(sub.ci[0] <= case.truth <= sub.ci[1])})
    if progress:
        progress("pitfall: bootstrap")
    # 2. CI test under the null (chain X -> Z -> Y): full permutation vs local permutation
    case, n = C.gaussian_chain(2.0, 2.0), 1000
    for t in range(p.pitfall_trials):
        rng = np.random.default_rng([p.seed, 2, t])
        x, y, z = case.sample(n, rng)
        obs = api.cmi(x, y, z, "fp", seed=t).value
        est_rng = np.random.default_rng(t)
        stat = lambda perm: api._compute("fp", "cmi", [x[perm], y, z], est_rng, {**api._KNN}, main=False)[0]  # noqa: E731
        p_full, _ = uncertainty.permutation_pvalue(stat, obs, uncertainty.full_permutations(n, rng, p.pitfall_perm))
        p_local, _ = uncertainty.permutation_pvalue(stat, obs, uncertainty.local_permutations(z, rng, p.pitfall_perm))
        rows.append({"stage": "pitfall", "pitfall": "cmi_test_null", "case": case.name, "n": n, "rep": t,
                     "truth": case.truth, "estimate": obs, "p_full": p_full, "p_local": p_local})
    if progress:
        progress("pitfall: CMI permutation")
    # 3. ties: rounded Gaussians (KSG without jitter fails), and the discrete-continuous mixture
    case = C.discrete_uniform_mixture(4)
    for t in range(min(p.pitfall_trials, 10)):
        rng = np.random.default_rng([p.seed, 3, t])
        x, y = case.sample(10_000, rng)
        row = {"stage": "pitfall", "pitfall": "ties", "case": case.name, "n": 10_000, "rep": t, "truth": case.truth}
        for label, kw in (("ksg1_no_jitter", {"method": "ksg1", "jitter": None}),
                          ("ksg1_jitter", {"method": "ksg1"}), ("mixed", {"method": "mixed"})):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    row[label] = api.mi(x, y, seed=t, **kw).value
            except HsgprofError:
                row[label] = None
        g = C.correlated_gaussian(1, 0.9)
        gx, gy = g.sample(10_000, rng)
        rx, ry = np.round(gx, 1), np.round(gy, 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for label, kw in (("rounded_ksg1_no_jitter", {"method": "ksg1", "jitter": None}),
                              ("rounded_ksg1_jitter", {"method": "ksg1"}), ("rounded_mixed", {"method": "mixed"}),
                              ("rounded_plugin", {"method": "plugin"})):
                try:
                    row[label] = api.mi(rx, ry, seed=t, **kw).value
                except HsgprofError:
                    row[label] = None
        row["rounded_truth_continuous"] = g.truth
        rows.append(row)
    if progress:
        progress("pitfall: ties")
    return rows


STAGES = {"bias": stage_bias, "high_mi": stage_high_mi, "crosscheck": stage_crosscheck, "pitfalls": stage_pitfalls,
          "coverage": stage_coverage, "sweep": stage_sweep}


def run_validation(mode: str = "quick", stages: Iterable[str] | None = None,
                   progress: Callable[[str], None] | None = None,
                   on_stage: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run the plan's stages; returns {"rows": DataFrame, "summary": DataFrame, "pitfalls": DataFrame, "plan": Plan}.

    ``on_stage`` is called with the partial result after every stage (the script uses it to
    checkpoint the results file, so a long run that is stopped keeps what it measured).
    """
    p = plan(mode)
    names = list(stages) if stages is not None else list(STAGES)
    for s in names:
        if s not in STAGES:
            raise HsgprofError(f"unknown validation stage {s!r}; accepted: {', '.join(STAGES)}")
    rows, pit, times = [], [], {}

    def result() -> dict[str, Any]:
        df = pd.DataFrame(rows)
        summary = summarize(df[df["stage"] != "crosscheck"]) if not df.empty else pd.DataFrame()
        return {"rows": df, "summary": summary, "pitfalls": pd.DataFrame(pit), "plan": p, "stage_seconds": dict(times),
                "crosscheck": crosscheck_table(df)}

    for s in names:
        t0 = time.perf_counter()
        out = STAGES[s](p, progress)
        (pit if s == "pitfalls" else rows).extend(out)
        times[s] = time.perf_counter() - t0
        if on_stage is not None:
            on_stage(result())
    return result()


# ----------------------------------------------------------------------------- tables

def bias_table(summary: pd.DataFrame, n: int = 10_000) -> pd.DataFrame:
    """Case × method table of mean error (nats) at one N, from the ``bias`` stage."""
    s = summary[(summary["stage"] == "bias") & (summary["n"] == n)]
    if s.empty:
        return s
    t = s.pivot_table(index=["case", "truth"], columns="method", values="bias", aggfunc="first")
    order = {c.name: i for i, c in enumerate(bias_cases())}
    t = t.loc[sorted(t.index, key=lambda i: order.get(i[0], len(order)))]
    cols = [m for m in ("ksg1", "ksg2", "ksg_gc", "fp", "fp_gc", "mixed", "kl", "gaussian", "copula", "plugin",
                        "miller_madow", "infonce", "nwj", "probe") if m in t.columns]
    return t[cols].round(4).reset_index()


def crosscheck_table(rows: pd.DataFrame) -> pd.DataFrame:
    """Mean estimate per case and N for hsgprof, ennemi and scikit-learn, and their mean differences."""
    if rows.empty or "stage" not in rows or not (rows["stage"] == "crosscheck").any():
        return pd.DataFrame()
    r = rows[rows["stage"] == "crosscheck"]
    t = r.pivot_table(index=["case", "n", "truth"], columns="method", values="estimate", aggfunc="mean")
    if "diff_vs_ours" in r:
        d = r.dropna(subset=["diff_vs_ours"]).pivot_table(index=["case", "n", "truth"], columns="method",
                                                         values="diff_vs_ours", aggfunc=lambda v: np.max(np.abs(v)))
        t = t.join(d.add_prefix("max|diff| "))
    return t.reset_index()


def pitfall_table(pit: pd.DataFrame) -> pd.DataFrame:
    """One line per pitfall with the measured rates and shifts."""
    out = []
    if pit.empty:
        return pd.DataFrame()
    b = pit[pit["pitfall"] == "bootstrap"]
    if len(b):
        out.append({"pitfall": "bootstrap (KSG-1, N=1000)", "trials": len(b),
                    "measure": f"bootstrap mean − estimate = {b['bootstrap_shift'].mean():+.3f} nats; percentile-bootstrap "
                               f"coverage {b['bootstrap_covered'].mean():.0%}; subsample coverage "
                               f"{b['subsample_covered'].mean():.0%}"})
    c = pit[pit["pitfall"] == "cmi_test_null"]
    if len(c):
        out.append({"pitfall": "CMI test under the null (chain, N=1000, alpha=0.05)", "trials": len(c),
                    "measure": f"full permutation rejects {np.mean(c['p_full'] <= 0.05):.0%}; local permutation "
                               f"rejects {np.mean(c['p_local'] <= 0.05):.0%}"})
    t = pit[pit["pitfall"] == "ties"]
    if len(t):
        def m(col):
            v = pd.to_numeric(t[col], errors="coerce")
            return "fails (ValueError)" if v.isna().all() else f"{v.mean():+.3f}"
        out.append({"pitfall": "ties: mixture X in {0..3}, Y|X ~ U[X, X+2] (N=10,000)", "trials": len(t),
                    "measure": f"truth {t['truth'].iloc[0]:.3f}; ksg1 no jitter {m('ksg1_no_jitter')}; ksg1 + jitter "
                               f"{m('ksg1_jitter')}; mixed {m('mixed')}"})
        out.append({"pitfall": "ties: Gaussian rho=0.9 rounded to 0.1 (N=10,000)", "trials": len(t),
                    "measure": f"continuous truth {t['rounded_truth_continuous'].iloc[0]:.3f}; ksg1 no jitter "
                               f"{m('rounded_ksg1_no_jitter')}; ksg1 + jitter {m('rounded_ksg1_jitter')}; mixed "
                               f"{m('rounded_mixed')}; plugin {m('rounded_plugin')}"})
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------- figures

def _plt():
    import matplotlib
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    return plt


def figure_bias_vs_n(summary: pd.DataFrame):
    """Error ± sd versus N for the correlated-Gaussian sweep, one panel per (d, rho)."""
    plt = _plt()
    s = summary[summary["stage"] == "sweep"]
    order = s.assign(_d=s["d"].fillna(np.inf), _r=s["rho"].fillna(np.inf)).sort_values(["_d", "_r"])
    panels = list(dict.fromkeys(order["case"]))   # Gaussians by (d, rho), then the chain and the channel
    ncol = min(4, max(1, len(panels)))
    nrow = max(1, int(np.ceil(len(panels) / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.6 * ncol, 2.8 * nrow), squeeze=False, sharex=True)
    for ax, case in zip(axes.flat, panels):
        sub = s[s["case"] == case]
        for m, g in sub.groupby("method"):
            g = g.sort_values("n")
            ax.errorbar(g["n"], g["bias"], yerr=g["sd"].fillna(0), marker="o", ms=3, capsize=2, label=m)
        ax.axhline(0, color="k", lw=0.6)
        ax.axhspan(-0.05, 0.05, color="0.9", zorder=0)
        ax.set_xscale("log")
        ax.set_title(f"{case}, I={sub['truth'].iloc[0]:.2f}", fontsize=9)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax in axes[-1]:
        ax.set_xlabel("N")
    for ax in axes[:, 0]:
        ax.set_ylabel("error (nats)")
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Estimator error versus N (grey band: ±0.05 nats)", fontsize=10)
    fig.tight_layout()
    return fig


def figure_bias_vs_d(summary: pd.DataFrame, n: int = 10_000):
    """Error ± sd versus dimension per variable at one N."""
    plt = _plt()
    s = summary[(summary["stage"] == "sweep") & (summary["n"] == n) & summary["d"].notna()]
    rhos = sorted(s["rho"].dropna().unique())
    fig, axes = plt.subplots(1, max(1, len(rhos)), figsize=(4.5 * max(1, len(rhos)), 3.2), squeeze=False)
    for ax, r in zip(axes[0], rhos):
        sub = s[s["rho"] == r]
        for m, g in sub.groupby("method"):
            g = g.sort_values("d")
            ax.errorbar(g["d"], g["bias"], yerr=g["sd"].fillna(0), marker="o", ms=3, capsize=2, label=m)
        ax.axhline(0, color="k", lw=0.6)
        ax.axhspan(-0.05, 0.05, color="0.9", zorder=0)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("d per variable")
        ax.set_ylabel("error (nats)")
        ax.set_title(f"N={n}, rho={r:g}", fontsize=9)
    if axes[0, 0].get_legend_handles_labels()[0]:
        axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure_coverage(summary: pd.DataFrame):
    """Coverage of nominal 95 % intervals versus N, per case and method."""
    plt = _plt()
    s = summary[(summary["stage"] == "coverage")]
    cases_ = sorted(s["case"].unique())
    fig, axes = plt.subplots(1, max(1, len(cases_)), figsize=(3.3 * max(1, len(cases_)), 3.0), squeeze=False,
                             sharey=True)
    for ax, c in zip(axes[0], cases_):
        for m, g in s[s["case"] == c].groupby("method"):
            g = g.sort_values("n")
            ax.plot(g["n"], g["coverage"], marker="o", label=m)
        ax.axhline(0.95, color="k", lw=0.6)
        ax.axhline(0.90, color="r", lw=0.6, ls="--")
        ax.set_xscale("log")
        ax.set_ylim(0, 1.02)
        ax.set_title(c, fontsize=8)
        ax.set_xlabel("N")
    axes[0, 0].set_ylabel("coverage of 95 % CI")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def figure_high_mi(summary: pd.DataFrame):
    """Error versus true MI at d = 4 per variable: plain KSG against the corrected estimators."""
    plt = _plt()
    s = summary[summary["stage"] == "high_mi"]
    fig, ax = plt.subplots(figsize=(5, 3.4))
    for (m, fam), g in s.assign(fam=s["case"].str.split("_").str[0]).groupby(["method", "fam"]):
        g = g.sort_values("truth")
        ax.errorbar(g["truth"], g["bias"], yerr=g["sd"].fillna(0), marker="o" if fam == "gauss" else "s", ms=3,
                    capsize=2, ls="-" if fam == "gauss" else ":", label=f"{m} ({'Gaussian' if fam == 'gauss' else 't, nu=3'})")
    ax.axhline(0, color="k", lw=0.6)
    ax.axhspan(-0.05, 0.05, color="0.9", zorder=0)
    ax.set_xlabel("true MI (nats), d = 4 per variable")
    ax.set_ylabel("error (nats)")
    ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


FIGURES = {"info_bias_vs_n": figure_bias_vs_n, "info_bias_vs_d": figure_bias_vs_d,
           "info_coverage": figure_coverage, "info_high_mi": figure_high_mi}


def write_validation(result: dict[str, Any], out: str | Path = DEFAULT_OUT, figures_dir: str | Path | None = None,
                     command: str | None = None, figures: bool = True) -> dict[str, Any]:
    """Write the results file (rows + summary + pitfalls) and the figures (PNG + PDF); returns paths."""
    from hsgprof.results import write_results

    out = Path(out)
    figures_dir = Path(figures_dir) if figures_dir is not None else out.parent / "figures"
    summary = result["summary"]
    pit = result["pitfalls"]
    meta = {"summary": summary.to_dict(orient="records") if not summary.empty else [],
            "pitfalls": pit.to_dict(orient="records") if not pit.empty else [],
            "pitfall_table": pitfall_table(pit).to_dict(orient="records"),
            "crosscheck": result["crosscheck"].to_dict(orient="records") if len(result["crosscheck"]) else [],
            "stage_seconds": result["stage_seconds"]}
    p = result["plan"]
    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in p.__dict__.items()}
    path = write_results(out, KIND, result["rows"], config=config, meta=meta, command=command)
    figs = []
    if not figures:
        return {"results": path, "figures": figs}
    plt = _plt()
    for name, fn in FIGURES.items():
        stage = {"info_bias_vs_n": "sweep", "info_bias_vs_d": "sweep", "info_coverage": "coverage",
                 "info_high_mi": "high_mi"}[name]
        if summary.empty or not (summary["stage"] == stage).any():
            continue
        if name == "info_bias_vs_d" and not ((summary["stage"] == "sweep") & (summary["n"] == 10_000)).any():
            continue
        fig = fn(summary)
        figures_dir.mkdir(parents=True, exist_ok=True)
        for ext in ("png", "pdf"):
            f = figures_dir / f"{name}.{ext}"
            fig.savefig(f, dpi=150)
            figs.append(f)
        plt.close(fig)
    return {"results": path, "figures": figs}
