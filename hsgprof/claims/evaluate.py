"""Judge every ledger claim against the results a store holds: one verdict row per claim."""

from __future__ import annotations

import pandas as pd

from .ledger import LEDGER, Claim
from .measures import MEASURES
from .rules import NOT_MEASURABLE, NOT_MEASURED, Measured, NotMeasurable, fmt


def judge(claim: Claim, store) -> dict:
    """The verdict row of one claim, measured from the results in ``store``."""
    measured: Measured | None = MEASURES[claim.measure](store) if claim.measure in MEASURES else None
    return verdict_row(claim, measured)


def verdict_row(claim: Claim, measured: Measured | None) -> dict:
    """The verdict row of one claim given its measurement (None: nothing was found to judge it by).

    Shared by the report (measurements read from results files) and ``hsgprof verify`` (measured
    for a claims file), so both print the same columns the same way.
    """
    row = {"id": claim.id, "section": claim.section, "statement": claim.statement,
           "claimed": "" if claim.claimed is None else f"{fmt(claim.claimed)} {claim.unit}".strip(),
           "conditions": claim.conditions, "rule": claim.rule.describe()}
    if measured is None:
        if isinstance(claim.rule, NotMeasurable):
            status, reason = NOT_MEASURABLE, claim.rule.reason
        else:
            status, reason = NOT_MEASURED, f"no results for measurement {claim.measure!r} were found"
        return {**row, "measured": "", "verdict": status, "reason": reason, "source": "", "device": "",
                "estimate": False}
    if measured.unjudged:                   # e.g. a GPU quantity with only a CPU-side estimate
        reason = f"{measured.unjudged}; rule not applied; CPU-side estimate {fmt(measured.value)}"
        return {**row, "measured": f"{measured.unjudged}; estimate {fmt(measured.value)}", "verdict": NOT_MEASURED,
                "reason": reason + (f"; {measured.note}" if measured.note else "") + " [estimate]",
                "source": measured.source, "device": measured.device, "estimate": True}
    status, reason = claim.rule.judge(claim.claimed, measured)
    shown = measured.value[1] if isinstance(measured.value, tuple) and measured.value and \
        isinstance(measured.value[0], str) else fmt(measured.value)
    if measured.note:
        reason = f"{reason}; {measured.note}"
    if measured.estimate:
        reason = f"{reason} [estimate]"
    return {**row, "measured": shown if len(str(shown)) < 40 else "see reason", "verdict": status,
            "reason": reason, "source": measured.source, "device": measured.device, "estimate": measured.estimate}


def evaluate(store) -> pd.DataFrame:
    """Verdict rows for the whole ledger, in ledger order."""
    return pd.DataFrame([judge(c, store) for c in LEDGER])
