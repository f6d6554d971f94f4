"""One probe per claim kind: what a claim of that kind measures, via the shared :class:`Measurer`.

Each probe has ``check(claim)`` (run while planning, before anything is measured: names, files,
keys) and ``measure(job, measurer) -> Measured``. Values are in base units: parameters, FLOPs
(2 × MACs, the referee's GEMM count) or MACs as the claim's unit says, bytes, fractions, ratios.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from hsgprof.errors import HsgprofError

from .measurer import Key, Measurer, shape_text
from .rules import Measured

if TYPE_CHECKING:  # pragma: no cover
    from .schema import ClaimSpec
    from .verify import Job

META = "meta device (counted, no compute)"
ESTIMATOR = "estimator (fake tensors, CUDA kernels)"
NO_GPU = "not measured on a GPU"
MiB = 2 ** 20


class Probe:
    def check(self, claim: "ClaimSpec") -> None:
        """Raise :class:`HsgprofError` for what can be known wrong before measuring."""

    def measure(self, job: "Job", m: Measurer) -> Measured:
        raise NotImplementedError


def _mode(claim: "ClaimSpec") -> str:
    return claim.mode or "inference"


def _optimizer(claim: "ClaimSpec") -> str | None:
    return (claim.optimizer or "adamw") if _mode(claim) == "train" else None


def _precision(claim: "ClaimSpec") -> str:
    return claim.precision or "fp32"


def _check_step(claim: "ClaimSpec") -> None:
    from hsgprof.memory.steps import check_optimizer, get_precision

    try:
        get_precision(_precision(claim))
        if _mode(claim) == "train":
            check_optimizer(_optimizer(claim))
    except HsgprofError as exc:
        field = "precision" if "precision" in str(exc) else "optimizer"
        raise HsgprofError(f"field {field!r}: {exc}") from None


def _under(module: str, paths: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in paths)


# ------------------------------------------------------------------------------------- params, FLOPs

def param_total(model, paths: tuple[str, ...]) -> int:
    """Parameters of the modules at ``paths`` (shared tensors once), or of the whole model."""
    from hsgprof.components import param_count

    if not paths:
        return param_count(model)
    seen: dict[int, int] = {}
    for p in paths:
        for t in model.get_submodule(p).parameters():
            seen[id(t)] = t.numel()
    return sum(seen.values())


def flops_of(res, paths: tuple[str, ...], macs: bool = False) -> float:
    """The referee's GEMM FLOPs (or MACs) of the modules at ``paths``, or of the whole count."""
    frame = res.referee.frame
    if paths:
        frame = frame[frame.module.map(lambda mod: _under(mod, paths))]
    return float(frame.macs.sum() if macs else frame.flops.sum())


def _what(job: "Job") -> str:
    return job.component or "whole model"


class Params(Probe):
    def measure(self, job: "Job", m: Measurer) -> Measured:
        value = param_total(m.target(job.key).model, job.paths)
        source = f"this run: {job.key.label()} built on the meta device"
        if job.reference is None:
            return Measured(value, source, device=META, note=f"{_what(job)} of {job.key.label()}")
        rkey, _, rpaths = job.reference
        ref = param_total(m.target(rkey).model, rpaths)
        return Measured(value / ref, source, device=META,
                        note=f"{job.key.target} {value:,} / {rkey.target} {ref:,} parameters")


class Flops(Probe):
    def measure(self, job: "Job", m: Measurer) -> Measured:
        macs = job.claim.unit_word == "MACs"
        res = m.count(job.key, job.shape)
        value = flops_of(res, job.paths, macs)
        source = f"this run: referee count of {job.key.label()} at {shape_text(job.shape)}"
        unit = "MACs" if macs else "FLOPs"
        if job.reference is None:
            return Measured(value, source, device=META,
                            note=f"{_what(job)}, {job.key.input_mode} mode, input {shape_text(job.shape)}; {unit}")
        rkey, rshape, rpaths = job.reference
        ref = flops_of(m.count(rkey, rshape), rpaths, macs)
        return Measured(value / ref, source, device=META,
                        note=f"{job.key.target} at {shape_text(job.shape)}: {value / 1e9:.4g}G / {rkey.target} at "
                             f"{shape_text(rshape)}: {ref / 1e9:.4g}G {unit}")


# ------------------------------------------------------------------------------------- GPU rows

def _plain(key: Key) -> bool:
    """GPU results are keyed by target name: they describe a target only as built without overrides."""
    return not key.overrides and key.input_mode == "native"


def _compile_ok(row: dict[str, Any], wanted: str) -> bool:
    got = row.get("compile")
    return got in (None, "eager", "none") if wanted == "eager" else got == wanted


def _hw(text: Any) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in str(text).split("x"))[-2:]
    except ValueError:
        return ()


def latency_rows(job: "Job", m: Measurer, target: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """GPU latency rows of ``target`` at the claim's input, batch, precision and compile mode."""
    rows, doc = m.gpu_rows("latency-cuda")
    c = job.claim
    batch = c.batch or 1
    hits = [r for r in rows if r.get("target") == target and r.get("batch") == batch
            and r.get("precision") == c.precision and _compile_ok(r, c.compile)
            and _hw(r.get("input")) == tuple(job.shape[-2:])]
    return hits, doc


def _row(rows: list[dict[str, Any]], **match: Any) -> dict[str, Any] | None:
    return next((r for r in rows if all(r.get(k) == v for k, v in match.items())), None)


def _gpu_device(doc: dict[str, Any]) -> str:
    dev = doc["provenance"]["device"]
    return dev.get("gpu") or f"CPU ({dev.get('cpu', '?')})"


def _why_no_gpu(job: "Job", m: Measurer) -> str:
    if not m.gpu.gpu_folders:
        return "no GPU measurement folder was found"
    if not _plain(job.key):
        return f"GPU results describe targets as built without overrides, not {job.key.label()}"
    return f"the GPU results hold no matching row for {job.key.target}"


class Share(Probe):
    def check(self, claim: "ClaimSpec") -> None:
        if claim.of == "time":
            _check_step(claim)

    def measure(self, job: "Job", m: Measurer) -> Measured:
        res = m.count(job.key, job.shape)
        flops = flops_of(res, job.paths) / res.flops if res.flops else float("nan")
        names = ", ".join(job.members or job.paths)
        note = f"GEMM FLOPs of {names}; input {shape_text(job.shape)}"
        source = f"this run: referee count of {job.key.label()} at {shape_text(job.shape)}"
        if job.claim.of == "flops":
            return Measured(flops, source, device=META, note=note)
        rows, doc = latency_rows(job, m, job.key.target) if _plain(job.key) else ([], None)
        row = _row(rows, component=job.component)
        parts = [_row(rows, component=name, kind="component") for name in job.members]
        if row is not None and row.get("time_share") is not None:
            share = row["time_share"]
        elif parts and all(p is not None and p.get("time_share") is not None for p in parts):
            share = sum(p["time_share"] for p in parts)
        else:
            return Measured(flops, source, estimate=True, unjudged=NO_GPU, device=META,
                            note=f"FLOP share ({note}); time shares differ from FLOP shares; {_why_no_gpu(job, m)}")
        return Measured(share, m.gpu_source(doc), device=_gpu_device(doc),
                        note=f"batch {job.claim.batch or 1}, {job.claim.precision}, {job.claim.compile}; its FLOP "
                             f"share is {flops:.2%}")


class LatencyRatio(Probe):
    def check(self, claim: "ClaimSpec") -> None:
        _check_step(claim)
        if claim.reference.model.overrides or claim.reference.input or claim.reference.component:
            raise HsgprofError("field 'reference': a latency ratio's reference is a target name (GPU results are "
                               "per target, at the claim's input)")

    def measure(self, job: "Job", m: Measurer) -> Measured:
        ref = job.claim.reference.model.target
        rows, doc = latency_rows(job, m, job.key.target) if _plain(job.key) else ([], None)
        ratio = _row(rows, component=f"ratio to {ref}")
        c = job.claim
        where = f"batch {c.batch or 1}, {c.precision}, {c.compile}, input {shape_text(job.shape)}"
        if ratio is not None and ratio.get("ratio_median_of_rounds") is not None:
            return Measured(ratio["ratio_median_of_rounds"], m.gpu_source(doc),
                            ci=(ratio["ratio_q1"], ratio["ratio_q3"]), device=_gpu_device(doc),
                            note=f"{where}, median of per-round ratios (IQR as interval)")
        own = _row(rows, kind="end_to_end")
        other = _row(latency_rows(job, m, ref)[0], kind="end_to_end")
        if own is not None and other is not None:
            return Measured(own["median_ms"] / other["median_ms"], m.gpu_source(doc), device=_gpu_device(doc),
                            note=f"{where}, ratio of the two medians ({own['median_ms']:.3g} / "
                                 f"{other['median_ms']:.3g} ms)")
        res = m.count(job.key, job.shape)
        rres = m.count(Key(ref, (), job.key.input_mode), job.shape)
        return Measured(res.flops / rres.flops, f"this run: referee counts at {shape_text(job.shape)}", estimate=True,
                        unjudged=NO_GPU, device=META,
                        note=f"FLOP ratio {job.key.target} / {ref} at {shape_text(job.shape)} "
                             f"({res.flops / 1e9:.4g}G / {rres.flops / 1e9:.4g}G FLOPs); FLOPs are not latency; "
                             f"{_why_no_gpu(job, m)}")


# ------------------------------------------------------------------------------------- shapes

class Shape(Probe):
    def measure(self, job: "Job", m: Measurer) -> Measured:
        path = job.paths[0] if job.paths else ""
        if not path:
            raise HsgprofError(f"claim {job.claim.id!r}: a shape claim needs a component (one module)")
        outs = m.output_shapes(job.key, job.shape).get(path, [])
        layout = job.claim.layout
        four = [s for s in outs if len(s) == 4]
        if not outs or (layout and not four):
            raise HsgprofError(f"claim {job.claim.id!r}: module {path} of {job.key.label()} returned no "
                               f"{'4-d ' if layout else ''}tensor at input {shape_text(job.shape)}, so it has no "
                               f"shape to compare" + (f" (it returned shapes {outs})" if outs else ""))
        shape = four[0] if layout else outs[0]
        value = tuple(shape["BCHW".index(ch)] for ch in layout) if layout else tuple(shape)
        return Measured(value, f"this run: {job.key.label()} meta forward at {shape_text(job.shape)}",
                        device="meta device (shapes only)",
                        note=f"{path} output {shape_text(shape)}" + (f" read as {layout}" if layout else ""))


# ------------------------------------------------------------------------------------- memory

ESTIMATE_ATTRS = {"activations": "activations_bytes", "saved": "saved_bytes",
                  "activation_peak": "activation_peak_bytes", "peak_allocated": "peak_allocated_bytes",
                  "peak_reserved": "peak_reserved_bytes"}


def _gpu_memory_check(job: "Job", m: Measurer) -> str:
    rows, _ = m.gpu_rows("memory-cuda")
    c = job.claim
    hits = [r for r in rows if _plain(job.key) and r.get("target") == job.key.target and r.get("mode") == _mode(c)
            and r.get("precision") == _precision(c) and r.get("batch") == job.shape[0]
            and _hw(r.get("input")) == tuple(job.shape[-2:])]
    if not hits:
        return NO_GPU
    r = max(hits, key=lambda r: r["measured_peak_allocated_bytes"])
    return (f"validated on the GPU: predicted peak {r['predicted_peak_allocated_bytes'] / MiB:.0f} MiB vs "
            f"measured {r['measured_peak_allocated_bytes'] / MiB:.0f} MiB allocated")


class Memory(Probe):
    def check(self, claim: "ClaimSpec") -> None:
        _check_step(claim)

    def measure(self, job: "Job", m: Measurer) -> Measured:
        from hsgprof.memory.steps import get_precision

        c = job.claim
        if c.quantity == "params":
            n = param_total(m.target(job.key).model, ())
            size = get_precision(_precision(c)).param_dtype.itemsize
            return Measured(n * size, f"this run: {job.key.label()} built on the meta device", device=META,
                            note=f"{size} bytes × {n:,} parameters ({_precision(c)} weights)")
        est = m.estimate(job.key, job.shape, _mode(c), _precision(c), _optimizer(c))
        value = getattr(est, ESTIMATE_ATTRS[c.quantity])
        return Measured(value, f"this run: memory estimator, {job.key.label()} at {shape_text(job.shape)}",
                        estimate=True, device=ESTIMATOR,
                        note=f"{c.quantity}, {_mode(c)} step, {_precision(c)}, from the estimator "
                             f"({_gpu_memory_check(job, m)})")


class MaxBatch(Probe):
    def check(self, claim: "ClaimSpec") -> None:
        from hsgprof.memory.budget import card

        _check_step(claim)
        try:
            card(claim.card)
        except HsgprofError as exc:
            raise HsgprofError(f"field 'card': {exc}") from None

    def measure(self, job: "Job", m: Measurer) -> Measured:
        c = job.claim
        rows, doc = m.gpu_rows("max-batch-16gb")
        hw = "x".join(map(str, job.shape[-2:]))
        row = next((r for r in rows if _plain(job.key) and r.get("target") == job.key.target
                    and r.get("mode") == _mode(c) and r.get("precision") == _precision(c) and r.get("card") == c.card
                    and r.get("input_hw") == hw and r.get("measured_max_batch") is not None), None)
        if row is not None:
            return Measured(row["measured_max_batch"], m.gpu_source(doc), device=_gpu_device(doc),
                            note=f"{row['card']} emulated ({row['usable_GiB']} GiB usable); estimator predicted "
                                 f"{row['predicted_max_batch']}")
        res, card = m.max_batch(job.key, job.shape, _mode(c), _precision(c), _optimizer(c), c.card)
        capped = "; the search stopped at its cap, the real limit may be higher" if res.capped else ""
        return Measured(res.max_ok, f"this run: estimator max-batch search, {job.key.label()}", estimate=True,
                        device="estimator (not measured on a GPU)",
                        note=f"{card.name}, {card.usable_bytes / 2 ** 30:.3f} GiB usable (context "
                             f"{card.context_bytes // MiB} MiB assumed){capped}")


# ------------------------------------------------------------------------------------- custom

def _load_table(path) -> Any:
    if path.suffix.lower() == ".csv":
        import pandas as pd

        return {"rows": pd.read_csv(path).to_dict(orient="records")}
    return json.loads(path.read_text(encoding="utf-8"))


class Custom(Probe):
    """A value read from a results file (JSON or CSV): a row picked by ``where`` and its column ``key``,
    or without ``where`` a dotted path into the JSON document (``meta.share.native.share``)."""

    def _read(self, claim: "ClaimSpec") -> tuple[Any, dict[str, Any]]:
        try:
            doc = _load_table(claim.file)
        except FileNotFoundError:
            raise HsgprofError(f"field 'file': {str(claim.file)!r} does not exist") from None
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise HsgprofError(f"field 'file': {str(claim.file)!r} is not a readable JSON or CSV file "
                               f"({type(exc).__name__})") from None
        if claim.where:
            rows = doc.get("rows") if isinstance(doc, dict) else doc
            if not isinstance(rows, list):
                raise HsgprofError(f"field 'where': {claim.file.name} has no list of rows to pick from")
            hits = [r for r in rows if isinstance(r, dict) and all(r.get(k) == v for k, v in claim.where)]
            if len(hits) != 1:
                raise HsgprofError(f"field 'where': {dict(claim.where)} picks {len(hits)} rows of "
                                   f"{claim.file.name}; it must pick exactly one")
            if claim.key not in hits[0]:
                raise HsgprofError(f"field 'key': the row has no column {claim.key!r}; columns: "
                                   f"{', '.join(hits[0])}")
            value = hits[0][claim.key]
        else:
            value = doc
            for part in claim.key.split("."):
                if isinstance(value, dict) and part in value:
                    value = value[part]
                elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
                    value = value[int(part)]
                else:
                    raise HsgprofError(f"field 'key': {claim.key!r} is not in {claim.file.name} (no {part!r})")
        if isinstance(value, bool) or not isinstance(value, (int, float, list)):
            raise HsgprofError(f"field 'key': {claim.key!r} in {claim.file.name} is {value!r}, not a number")
        return (tuple(value) if isinstance(value, list) else value), (doc if isinstance(doc, dict) else {})

    def check(self, claim: "ClaimSpec") -> None:
        self._read(claim)

    def measure(self, job: "Job", m: Measurer) -> Measured:
        from hsgprof.report.store import relative

        value, doc = self._read(job.claim)
        dev = (doc.get("provenance") or {}).get("device") or {}
        device = dev.get("gpu") or (f"CPU ({dev['cpu']})" if dev.get("cpu") else "as recorded in the file")
        return Measured(value, relative(job.claim.file), device=device, note=f"read from {job.claim.file.name}")


PROBES: dict[str, Probe] = {"params": Params(), "flops": Flops(), "share": Share(), "shape": Shape(),
                            "memory": Memory(), "max_batch": MaxBatch(), "latency_ratio": LatencyRatio(),
                            "custom": Custom()}
