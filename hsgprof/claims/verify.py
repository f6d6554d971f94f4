"""Judge a claims file: measure what its claims need (once each), then apply each claim's declared rule.

>>> from hsgprof.claims.verify import verify
>>> result = verify("examples/claims/resnet50.yaml")
>>> result.verdicts            # one row per claim and reading (DataFrame)

Two phases. Planning builds every model the claims name on the meta device and resolves every
component, so a bad target or component fails before anything is measured. Measuring then asks a
:class:`~hsgprof.claims.measurer.Measurer` for what each claim needs; the measurer computes each
count, shape trace, memory estimate and max-batch search once and shares it. GPU quantities
(latency, time shares, max batch) come from committed GPU results when they exist; otherwise
the claim is "not measured on a GPU", with a CPU-side estimate beside it where one exists.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pandas as pd

from hsgprof.errors import HsgprofError

from .evaluate import verdict_row
from .ledger import as_claim
from .measurer import Key, Measurer, shape_text
from .probes import PROBES
from .schema import ClaimsFile, ClaimSpec, Reading, load_claims

DEFAULT_READING = "as given"


@dataclass(frozen=True)
class Job:
    """One claim under one reading, resolved: the model, its input, the component's module paths."""

    claim: ClaimSpec
    reading: str
    key: Key
    shape: tuple[int, ...]
    component: str = ""                                  # the name as written ("" = the whole model)
    paths: tuple[str, ...] = ()                          # its module paths (empty = the whole model)
    members: tuple[str, ...] = ()                        # named components it stands for (GPU time rows)
    reference: tuple[Key, tuple[int, ...], tuple[str, ...]] | None = None   # key, input, paths


@dataclass
class Verification:
    """The verdicts of a claims file, and what was measured to reach them."""

    claims: ClaimsFile
    verdicts: pd.DataFrame
    measurements: pd.DataFrame = field(default_factory=pd.DataFrame)
    gpu_folders: list[str] = field(default_factory=list)
    gpu_needed: bool = False                             # whether any claim reads GPU results

    @property
    def primary(self) -> pd.DataFrame:
        """The verdict rows under the primary reading (all rows when the file has no readings)."""
        return self.verdicts[self.verdicts["primary"]].reset_index(drop=True)


def _readings(cf: ClaimsFile) -> tuple[Reading, ...]:
    return cf.readings or (Reading(DEFAULT_READING),)


def _key(cf: ClaimsFile, reading: Reading, claim: ClaimSpec) -> Key:
    """The model a claim is judged on: its own ``model``, else the file's model under the reading."""
    mode = claim.input_mode or cf.input_mode
    if claim.model is not None:
        return Key(claim.model.target, claim.model.overrides, mode)
    over = {**cf.model.overrides_dict(), **dict(reading.overrides)}
    return Key(reading.target or cf.model.target, tuple(sorted(over.items())), mode)


def _shape(given: tuple[int, ...] | None, fallback: tuple[int, ...] | None, default: tuple[int, ...],
           batch: int | None) -> tuple[int, ...]:
    shape = tuple(given or fallback or default)
    return (batch, *shape[1:]) if batch is not None else shape


def resolve_component(name: str, target, groups: dict[str, tuple[str, ...]],
                      _seen: tuple[str, ...] = ()) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``name`` -> (module paths, named components): a file group, a target component or group, a module path."""
    model = target.model
    cmap = target.components.present(model) if target.components is not None else None
    names = {c.name: c for c in cmap.components} if cmap is not None else {}
    if name in groups and name not in _seen:
        paths: list[str] = []
        members: list[str] = []
        for member in groups[name]:
            p, m = resolve_component(member, target, groups, (*_seen, name))
            paths += p
            members += m
        return _outermost(paths), tuple(dict.fromkeys(members))
    if name in names:
        return names[name].paths, (name,)
    if cmap is not None and name in cmap.groups:
        comps = [c for c in cmap.components if c.group == name]
        return _outermost([p for c in comps for p in c.paths]), tuple(c.name for c in comps)
    if name in dict(model.named_modules()) and name:
        return (name,), ()
    known = list(names) + list(cmap.groups if cmap is not None else ()) + list(groups)
    children = [n for n, _ in model.named_children()]
    raise HsgprofError(f"component {name!r} is not " + (f"a component or group of {target.name} "
                       f"({', '.join(known)}) nor " if known else "") +
                       f"a module path of {target.name} (top-level modules: {', '.join(children) or 'none'})")


def _outermost(paths: list[str]) -> tuple[str, ...]:
    """Paths with any path inside another dropped (so nothing is counted twice)."""
    uniq = list(dict.fromkeys(paths))
    return tuple(p for p in uniq if not any(q != p and p.startswith(q + ".") for q in uniq))


def plan(cf: ClaimsFile, measurer: Measurer) -> list[Job]:
    """Every (claim, reading) resolved; builds each model once on meta. Raises before any measurement."""
    jobs = []
    for index, claim in enumerate(cf.claims):
        try:
            PROBES[claim.kind].check(claim)
        except HsgprofError as exc:
            raise HsgprofError(f"{cf.path}: claims[{index}] (id {claim.id!r}): {exc}") from None
        for reading in _readings(cf):
            try:
                jobs.append(_job(cf, reading, claim, measurer))
            except HsgprofError as exc:
                under = f", reading {reading.name!r}" if cf.readings else ""
                raise HsgprofError(f"{cf.path}: claims[{index}] (id {claim.id!r}{under}): {exc}") from None
    return jobs


def _job(cf: ClaimsFile, reading: Reading, claim: ClaimSpec, measurer: Measurer) -> Job:
    if claim.kind == "custom":
        return Job(claim, reading.name, Key("(results file)"), ())
    key = _key(cf, reading, claim)
    target = measurer.target(key)
    shape = _shape(claim.input, None if claim.model is not None else cf.input, target.default_input, claim.batch)
    if len(shape) != 4 and claim.kind in ("memory", "max_batch", "shape"):
        raise HsgprofError(f"input {shape_text(shape)} is not accepted for kind {claim.kind}; give BxCxHxW")
    paths: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    if claim.component:
        paths, members = resolve_component(claim.component, target, cf.groups)
        if claim.kind == "shape" and len(paths) != 1:
            raise HsgprofError(f"field 'component': a shape is one module's output; {claim.component!r} spans "
                               f"{len(paths)} modules ({', '.join(paths)})")
    reference = None
    if claim.reference is not None and claim.kind in ("params", "flops"):
        ref = claim.reference
        rkey = Key(ref.model.target, ref.model.overrides, ref.input_mode or key.input_mode)
        rtarget = measurer.target(rkey)
        rshape = _shape(ref.input, shape, rtarget.default_input, None)
        rpaths = resolve_component(ref.component, rtarget, cf.groups)[0] if ref.component else ()
        reference = (rkey, rshape, rpaths)
    return Job(claim, reading.name, key, shape, claim.component or "", paths, members, reference)


def _conditions(job: Job) -> str:
    """A default conditions text: model, input, and the step's settings."""
    c = job.claim
    if c.kind == "custom":
        return f"{c.file.name}: {c.key}" + "".join(f", {k} = {v}" for k, v in c.where)
    parts = [job.key.label(), f"input {shape_text(job.shape)}"]
    parts += [f"{name} {getattr(c, name)}" for name in ("mode", "precision", "optimizer", "card")
              if getattr(c, name)]
    if c.kind in ("latency_ratio", "share") and (c.kind == "latency_ratio" or c.of == "time"):
        parts.append(f"compile {c.compile}")
    if job.reference is not None:
        parts.append(f"vs {job.reference[0].label()} at {shape_text(job.reference[1])}")
    return ", ".join(parts)


def verify(path: str | Path | ClaimsFile, measurements_dir: Path | None = None, measurer: Measurer | None = None,
           progress: Callable[[str], None] | None = None) -> Verification:
    """Load (if a path), plan, measure and judge a claims file; returns the verdicts and the measurement log.

    ``measurements_dir``: committed GPU results (newest folder per device); None reads none.
    ``progress``: called with one line after each measurement.
    """
    cf = path if isinstance(path, ClaimsFile) else load_claims(path)
    gpu_needed = any(needs_gpu(c) for c in cf.claims)
    measurer = measurer or Measurer(measurements_dir if gpu_needed else None, progress)
    jobs = plan(cf, measurer)
    primary = cf.primary_reading or DEFAULT_READING
    rows = []
    for job in jobs:
        measured = PROBES[job.claim.kind].measure(job, measurer)
        claim = as_claim(job.claim)
        if not job.claim.conditions:
            claim = type(claim)(**{**claim.__dict__, "conditions": _conditions(job)})
        row = verdict_row(claim, measured)
        rows.append({"id": row.pop("id"), "reading": job.reading, "primary": job.reading == primary,
                     "kind": job.claim.kind, **row, "claimed_value": _plain_value(job.claim.value),
                     "value": _plain_value(measured.value), "ci": measured.ci})
    folders = [str(f) for f in measurer.gpu.gpu_folders]
    return Verification(cf, pd.DataFrame(rows), pd.DataFrame(measurer.log), folders, gpu_needed)


def needs_gpu(claim: ClaimSpec) -> bool:
    """Whether a claim reads GPU results (latency, time shares, a measured max batch)."""
    return claim.kind in ("latency_ratio", "max_batch") or (claim.kind == "share" and claim.of == "time")


def _plain_value(value: Any) -> Any:
    """A claimed or measured value as JSON will hold it (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value


def readings_matrix(verdicts: pd.DataFrame) -> pd.DataFrame:
    """Claims × readings: the verdict (and measured value) of each claim under each reading."""
    cells = verdicts.assign(cell=lambda d: d["verdict"] + d["measured"].map(lambda m: f" ({m})" if m else ""))
    order = list(dict.fromkeys(verdicts["reading"]))
    table = cells.pivot(index="id", columns="reading", values="cell").reindex(columns=order)
    return table.reindex(list(dict.fromkeys(verdicts["id"]))).reset_index()
