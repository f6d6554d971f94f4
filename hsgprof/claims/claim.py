"""A claim as the ledger and the verdict table know it: what is claimed, and the rule that judges it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .rules import Rule


@dataclass(frozen=True)
class Claim:
    """One statement of a design document, what would test it, and how the verdict is reached."""

    id: str
    section: str
    statement: str
    claimed: Any
    unit: str
    conditions: str
    measure: str            # the report's results reader (hsgprof.claims.measures), or the claims-file kind
    rule: Rule
