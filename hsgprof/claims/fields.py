"""Field parsers of a claims file: numbers with SI suffixes, inputs, choices, and tolerances as verdict rules.

Every parser takes the value as written and a :class:`Where` naming its place in the file, and
raises :class:`~hsgprof.errors.HsgprofError` with one line naming the field and what is accepted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hsgprof.errors import HsgprofError

from .rules import AtLeast, AtMost, Approx, Between, Exact, InRange, Rule

_NUMBER = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(Ki|Mi|Gi|Ti|k|M|G|T)?$")
_SCALE = {None: 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2 ** 10, "Mi": 2 ** 20, "Gi": 2 ** 30,
          "Ti": 2 ** 40}
_TOLERANCE_HELP = ("give a relative tolerance such as 0.10, a range [lo, hi], {max: X}, {min: X}, "
                   "{min: X, max: Y}, max or min (the value is the bound) or exact")

class Where:
    """Names the place in the file an error is about: ``FILE: claims[3] (id 'x'): field 'y'``."""

    def __init__(self, path: Path, claim: str = ""):
        self.path, self.claim = path, claim

    def error(self, field_name: str, message: str) -> HsgprofError:
        place = f"{self.path}: " + (f"{self.claim}: " if self.claim else "")
        return HsgprofError(f"{place}field {field_name!r}: {message}")


def parse_number(text: Any, where: Where, name: str) -> float | int:
    """A number: YAML int/float, or text like ``25.6M``, ``4.09G``, ``1.5Gi`` or ``38.5e6``."""
    if isinstance(text, bool):
        raise where.error(name, f"{text!r} is not a number; give e.g. 38.5M, 4.09G, 0.05 or 1.5e9")
    if isinstance(text, (int, float)):
        return text
    match = _NUMBER.match(str(text).strip()) if isinstance(text, str) else None
    if not match:
        raise where.error(name, f"{text!r} is not a number; give e.g. 38.5M, 4.09G, 0.05 or 1.5e9 "
                                "(suffixes k, M, G, T and Ki, Mi, Gi, Ti)")
    value = float(match[1]) * _SCALE[match[2]]
    return int(value) if value.is_integer() and abs(value) < 2 ** 53 else value


def parse_shape(value: Any, where: Where, name: str) -> tuple[int, ...]:
    """An input: ``BxCxHxW``, ``HxW`` (batch 1, 3 channels) or a list of positive integers."""
    if isinstance(value, str):
        parts = value.lower().replace(" ", "").split("x")
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = []
    try:
        dims = tuple(int(p) for p in parts if not isinstance(p, bool))
    except (TypeError, ValueError):
        dims = ()
    if len(dims) != len(parts) or len(dims) not in (2, 4) or any(d <= 0 for d in dims):
        raise where.error(name, f"{value!r} is not accepted; give BxCxHxW or HxW with positive integers, "
                                "e.g. 1x3x1080x1920 or 640x640")
    return dims if len(dims) == 4 else (1, 3, *dims)


def choice(value: Any, accepted: tuple[str, ...], where: Where, name: str) -> str:
    if value not in accepted:
        raise where.error(name, f"{value!r} is not accepted; accepted: {', '.join(accepted)}")
    return value


def nonempty_text(value: Any, where: Where, name: str) -> str:
    if not isinstance(value, (str, int, float)) or isinstance(value, bool) or str(value).strip() == "":
        raise where.error(name, f"{value!r} is not accepted; give a non-empty text")
    return str(value)


def overrides_of(value: Any, where: Where, name: str) -> tuple[tuple[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise where.error(name, f"{value!r} is not accepted; give a mapping of config fields, e.g. {{num_tokens: 512}}")
    return tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in value.items()))

def only(mapping: dict, accepted: tuple[str, ...], where: Where, name: str) -> None:
    for key in mapping:
        if key not in accepted:
            raise where.error(f"{name}.{key}" if name else str(key),
                              f"unknown field; accepted here: {', '.join(accepted)}")

def positive_int(value: Any, where: Where, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise where.error(name, f"{value!r} is not accepted; give a positive integer")
    return value


def rule_of(kind: str, value: Any, tolerance: Any, where: Where) -> tuple[Any, Rule]:
    """The claimed value (base units) and the verdict rule its tolerance declares."""
    if tolerance == "exact":
        if isinstance(value, list):
            return tuple(parse_number(v, where, "value") for v in value), Exact()
        return parse_number(value, where, "value"), Exact()
    if kind == "shape":
        raise where.error("tolerance", f"{tolerance!r} is not accepted for a shape; give exact")
    if isinstance(value, list):
        if len(value) != 2 or not isinstance(tolerance, (int, float)) or isinstance(tolerance, bool):
            raise where.error("value", f"{value!r} is not accepted; a list value is a range [lo, hi] and needs a "
                                       "relative tolerance (e.g. 0.10), or a shape with tolerance exact")
        lo, hi = (parse_number(v, where, "value") for v in value)
        if lo > hi:
            raise where.error("value", f"range {value!r} has lo > hi")
        return (lo, hi), InRange(_relative(tolerance, where))
    claimed = parse_number(value, where, "value")
    if tolerance in ("max", "min"):
        return claimed, AtMost() if tolerance == "max" else AtLeast()
    if isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool):
        if claimed == 0:
            raise where.error("tolerance", "a relative tolerance needs a non-zero value; give a bound "
                                           "({max: X} or {min: X}) or a range [lo, hi]")
        return claimed, Approx(_relative(tolerance, where))
    if isinstance(tolerance, list) and len(tolerance) == 2:
        lo, hi = (parse_number(v, where, "tolerance") for v in tolerance)
        if lo > hi:
            raise where.error("tolerance", f"range {tolerance!r} has lo > hi")
        return claimed, Between(lo, hi)
    if isinstance(tolerance, dict) and tolerance and set(tolerance) <= {"min", "max"}:
        lo = parse_number(tolerance["min"], where, "tolerance.min") if "min" in tolerance else None
        hi = parse_number(tolerance["max"], where, "tolerance.max") if "max" in tolerance else None
        if lo is not None and hi is not None:
            if lo > hi:
                raise where.error("tolerance", f"{tolerance!r} has min > max")
            return claimed, Between(lo, hi)
        return claimed, AtMost(hi) if hi is not None else AtLeast(lo)
    raise where.error("tolerance", f"{tolerance!r} is not accepted; {_TOLERANCE_HELP}")


def _relative(tolerance: float, where: Where) -> float:
    if not 0 <= tolerance < 10:
        raise where.error("tolerance", f"{tolerance!r} is not accepted; a relative tolerance is >= 0 (0.10 = ±10%)")
    return float(tolerance)
