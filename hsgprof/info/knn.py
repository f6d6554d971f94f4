"""k-nearest-neighbour estimators: KSG (1 and 2), Frenzel–Pompe CMI, Gao's mixed estimator, KL entropy.

All of them use the maximum norm and one shared engine, :func:`knn_stats`, that finds for every
point the distance ``eps`` to its k-th neighbour in the joint space and counts, in chosen
marginal subspaces, the other points closer than ``eps``.  Two back ends compute the same
numbers:

* ``tree``: ``scipy.spatial.cKDTree`` (``p=inf``, all cores) for the k-NN search; counts in a
  one-dimensional marginal use a sorted array and ``searchsorted`` with an exact boundary fix
  (much faster than a tree), counts in larger marginals use ``query_ball_point``.  Best when the
  joint dimension is small (the default up to 10).
* ``brute``: blocked all-pairs max-norm distances with ``torch.cdist(p=inf)``; the per-variable
  distance matrices are computed once per block of rows and reused for the k-NN search and
  every count.  k-d trees degrade to worse than brute force in high dimension; this back end
  keeps N = 10,000 at joint dimension 32 to about two seconds on two cores.

Ties (repeated values) make ``eps`` zero and the digamma terms infinite; the continuous
estimators therefore add tiny Gaussian jitter (``jitter`` standard deviations, 1e-10 by
default, after standardising) to columns that contain ties and record that they did.  For data
that are genuinely discrete or mixed use ``mixed`` (Gao et al. 2017), which treats ties as
probability mass instead.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma

from hsgprof.errors import HsgprofError

BACKENDS = ("auto", "tree", "brute")
TREE_MAX_DIM = 10  # "auto" uses the tree back end up to this joint dimension, brute force above


@dataclass
class KnnStats:
    """What the k-NN engine returns for N points.

    ``eps``: distance to the k-th neighbour in the joint space.  ``counts[s]``: number of other
    points strictly closer than ``eps`` in the subspace made of the blocks in ``s``.
    ``ksg2_eps[b]`` / ``ksg2_counts[b]``: for KSG-2, the largest distance in block ``b`` among
    the k neighbours and the number of other points within it (inclusive).  ``zero_joint`` /
    ``zero_counts[s]``: number of other points identical in the joint space / in ``s``.
    """

    eps: np.ndarray
    counts: dict[tuple[int, ...], np.ndarray] = field(default_factory=dict)
    ksg2_eps: list[np.ndarray] | None = None
    ksg2_counts: list[np.ndarray] | None = None
    zero_joint: np.ndarray | None = None
    zero_counts: dict[tuple[int, ...], np.ndarray] | None = None
    backend: str = "tree"


# ----------------------------------------------------------------------------- preprocessing

def standardize(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre each column and scale it to unit standard deviation; returns (array, stds).

    Mutual information is invariant to this per-variable rescaling but the max-norm k-NN
    estimators are not: without it one column with large units would decide every neighbour.
    """
    mu = a.mean(axis=0)
    sd = a.std(axis=0)
    sd = np.where(sd > 0, sd, 1.0)
    return (a - mu) / sd, sd


def tied_columns(a: np.ndarray) -> int:
    """Number of columns that contain at least one repeated value."""
    s = np.sort(a, axis=0)
    return int(np.any(s[1:] == s[:-1], axis=0).sum())


def add_jitter(arrays: Sequence[np.ndarray], jitter: float | None, rng: np.random.Generator,
               ) -> tuple[list[np.ndarray], int]:
    """Add N(0, jitter^2) noise to every column that has ties; returns (arrays, n_tied_columns).

    Arrays are expected standardised, so ``jitter`` is in standard deviations.  Jitter is drawn
    from ``rng`` so the result is reproducible from the recorded seed.
    """
    out, n_tied = [], 0
    for a in arrays:
        s = np.sort(a, axis=0)
        tied = np.any(s[1:] == s[:-1], axis=0)
        n_tied += int(tied.sum())
        if tied.any() and jitter:
            a = a.copy()
            a[:, tied] += jitter * rng.standard_normal((a.shape[0], int(tied.sum())))
        out.append(a)
    return out, n_tied


def _prepare(arrays: Sequence[np.ndarray], *, normalize: bool, jitter: float | None,
             rng: np.random.Generator, warn_ties: bool = True) -> tuple[list[np.ndarray], dict]:
    arrays = [standardize(a)[0] if normalize else a for a in arrays]
    n = arrays[0].shape[0]
    frac = max(1.0 - len(np.unique(a[:, j])) / n for a in arrays for j in range(a.shape[1])) if warn_ties else 0.0
    arrays, n_tied = add_jitter(arrays, jitter, rng)
    info = {"tied_columns": n_tied, "jitter_applied": bool(n_tied and jitter)}
    if n_tied and warn_ties:
        if frac > 0.05 and jitter:
            warnings.warn(f"{n_tied} column(s) have ties (up to {frac:.0%} repeated values); the k-NN estimate is "
                          f"of the jittered data (jitter={jitter:g} sd). For discrete or mixed data use "
                          "method='mixed'", UserWarning, stacklevel=5)
    return arrays, info


# ----------------------------------------------------------------------------- counting helpers

def _count_1d(v: np.ndarray, r: np.ndarray, inclusive: bool) -> np.ndarray:
    """Number of j != i with |v_j - v_i| < r_i (or <= when ``inclusive``), exactly as computed in floats.

    Works on the sorted distinct values and their counts.  ``searchsorted`` on ``v_i ± r_i``
    finds the window; because ``v_i + r_i`` is rounded, the edge is then corrected with the
    same predicate a tree uses (``|v_j - v_i|`` against ``r_i``).  Floating-point subtraction is
    monotone, so only the few distinct values within an ulp or two of the edge can move.
    """
    u, c = np.unique(v, return_counts=True)
    cum = np.concatenate([[0], np.cumsum(c)])
    m = u.size
    ok = (lambda d, rr: d <= rr) if inclusive else (lambda d, rr: d < rr)
    j0 = np.searchsorted(u, v)  # index of v_i among the distinct values
    # right side: distinct values u_j > v_i with |u_j - v_i| within r_i  ->  indices j0+1 .. hi-1
    hi = np.maximum(np.searchsorted(u, v + r, side="left"), j0 + 1)
    for _ in range(8):
        up = (hi < m) & ok(u[np.minimum(hi, m - 1)] - v, r)
        down = (hi > j0 + 1) & ~ok(u[np.maximum(hi - 1, 0)] - v, r)
        if not (up.any() or down.any()):
            break
        hi = hi + up - down
    # left side: distinct values u_j < v_i within r_i  ->  indices lo .. j0-1
    lo = np.minimum(np.searchsorted(u, v - r, side="right"), j0)
    for _ in range(8):
        left = (lo > 0) & ok(v - u[np.maximum(lo - 1, 0)], r)
        right = (lo < j0) & ~ok(v - u[np.minimum(lo, m - 1)], r)
        if not (left.any() or right.any()):
            break
        lo = lo - left + right
    equal = np.where(ok(np.zeros_like(r), r), c[j0] - 1, 0)
    return (cum[hi] - cum[j0 + 1] + cum[j0] - cum[lo] + equal).astype(np.int64)


def _count_equal_1d(v: np.ndarray) -> np.ndarray:
    s = np.sort(v)
    return (np.searchsorted(s, v, "right") - np.searchsorted(s, v, "left") - 1).astype(np.int64)


def _count_tree(sub: np.ndarray, r: np.ndarray, inclusive: bool, workers: int) -> np.ndarray:
    if sub.shape[1] == 1:
        return _count_1d(sub[:, 0], r, inclusive)
    rr = r if inclusive else np.nextafter(r, 0.0)
    rr = np.maximum(rr, 0.0)
    n = cKDTree(sub).query_ball_point(sub, rr, p=np.inf, return_length=True, workers=workers)
    return np.asarray(n, dtype=np.int64) - (r > 0 if not inclusive else 1)


def _count_zero_tree(sub: np.ndarray, rows: np.ndarray, workers: int) -> np.ndarray:
    if sub.shape[1] == 1:
        return _count_equal_1d(sub[:, 0])[rows]
    n = cKDTree(sub).query_ball_point(sub[rows], 0.0, p=np.inf, return_length=True, workers=workers)
    return np.asarray(n, dtype=np.int64) - 1


def _drop_self(idx: np.ndarray, k: int) -> np.ndarray:
    """From (N, k+1) neighbour indices (self usually first) keep k that are not the point itself."""
    n = idx.shape[0]
    is_self = idx == np.arange(n)[:, None]
    if is_self[:, 0].all():
        return idx[:, 1:]
    drop = is_self.copy()
    no_self = ~is_self.any(axis=1)
    drop[no_self, -1] = True
    return idx[~drop].reshape(n, k)


# ----------------------------------------------------------------------------- the engine

def knn_stats(blocks: Sequence[np.ndarray], k: int, sets: Sequence[tuple[int, ...]] = (), *,
              ksg2: bool = False, zeros: bool = False, backend: str = "auto", workers: int = -1,
              device: str = "cpu") -> KnnStats:
    """k-NN radii in the joint max-norm space of ``blocks`` and neighbour counts in subspaces.

    ``sets`` lists the marginal subspaces (tuples of block indices) to count in.  ``ksg2``
    also returns the per-block radii and inclusive counts KSG-2 needs; ``zeros`` returns the
    numbers of identical points the mixed estimator needs where ``eps`` is zero.
    """
    if backend not in BACKENDS:
        raise HsgprofError(f"unknown backend {backend!r}; accepted: {', '.join(BACKENDS)}")
    dim = sum(b.shape[1] for b in blocks)
    if backend == "auto":
        backend = "tree" if dim <= TREE_MAX_DIM else "brute"
    if backend == "brute":
        return _knn_brute(blocks, k, sets, ksg2=ksg2, zeros=zeros, device=device)
    return _knn_tree(blocks, k, sets, ksg2=ksg2, zeros=zeros, workers=workers)


def _knn_tree(blocks, k, sets, *, ksg2, zeros, workers) -> KnnStats:
    joint = blocks[0] if len(blocks) == 1 else np.hstack(blocks)
    dist, idx = cKDTree(joint).query(joint, k=k + 1, p=np.inf, workers=workers)
    eps = np.ascontiguousarray(dist[:, k])
    out = KnnStats(eps=eps, backend="tree")
    for s in sets:
        sub = blocks[s[0]] if len(s) == 1 else np.hstack([blocks[b] for b in s])
        out.counts[tuple(s)] = _count_tree(sub, eps, False, workers)
    if ksg2:
        nb = _drop_self(idx, k)
        out.ksg2_eps, out.ksg2_counts = [], []
        for b in blocks:
            e = np.abs(b[nb] - b[:, None, :]).max(axis=(1, 2))
            out.ksg2_eps.append(e)
            out.ksg2_counts.append(_count_tree(b, e, True, workers))
    if zeros:
        rows = np.flatnonzero(eps == 0)
        out.zero_joint = np.zeros(len(eps), np.int64)
        out.zero_counts = {tuple(s): np.zeros(len(eps), np.int64) for s in sets}
        if rows.size:
            out.zero_joint[rows] = _count_zero_tree(joint, rows, workers)
            for s in sets:
                sub = blocks[s[0]] if len(s) == 1 else np.hstack([blocks[b] for b in s])
                out.zero_counts[tuple(s)][rows] = _count_zero_tree(sub, rows, workers)
    return out


def _knn_brute(blocks, k, sets, *, ksg2, zeros, device) -> KnnStats:
    import torch

    n = blocks[0].shape[0]
    tb = [torch.from_numpy(np.ascontiguousarray(b)).to(device) for b in blocks]
    n_mats = len(blocks) + 2 + len(sets)
    rows = int(max(64, min(n, (256 * 2**20) // (8 * n * n_mats))))  # ~256 MiB of distance matrices
    eps = np.empty(n)
    counts = {tuple(s): np.empty(n, np.int64) for s in sets}
    k2_eps = [np.empty(n) for _ in blocks] if ksg2 else None
    k2_cnt = [np.empty(n, np.int64) for _ in blocks] if ksg2 else None
    zj = np.zeros(n, np.int64) if zeros else None
    zc = {tuple(s): np.zeros(n, np.int64) for s in sets} if zeros else None
    inf = float("inf")
    with torch.no_grad():
        for start in range(0, n, rows):
            stop = min(n, start + rows)
            ds = [torch.cdist(t[start:stop], t, p=inf) for t in tb]
            dj = torch.maximum(ds[0], ds[1]) if len(ds) > 1 else ds[0]
            for d in ds[2:]:
                torch.maximum(dj, d, out=dj)
            vals, idx = torch.topk(dj, k + 1, dim=1, largest=False, sorted=True)
            e = vals[:, k]
            eps[start:stop] = e.cpu().numpy()
            pos = e > 0
            for s in sets:
                dsub = ds[s[0]] if len(s) == 1 else torch.stack([ds[b] for b in s]).amax(0)
                counts[tuple(s)][start:stop] = (_nsum(dsub < e[:, None]) - pos.long()).cpu().numpy()
                if zeros:
                    zc[tuple(s)][start:stop] = (_nsum(dsub == 0) - 1).cpu().numpy()
            if zeros:
                zj[start:stop] = (_nsum(dj == 0) - 1).cpu().numpy()
            if ksg2:
                nb = torch.from_numpy(_drop_self_block(idx.cpu().numpy(), start, k)).to(device)
                for bi, d in enumerate(ds):
                    eb = torch.gather(d, 1, nb).amax(1)
                    k2_eps[bi][start:stop] = eb.cpu().numpy()
                    k2_cnt[bi][start:stop] = (_nsum(d <= eb[:, None]) - 1).cpu().numpy()
            del ds, dj
    return KnnStats(eps=eps, counts=counts, ksg2_eps=k2_eps, ksg2_counts=k2_cnt, zero_joint=zj,
                    zero_counts=zc, backend="brute")


def _nsum(mask):
    """Row sums of a boolean matrix (summing it as uint8 is about 1.5x faster than as bool)."""
    import torch

    return mask.view(torch.uint8).sum(1, dtype=torch.int64)


def _drop_self_block(idx: np.ndarray, start: int, k: int) -> np.ndarray:
    """:func:`_drop_self` for a block of rows whose first row is point ``start``."""
    n = idx.shape[0]
    is_self = idx == (start + np.arange(n))[:, None]
    drop = is_self.copy()
    drop[~is_self.any(axis=1), -1] = True
    return idx[~drop].reshape(n, k)


# ----------------------------------------------------------------------------- estimators

def _psi(a: np.ndarray) -> np.ndarray:
    return digamma(np.asarray(a, dtype=np.float64))


def _check_eps(eps: np.ndarray, what: str) -> None:
    if np.any(eps <= 0):
        raise HsgprofError(f"{int((eps <= 0).sum())} point(s) have more than k exact duplicates in the joint space of "
                           f"{what}; accepted: continuous data (enable jitter) or method='mixed' for discrete data")


def ksg1(x: np.ndarray, y: np.ndarray, k: int, *, backend: str = "auto") -> float:
    """KSG estimator 1 (Kraskov, Stögbauer & Grassberger 2004, eq. 8) on prepared arrays, in nats."""
    st = knn_stats([x, y], k, [(0,), (1,)], backend=backend)
    _check_eps(st.eps, "(x, y)")
    n = x.shape[0]
    return float(digamma(k) + digamma(n) - np.mean(_psi(st.counts[(0,)] + 1) + _psi(st.counts[(1,)] + 1)))


def ksg2(x: np.ndarray, y: np.ndarray, k: int, *, backend: str = "auto") -> float:
    """KSG estimator 2 (Kraskov et al. 2004, eq. 9): per-variable radii, inclusive counts, in nats."""
    st = knn_stats([x, y], k, [], ksg2=True, backend=backend)
    _check_eps(st.eps, "(x, y)")
    n = x.shape[0]
    nx, ny = st.ksg2_counts
    return float(digamma(k) - 1.0 / k + digamma(n) - np.mean(_psi(nx) + _psi(ny)))


def frenzel_pompe(x: np.ndarray, y: np.ndarray, z: np.ndarray, k: int, *, backend: str = "auto") -> float:
    """Frenzel & Pompe (2007) conditional MI I(X;Y|Z): KSG-1 counts in the (x,z), (y,z), z spaces."""
    st = knn_stats([x, y, z], k, [(0, 2), (1, 2), (2,)], backend=backend)
    _check_eps(st.eps, "(x, y, z)")
    c = st.counts
    return float(digamma(k) - np.mean(_psi(c[(0, 2)] + 1) + _psi(c[(1, 2)] + 1) - _psi(c[(2,)] + 1)))


def mixed_mi(x: np.ndarray, y: np.ndarray, k: int, *, backend: str = "auto") -> float:
    """Gao, Kannan, Oh & Viswanath (2017) estimator for discrete–continuous mixtures, in nats.

    Where a point's k-th neighbour distance is positive this is KSG-1 (counts strictly inside,
    self included); where it is zero (a point with at least k exact copies) the number of copies
    replaces k and the counts are of identical values, which turns the estimate into the
    plug-in estimate on the discrete part.  No jitter: ties are information here.
    """
    st = knn_stats([x, y], k, [(0,), (1,)], zeros=True, backend=backend)
    n = x.shape[0]
    zero = st.eps == 0
    kt = np.where(zero, st.zero_joint + 1, k)
    nx = np.where(zero, st.zero_counts[(0,)], st.counts[(0,)]) + 1
    ny = np.where(zero, st.zero_counts[(1,)], st.counts[(1,)]) + 1
    return float(np.mean(_psi(kt) + np.log(n) - _psi(nx) - _psi(ny)))


def mixed_cmi(x: np.ndarray, y: np.ndarray, z: np.ndarray, k: int, *, backend: str = "auto") -> float:
    """Mixed-data conditional MI (Mesner & Shalizi 2020): Gao's tie rule applied to Frenzel–Pompe."""
    sets = [(0, 2), (1, 2), (2,)]
    st = knn_stats([x, y, z], k, sets, zeros=True, backend=backend)
    zero = st.eps == 0
    kt = np.where(zero, st.zero_joint + 1, k)
    c = {s: np.where(zero, st.zero_counts[s], st.counts[s]) + 1 for s in sets}
    return float(np.mean(_psi(kt) - _psi(c[(0, 2)]) - _psi(c[(1, 2)]) + _psi(c[(2,)])))


def kl_entropy(x: np.ndarray, k: int, *, backend: str = "auto") -> float:
    """Kozachenko–Leonenko differential entropy (max-norm ball of volume (2 eps)^d), in nats."""
    st = knn_stats([x], k, [], backend=backend)
    _check_eps(st.eps, "x")
    n, d = x.shape
    return float(digamma(n) - digamma(k) + d * np.mean(np.log(2.0 * st.eps)))
