"""The claims file: a YAML document of a model's claims, parsed and validated into :class:`ClaimsFile`.

Schema (``schema: hsgprof.claims/1``; the docs' Claims files page has the long form)::

    model: hsgdet-l                      # preset or package.module:factory, or {target: ..., overrides: {...}}
    input: 1x3x1080x1920                 # BxCxHxW or HxW (default: the target's own input)
    input_mode: native                   # native | padded (H, W rounded up to a multiple of 32)
    groups: {global reasoning: [Global block, Sparse head]}     # named component groups (optional)
    readings:                            # optional: named override sets; every claim is judged under each
      - {name: c2f, overrides: {csp_block: c2f}}
      - {name: c3, target: hsgdet-l, overrides: {csp_block: c3}}
    primary_reading: c2f                 # default: the first reading
    claims:
      - {id: params.total, kind: params, value: 38.5M, unit: parameters, tolerance: 0.10}

Every claim has ``id``, ``kind``, ``value``, ``unit`` and ``tolerance``; the other fields depend on its
kind (:data:`KINDS`). Validation raises :class:`~hsgprof.errors.HsgprofError` with one line naming
the file, the claim and the field, and what is accepted. This module parses only: nothing is built
or measured here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hsgprof.errors import HsgprofError

from .fields import (Where, choice, nonempty_text, only, overrides_of, parse_shape, positive_int,
                     rule_of)
from .rules import Exact, Rule

SCHEMA = "hsgprof.claims/1"
TOP_FIELDS = ("schema", "title", "document", "model", "input", "input_mode", "groups", "readings",
              "primary_reading", "claims")
INPUT_MODES = ("native", "padded")
MODES = ("inference", "train")
SHARE_OF = ("flops", "time")
EAGER = "eager"
MEMORY_QUANTITIES = {
    # quantity -> what it is (the MemoryEstimate attribute it reads, or the parameter arithmetic)
    "params": "parameter bytes: every parameter × the bytes of one element at the precision (no estimator)",
    "activations": "training: activations saved for backward; inference: activation working-set peak",
    "saved": "activations saved for backward (training)",
    "activation_peak": "peak live bytes above parameters and input",
    "peak_allocated": "peak allocated bytes of the step (what torch.cuda.max_memory_allocated reports)",
    "peak_reserved": "peak reserved bytes of the step (what the caching allocator holds; what OOMs see)",
}
LAYOUT_LETTERS = "BCHW"

_COMMON = ("id", "kind", "value", "unit", "tolerance", "section", "statement", "conditions")
_MEASURED = ("model", "input", "input_mode")


@dataclass(frozen=True)
class Kind:
    """What a claim kind accepts: its own fields, required fields, and units (None: any label)."""

    fields: tuple[str, ...]
    required: tuple[str, ...] = ()
    units: tuple[str, ...] | None = None
    measured: bool = True                   # False: read from a file (custom), no model fields


KINDS: dict[str, Kind] = {
    "params": Kind(("component", "reference"), units=("parameters", "params", "ratio")),
    "flops": Kind(("component", "reference", "batch"), units=("FLOPs", "MACs", "ratio")),
    "share": Kind(("component", "of", "batch", "precision", "compile"), ("component",), units=("fraction",)),
    "shape": Kind(("component", "layout")),
    "memory": Kind(("quantity", "mode", "precision", "optimizer", "batch"), ("quantity",), units=("bytes",)),
    "max_batch": Kind(("card", "mode", "precision", "optimizer"), ("card",)),
    "latency_ratio": Kind(("reference", "batch", "precision", "compile"), ("reference",)),
    "custom": Kind(("file", "key", "where"), ("file", "key"), measured=False),
}



@dataclass(frozen=True)
class TargetSpec:
    """A model to build: a preset or ``package.module:factory`` and its config overrides."""

    target: str
    overrides: tuple[tuple[str, Any], ...] = ()

    def overrides_dict(self) -> dict[str, Any]:
        return dict(self.overrides)

    def label(self) -> str:
        if not self.overrides:
            return self.target
        return f"{self.target} (" + ", ".join(f"{k}={v}" for k, v in self.overrides) + ")"


@dataclass(frozen=True)
class Reference:
    """The denominator of a ratio claim: another target, at its own input if given, whole or one component."""

    model: TargetSpec
    input: tuple[int, ...] | None = None
    input_mode: str | None = None
    component: str | None = None


@dataclass(frozen=True)
class Reading:
    """A named reading of the design: an optional target and overrides applied over the file's model."""

    name: str
    target: str | None = None
    overrides: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class ClaimSpec:
    """One validated claim; ``value`` and bounds are in base units (parameters, FLOPs/MACs, bytes)."""

    id: str
    kind: str
    value: Any
    unit: str
    rule: Rule
    tolerance: Any                                   # as written, for the record
    section: str = ""
    statement: str = ""
    conditions: str = ""
    model: TargetSpec | None = None                 # the claim's own model (not judged per reading)
    input: tuple[int, ...] | None = None
    input_mode: str | None = None
    component: str | None = None
    reference: Reference | None = None
    batch: int | None = None
    precision: str | None = None
    mode: str | None = None
    optimizer: str | None = None
    card: str | None = None
    quantity: str | None = None
    of: str = "flops"
    layout: str | None = None
    compile: str = EAGER
    file: Path | None = None
    key: str | None = None
    where: tuple[tuple[str, Any], ...] = ()

    @property
    def unit_word(self) -> str:
        """The unit's first word (``FLOPs (2×MAC)`` -> ``FLOPs``): what decides the convention."""
        return unit_word(self.unit)


@dataclass(frozen=True)
class ClaimsFile:
    """A whole claims file: the model, its input, readings, named groups and claims."""

    path: Path
    model: TargetSpec
    claims: tuple[ClaimSpec, ...]
    title: str = ""
    document: str = ""
    input: tuple[int, ...] | None = None
    input_mode: str = "native"
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    readings: tuple[Reading, ...] = ()
    primary_reading: str = ""

    def reading_names(self) -> tuple[str, ...]:
        return tuple(r.name for r in self.readings)


def unit_word(unit: str) -> str:
    match = re.match(r"\s*([A-Za-z%]+)", unit)
    return match[1] if match else ""


def _target(value: Any, where: Where, name: str) -> TargetSpec:
    """``hsgdet-l`` or ``{target: hsgdet-l, overrides: {...}}``."""
    if isinstance(value, str) and value.strip():
        return TargetSpec(value.strip())
    if isinstance(value, dict):
        only(value, ("target", "overrides"), where, name)
        if not isinstance(value.get("target"), str) or not value["target"].strip():
            raise where.error(f"{name}.target", f"{value.get('target')!r} is not accepted; give a preset "
                                                "(e.g. hsgdet-l) or package.module:factory")
        return TargetSpec(value["target"].strip(), overrides_of(value.get("overrides"), where, f"{name}.overrides"))
    raise where.error(name, f"{value!r} is not accepted; give a preset (e.g. hsgdet-l), package.module:factory "
                            "(e.g. torchvision.models:resnet50) or {target: ..., overrides: {...}}")


def _reference(value: Any, where: Where) -> Reference:
    if isinstance(value, dict):
        only(value, ("target", "overrides", "input", "input_mode", "component"), where, "reference")
        model = _target({k: v for k, v in value.items() if k in ("target", "overrides")}, where, "reference")
        shape = parse_shape(value["input"], where, "reference.input") if "input" in value else None
        mode = choice(value["input_mode"], INPUT_MODES, where, "reference.input_mode") if "input_mode" in value \
            else None
        comp = nonempty_text(value["component"], where, "reference.component") if "component" in value else None
        return Reference(model, shape, mode, comp)
    return Reference(_target(value, where, "reference"))


def _check_unit(kind: str, unit: str, has_reference: bool, where: Where) -> None:
    """The unit's first word must suit the kind (it decides the convention: FLOPs or MACs, a ratio)."""
    accepted = KINDS[kind].units
    word = unit_word(unit)
    if accepted is not None and word not in accepted:
        raise where.error("unit", f"{unit!r} is not accepted for kind {kind}; its first word must be one of "
                                  f"{', '.join(accepted)} (values in base units; suffixes k, M, G, Ki, Mi, Gi "
                                  "go on the value)")
    if kind in ("params", "flops") and (word == "ratio") != has_reference:
        raise where.error("unit", "a claim with a reference is a ratio (unit: ratio), and unit ratio needs a "
                                  "reference" + (f"; got unit {unit!r}" if has_reference else ""))


def parse_claim(raw: Any, index: int, path: Path) -> ClaimSpec:
    """One entry of ``claims``, validated (kind, fields, value, unit, tolerance)."""
    where = Where(path, f"claims[{index}]")
    if not isinstance(raw, dict):
        raise where.error("claims", f"entry {index} is {type(raw).__name__}, not a mapping of fields")
    if "id" in raw:
        where.claim = f"claims[{index}] (id {raw['id']!r})"
    for required in _COMMON[:5]:
        if required not in raw:
            raise where.error(required, "missing; every claim needs id, kind, value, unit and tolerance")
    kind = raw["kind"]
    if kind not in KINDS:
        raise where.error("kind", f"{kind!r} is not accepted; accepted kinds: {', '.join(KINDS)}")
    spec = KINDS[kind]
    accepted = _COMMON + (_MEASURED if spec.measured else ()) + spec.fields
    for key in raw:
        if key not in accepted:
            raise where.error(key, f"unknown or not applicable to kind {kind}; fields for {kind}: "
                                   f"{', '.join(accepted)}")
    for required in spec.required:
        if required not in raw:
            raise where.error(required, f"missing; kind {kind} needs {', '.join(spec.required)}")
    out: dict[str, Any] = {"id": nonempty_text(raw["id"], where, "id"), "kind": kind, "unit": nonempty_text(raw["unit"], where, "unit"),
                           "tolerance": raw["tolerance"]}
    for name in ("section", "statement", "conditions"):
        if name in raw:
            out[name] = nonempty_text(raw[name], where, name)
    if "model" in raw:
        out["model"] = _target(raw["model"], where, "model")
    if "input" in raw:
        out["input"] = parse_shape(raw["input"], where, "input")
    if "input_mode" in raw:
        out["input_mode"] = choice(raw["input_mode"], INPUT_MODES, where, "input_mode")
    if "component" in raw:
        out["component"] = nonempty_text(raw["component"], where, "component")
    if "reference" in raw:
        out["reference"] = _reference(raw["reference"], where)
    if "batch" in raw:
        out["batch"] = positive_int(raw["batch"], where, "batch")
    for name, choices in (("mode", MODES), ("of", SHARE_OF), ("quantity", tuple(MEMORY_QUANTITIES))):
        if name in raw:
            out[name] = choice(raw[name], choices, where, name)
    for name in ("precision", "optimizer", "card", "compile", "key"):
        if name in raw:
            out[name] = nonempty_text(raw[name], where, name)
    if "layout" in raw:
        layout = nonempty_text(raw["layout"], where, "layout")
        if not set(layout) <= set(LAYOUT_LETTERS) or len(set(layout)) != len(layout):
            raise where.error("layout", f"{layout!r} is not accepted; give letters of {LAYOUT_LETTERS} (each at most "
                                        "once) for a 4-d output, e.g. HWC")
        out["layout"] = layout
    if "file" in raw:
        out["file"] = (path.parent / nonempty_text(raw["file"], where, "file")).resolve()
    if "where" in raw:
        if not isinstance(raw["where"], dict) or not raw["where"]:
            raise where.error("where", f"{raw['where']!r} is not accepted; give a mapping column: value that picks "
                                       "one row")
        out["where"] = tuple(sorted(raw["where"].items()))
    if kind == "share" and out.get("of") == "time" and "precision" not in out:
        raise where.error("precision", "missing; a time share is read from GPU results of one precision "
                                       "(e.g. fp16-amp)")
    if kind == "latency_ratio" and "precision" not in out:
        raise where.error("precision", "missing; GPU latency results are per precision (e.g. fp32, fp16-amp)")
    if kind == "memory" and out["quantity"] != "params" and "precision" not in out:
        out["precision"] = "fp32"
    if kind != "shape" and "layout" in out:
        raise where.error("layout", "applies to kind shape only")
    _check_unit(kind, out["unit"], "reference" in out, where)
    out["value"], out["rule"] = rule_of(kind, raw["value"], raw["tolerance"], where)
    if kind == "shape" and not isinstance(out["value"], tuple):
        raise where.error("value", f"{raw['value']!r} is not accepted for a shape; give a list, e.g. [135, 240, 256]")
    if kind in ("share", "max_batch", "memory") and isinstance(out["value"], tuple) and isinstance(out["rule"], Exact):
        raise where.error("value", f"{raw['value']!r} is a list; kind {kind} claims one number")
    return ClaimSpec(**out)


def _groups(raw: Any, where: Where) -> dict[str, tuple[str, ...]]:
    if raw is None:
        return {}
    if not isinstance(raw, dict) or not all(isinstance(v, list) and v and all(isinstance(m, str) for m in v)
                                            for v in raw.values()):
        raise where.error("groups", f"{raw!r} is not accepted; give name: [component or module path, ...]")
    return {str(k): tuple(v) for k, v in raw.items()}


def _readings(raw: Any, where: Where) -> tuple[Reading, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not raw:
        raise where.error("readings", f"{raw!r} is not accepted; give a list of {{name, target, overrides}}")
    out = []
    for i, item in enumerate(raw):
        name = f"readings[{i}]"
        if not isinstance(item, dict) or "name" not in item:
            raise where.error(name, f"{item!r} is not accepted; each reading needs a name (and a target and/or "
                                    "overrides)")
        only(item, ("name", "target", "overrides"), where, name)
        target = _target(item["target"], where, f"{name}.target").target if "target" in item else None
        out.append(Reading(nonempty_text(item["name"], where, f"{name}.name"), target,
                           overrides_of(item.get("overrides"), where, f"{name}.overrides")))
    names = [r.name for r in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise where.error("readings", f"reading names must be unique; repeated: {', '.join(sorted(dup))}")
    return tuple(out)


def parse_claims(doc: Any, path: Path) -> ClaimsFile:
    """A loaded YAML document -> :class:`ClaimsFile` (every field checked)."""
    where = Where(path)
    if not isinstance(doc, dict):
        raise HsgprofError(f"{path}: the file is {type(doc).__name__ if doc is not None else 'empty'}, not a mapping "
                           "with model and claims")
    only(doc, TOP_FIELDS, where, "")
    if doc.get("schema", SCHEMA) != SCHEMA:
        raise where.error("schema", f"{doc['schema']!r} is not accepted; this hsgprof reads {SCHEMA}")
    if "model" not in doc:
        raise where.error("model", "missing; give a preset (e.g. hsgdet-l) or package.module:factory")
    if not isinstance(doc.get("claims"), list) or not doc["claims"]:
        raise where.error("claims", "missing or empty; give a list of claims")
    groups = _groups(doc.get("groups"), where)
    readings = _readings(doc.get("readings"), where)
    primary = doc.get("primary_reading", readings[0].name if readings else "")
    if readings and primary not in [r.name for r in readings]:
        raise where.error("primary_reading", f"{primary!r} is not a reading; readings: "
                                             f"{', '.join(r.name for r in readings)}")
    if not readings and "primary_reading" in doc:
        raise where.error("primary_reading", "given without readings")
    claims = tuple(parse_claim(raw, i, path) for i, raw in enumerate(doc["claims"]))
    ids = [c.id for c in claims]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise where.error("claims", f"claim ids must be unique; repeated: {', '.join(dup)}")
    return ClaimsFile(path, _target(doc["model"], where, "model"), claims,
                      title=nonempty_text(doc["title"], where, "title") if "title" in doc else "",
                      document=nonempty_text(doc["document"], where, "document") if "document" in doc else "",
                      input=parse_shape(doc["input"], where, "input") if "input" in doc else None,
                      input_mode=choice(doc.get("input_mode", "native"), INPUT_MODES, where, "input_mode"),
                      groups=groups, readings=readings, primary_reading=primary)


def load_claims(path: str | Path) -> ClaimsFile:
    """Read and validate a claims file (YAML, ``yaml.safe_load``); one-line errors for every problem."""
    import yaml

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise HsgprofError(f"claims file {str(path)!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise HsgprofError(f"claims file {str(path)!r} cannot be read: {exc}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise HsgprofError(f"{path}: not valid YAML: {problem}{at}") from None
    return parse_claims(doc, path)
