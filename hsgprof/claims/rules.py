"""Verdict rules: each declares its tolerance up front and judges a measurement against a claim.

A rule never sees which variant "should" win; it maps (claimed, measured) to one of the
statuses below, with a one-line reason that names the numbers it compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUPPORTED = "supported"
REFUTED = "refuted"
INCONCLUSIVE = "inconclusive"
NOT_MEASURABLE = "not measurable as stated"
NOT_MEASURED = "not measured"
STATUSES = (SUPPORTED, REFUTED, INCONCLUSIVE, NOT_MEASURABLE, NOT_MEASURED)


@dataclass(frozen=True)
class Measured:
    """A measured value, where it came from, and how sure it is."""

    value: Any
    source: str                              # results file (or files) it was read from
    ci: tuple[float, float] | None = None    # confidence interval, when the measurement has one
    estimate: bool = False                   # True: a model/estimator, not a direct measurement
    device: str = ""                         # e.g. "CPU (meta-device count)" or "NVIDIA H100 80GB HBM3"
    note: str = ""
    unjudged: str = ""                       # set: the rule is not applied (e.g. "not measured on a GPU");
                                             # the value is shown beside it as an estimate


def fmt(x: Any) -> str:
    """Compact number formatting for verdict reasons (SI suffixes, 3 significant digits)."""
    if isinstance(x, (tuple, list)):
        return "(" + ", ".join(str(v) if isinstance(v, int) and abs(v) < 100_000 else fmt(v) for v in x) + ")"
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    a = abs(x)
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= scale:
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


class Rule:
    """Base class: ``describe()`` for the ledger, ``judge()`` for the verdict."""

    def describe(self) -> str:
        raise NotImplementedError

    def judge(self, claimed: Any, m: Measured) -> tuple[str, str]:
        raise NotImplementedError


@dataclass(frozen=True)
class Approx(Rule):
    """Supported when |measured − claimed| ≤ rel_tol · |claimed| ("≈ X" claims)."""

    rel_tol: float = 0.10

    def describe(self) -> str:
        return f"within ±{self.rel_tol:.0%} of the claimed value"

    def judge(self, claimed: float, m: Measured) -> tuple[str, str]:
        dev = (m.value - claimed) / abs(claimed)
        status = SUPPORTED if abs(dev) <= self.rel_tol else REFUTED
        return status, f"measured {fmt(m.value)} vs claimed {fmt(claimed)} ({dev:+.0%}; tolerance ±{self.rel_tol:.0%})"


@dataclass(frozen=True)
class Exact(Rule):
    """Supported only when the measured value equals the claimed one (shapes, channels)."""

    def describe(self) -> str:
        return "exactly equal"

    def judge(self, claimed: Any, m: Measured) -> tuple[str, str]:
        same = tuple(m.value) == tuple(claimed) if isinstance(claimed, (tuple, list)) else m.value == claimed
        return (SUPPORTED if same else REFUTED), f"measured {fmt(m.value)} vs claimed {fmt(claimed)}"


@dataclass(frozen=True)
class AtMost(Rule):
    """Supported when measured ≤ the bound (e.g. "< 5%"): ``bound``, or the claimed value when it is None."""

    bound: float | None = None

    def describe(self) -> str:
        return "measured at or below " + ("the claimed bound" if self.bound is None else fmt(self.bound))

    def judge(self, claimed: float, m: Measured) -> tuple[str, str]:
        bound = claimed if self.bound is None else self.bound
        return (SUPPORTED if m.value <= bound else REFUTED), f"measured {fmt(m.value)} vs bound {fmt(bound)}"


@dataclass(frozen=True)
class AtLeast(Rule):
    """Supported when measured ≥ the bound: ``bound``, or the claimed value when it is None."""

    bound: float | None = None

    def describe(self) -> str:
        return "measured at or above " + ("the claimed bound" if self.bound is None else fmt(self.bound))

    def judge(self, claimed: float, m: Measured) -> tuple[str, str]:
        bound = claimed if self.bound is None else self.bound
        return (SUPPORTED if m.value >= bound else REFUTED), f"measured {fmt(m.value)} vs bound {fmt(bound)}"


@dataclass(frozen=True)
class Between(Rule):
    """Supported when lo ≤ measured ≤ hi: a declared acceptance range, whatever the claimed value."""

    lo: float
    hi: float

    def describe(self) -> str:
        return f"measured between {fmt(self.lo)} and {fmt(self.hi)}"

    def judge(self, claimed: Any, m: Measured) -> tuple[str, str]:
        ok = self.lo <= m.value <= self.hi
        return (SUPPORTED if ok else REFUTED), f"measured {fmt(m.value)} vs accepted {fmt(self.lo)}–{fmt(self.hi)}"


@dataclass(frozen=True)
class InRange(Rule):
    """Supported when lo·(1−slack) ≤ measured ≤ hi·(1+slack) ("1.2–1.5 GB" claims)."""

    slack: float = 0.10

    def describe(self) -> str:
        return f"inside the claimed range, widened by ±{self.slack:.0%}"

    def judge(self, claimed: tuple[float, float], m: Measured) -> tuple[str, str]:
        lo, hi = claimed
        ok = lo * (1 - self.slack) <= m.value <= hi * (1 + self.slack)
        return (SUPPORTED if ok else REFUTED), f"measured {fmt(m.value)} vs claimed {fmt(lo)}–{fmt(hi)}"


@dataclass(frozen=True)
class Negative(Rule):
    """A difference claimed < 0: supported if its CI lies below 0, refuted if above, else inconclusive."""

    def describe(self) -> str:
        return "the confidence interval of the difference lies entirely below 0"

    def judge(self, claimed: Any, m: Measured) -> tuple[str, str]:
        if m.ci is None:
            return INCONCLUSIVE, f"measured {fmt(m.value)} without a confidence interval"
        lo, hi = m.ci
        status = SUPPORTED if hi < 0 else REFUTED if lo > 0 else INCONCLUSIVE
        return status, f"measured {fmt(m.value)} (CI {fmt(lo)} to {fmt(hi)})"


@dataclass(frozen=True)
class Positive(Rule):
    """A quantity claimed > 0: supported if its CI lies above 0, refuted if below, else inconclusive."""

    def describe(self) -> str:
        return "the confidence interval lies entirely above 0"

    def judge(self, claimed: Any, m: Measured) -> tuple[str, str]:
        if m.ci is None:
            return INCONCLUSIVE, f"measured {fmt(m.value)} without a confidence interval"
        lo, hi = m.ci
        status = SUPPORTED if lo > 0 else REFUTED if hi < 0 else INCONCLUSIVE
        return status, f"measured {fmt(m.value)} (CI {fmt(lo)} to {fmt(hi)})"


@dataclass(frozen=True)
class Verdict(Rule):
    """The measurement itself carries the verdict (a named test declared in its analysis)."""

    criterion: str

    def describe(self) -> str:
        return self.criterion

    def judge(self, claimed: Any, m: Measured) -> tuple[str, str]:
        status, reason = m.value
        if status not in STATUSES:
            raise ValueError(f"measurement returned status {status!r}; accepted: {', '.join(STATUSES)}")
        return status, reason


@dataclass(frozen=True)
class NotMeasurable(Rule):
    """The claim cannot be tested as written; the reason says why (a related measurement may be shown)."""

    reason: str

    def describe(self) -> str:
        return f"not testable as written: {self.reason}"

    def judge(self, claimed: Any, m: Measured) -> tuple[str, str]:
        return NOT_MEASURABLE, self.reason + (f" (related measurement: {fmt(m.value)})" if m.value is not None else "")
