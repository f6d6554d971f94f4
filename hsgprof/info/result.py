"""The result object every estimator returns."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from hsgprof.errors import HsgprofError

UNITS = ("nats", "bits")
_SYMBOL = {"mi": "I(X;Y)", "cmi": "I(X;Y|Z)", "entropy": "H(X)"}


@dataclass(frozen=True)
class InfoResult:
    """An information estimate with everything needed to reproduce and judge it.

    ``value`` (and ``ci``, ``se``) are in ``units``; ``nats``/``bits`` give the value in either.
    ``params`` are the estimator's options as used, ``seed`` reproduces every random step
    (jitter, surrogates, subsamples, permutations, network initialisation), ``details`` holds
    method-specific diagnostics (e.g. raw KSG and the reference bias for ``ksg_gc``).
    """

    quantity: str
    method: str
    value: float
    units: str
    n: int
    dims: dict[str, int]
    params: dict[str, Any]
    seed: int
    ci: tuple[float, float] | None = None
    level: float | None = None
    ci_method: str | None = None
    se: float | None = None
    p_value: float | None = None
    test: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def nats(self) -> float:
        return self.value * (math.log(2) if self.units == "bits" else 1.0)

    @property
    def bits(self) -> float:
        return self.value / (1.0 if self.units == "bits" else math.log(2))

    def to(self, units: str) -> "InfoResult":
        """The same result expressed in ``units`` ("nats" or "bits")."""
        if units not in UNITS:
            raise HsgprofError(f"unknown units {units!r}; accepted: {', '.join(UNITS)}")
        if units == self.units:
            return self
        f = 1.0 / math.log(2) if units == "bits" else math.log(2)
        return replace(self, units=units, value=self.value * f,
                       ci=None if self.ci is None else (self.ci[0] * f, self.ci[1] * f),
                       se=None if self.se is None else self.se * f)

    def as_dict(self) -> dict[str, Any]:
        """A flat, JSON-friendly dict (one tidy row)."""
        d = asdict(self)
        ci = d.pop("ci")
        d["ci_low"], d["ci_high"] = (ci if ci is not None else (None, None))
        return d

    def __float__(self) -> float:
        return float(self.value)

    def __str__(self) -> str:
        s = f"{_SYMBOL.get(self.quantity, self.quantity)} = {self.value:.4f} {self.units}"
        if self.ci is not None:
            s += f" [{self.ci[0]:.4f}, {self.ci[1]:.4f}] ({self.level:.0%} {self.ci_method})"
        if self.p_value is not None:
            s += f", p = {self.p_value:.3g} ({self.test})"
        return s + f"  [{self.method}, N={self.n}]"
