"""Input checks shared by every estimator: shapes, finiteness, constant columns, k versus N.

Each check raises :class:`~hsgprof.errors.HsgprofError` (a ``ValueError``) with one line that
names the bad value and says what is accepted, before any heavy work starts.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from hsgprof.errors import HsgprofError


def as_2d(name: str, a: Any, *, allow_constant: bool = False) -> np.ndarray:
    """Return ``a`` as a float64 ``(N, d)`` array; 1-D input becomes ``(N, 1)``.

    Accepts numpy arrays, torch tensors and nested sequences of numbers.  Refuses empty,
    3-D, non-numeric, NaN/inf and (unless ``allow_constant``) constant-column input.
    """
    if a is None:
        raise HsgprofError(f"{name} is None; accepted: an (N, d) or (N,) numpy array or torch tensor")
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # torch tensor, without importing torch
        a = a.detach().cpu().numpy()
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as exc:
        raise HsgprofError(f"{name} cannot be read as an array ({exc}); accepted: (N, d) or (N,) numbers") from None
    if arr.dtype.kind not in "biuf":
        raise HsgprofError(f"{name} has dtype {arr.dtype}; accepted: numeric (bool, int or float) arrays")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise HsgprofError(f"{name} has shape {arr.shape}; accepted: (N, d) or (N,)")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise HsgprofError(f"{name} has shape {arr.shape}; accepted: at least one row and one column")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise HsgprofError(f"{name} holds {int(bad.sum())} NaN/inf value(s) (first at row {row}, column {col}); "
                           "accepted: finite numbers only (drop or impute them first)")
    if not allow_constant:
        const = np.flatnonzero(np.all(arr == arr[:1], axis=0))
        if const.size:
            raise HsgprofError(f"{name} column {int(const[0])} is constant (every value {arr[0, const[0]]:g}); "
                               "accepted: columns that vary (a constant carries no information: drop it)")
    return arr


def same_n(**arrays: np.ndarray) -> int:
    """The common number of rows; refuses arrays whose N differ."""
    ns = {name: a.shape[0] for name, a in arrays.items()}
    if len(set(ns.values())) != 1:
        listed = ", ".join(f"{k} has N={v}" for k, v in ns.items())
        raise HsgprofError(f"mismatched sample counts: {listed}; accepted: arrays with the same number of rows")
    return next(iter(ns.values()))


def check_k(k: Any, n: int) -> int:
    """``k`` must be a positive integer smaller than ``N``."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise HsgprofError(f"k={k!r} is not a positive integer; accepted: k = 1, 2, 3, ... (default 3)")
    if n <= k:
        raise HsgprofError(f"N={n} samples but k={k} neighbours; accepted: N > k (use more samples or a smaller k)")
    return int(k)


def check_choice(name: str, value: Any, accepted: Sequence[Any]) -> Any:
    """``value`` must be one of ``accepted``."""
    if value not in accepted:
        raise HsgprofError(f"unknown {name} {value!r}; accepted: {', '.join(map(str, accepted))}")
    return value


def check_prob(name: str, value: Any, lo: float = 0.0, hi: float = 1.0) -> float:
    """A float strictly between ``lo`` and ``hi``."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise HsgprofError(f"{name}={value!r} is not a number; accepted: a number in ({lo}, {hi})") from None
    if not lo < v < hi:
        raise HsgprofError(f"{name}={value!r} is out of range; accepted: a number in ({lo}, {hi})")
    return v


def check_int(name: str, value: Any, minimum: int) -> int:
    """An integer at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise HsgprofError(f"{name}={value!r} is not an integer >= {minimum}; accepted: integers >= {minimum}")
    return int(value)
