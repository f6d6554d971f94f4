"""Measurements for a claims file, each computed once and shared by every claim that needs it.

A :class:`Measurer` builds targets on the meta device, counts them (the referee, on meta), records
module output shapes (one hooked meta forward), runs the memory estimator and the max-batch
search, and reads committed GPU results. Every computation is cached by what determines it
(target + overrides + input mode, input shape, and the step's mode/precision/optimizer), and
logged in :attr:`Measurer.log` so a caller can show (and a test can check) what was computed.
Nothing is computed until a claim asks for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from hsgprof.errors import HsgprofError

PAD_MULTIPLE = 32


@dataclass(frozen=True)
class Key:
    """What a built model depends on: the target, its config overrides and the input mode."""

    target: str
    overrides: tuple[tuple[str, Any], ...] = ()
    input_mode: str = "native"

    def label(self) -> str:
        over = ", ".join(f"{k}={v}" for k, v in self.overrides)
        return self.target + (f" ({over})" if over else "") + (f", {self.input_mode}" if self.input_mode != "native"
                                                              else "")


def shape_text(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


def is_preset(target: str) -> bool:
    from hsgprof.adapters import hsgdet as hsgdet_adapter

    return target in hsgdet_adapter.presets()


class Measurer:
    """Cached measurements; ``measurements_dir``: committed GPU results (newest folder per device)."""

    def __init__(self, measurements_dir: Path | None = None, progress: Callable[[str], None] | None = None):
        from hsgprof.report.store import ResultsStore

        self.gpu = ResultsStore()
        self.gpu.add_measurements(measurements_dir)      # a corrupt GPU file fails here, before any measuring
        self.log: list[dict[str, Any]] = []
        self._cache: dict[tuple, Any] = {}
        self._estimates: dict[tuple, dict[int, Any]] = {}
        self.progress = progress

    def _logged(self, what: str, key: Key, detail: str, seconds: float) -> None:
        entry = {"measurement": what, "target": key.label(), "detail": detail, "seconds": round(seconds, 2)}
        self.log.append(entry)
        if self.progress is not None and what != "build":        # builds happen while planning: no noise
            self.progress(f"{what}: {entry['target']}, {detail} ({entry['seconds']:.1f} s)")

    # ------------------------------------------------------------------ cache
    def _cached(self, what: str, key: Key, detail: str, args: tuple, make: Callable[[], Any]) -> Any:
        cache_key = (what, key, *args)
        if cache_key not in self._cache:
            t0 = time.perf_counter()
            self._cache[cache_key] = make()
            self._logged(what, key, detail, time.perf_counter() - t0)
        return self._cache[cache_key]

    def _build_overrides(self, key: Key) -> dict[str, Any]:
        over = dict(key.overrides)
        return {"input_mode": key.input_mode, **over} if is_preset(key.target) else over

    def fed_shape(self, key: Key, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The input a model is fed: HSG-Det pads inside the model; any other model is fed the padded size."""
        if key.input_mode != "padded" or is_preset(key.target):
            return shape
        b, c, h, w = shape
        return b, c, -(-h // PAD_MULTIPLE) * PAD_MULTIPLE, -(-w // PAD_MULTIPLE) * PAD_MULTIPLE

    # ------------------------------------------------------------------ models and counts
    def target(self, key: Key):
        """The target built on the meta device (no memory allocated)."""
        from hsgprof.targets import load_target

        if not is_preset(key.target) and key.overrides:
            raise HsgprofError(f"config overrides {dict(key.overrides)} apply to HSG-Det presets only, not "
                               f"{key.target!r}")
        return self._cached("build", key, "meta device", (),
                            lambda: _eval(load_target(key.target, device="meta", **self._build_overrides(key))))

    def count(self, key: Key, shape: tuple[int, ...]):
        """The referee's count (:func:`hsgprof.counting.count`, meta device) at ``shape``."""
        from hsgprof.counting import count

        return self._cached("count", key, f"referee at {shape_text(shape)}", (shape,),
                            lambda: count(key.target, shape, key.input_mode, "analytic", **dict(key.overrides)))

    def output_shapes(self, key: Key, shape: tuple[int, ...]) -> dict[str, list[tuple[int, ...]]]:
        """Output shapes of every module in one meta-device forward at ``shape``."""
        import torch

        from hsgprof.shapes import module_output_shapes

        def make() -> dict[str, list[tuple[int, ...]]]:
            tg = self.target(key)
            paths = [name for name, _ in tg.model.named_modules() if name]
            x = torch.empty(self.fed_shape(key, shape), device="meta")
            return module_output_shapes(tg.model, tg.forward, x, paths)

        return self._cached("shapes", key, f"module outputs at {shape_text(shape)}", (shape,), make)

    # ------------------------------------------------------------------ memory
    def estimates(self, key: Key, chw: tuple[int, int, int], mode: str, precision: str,
                  optimizer: str | None) -> dict[int, Any]:
        """The estimator's results by batch for one step kind (shared with the max-batch search)."""
        return self._estimates.setdefault((key, chw, mode, precision, optimizer), {})

    def estimate(self, key: Key, shape: tuple[int, ...], mode: str, precision: str, optimizer: str | None):
        """One step's :class:`~hsgprof.memory.MemoryEstimate`, predicted for a CUDA device."""
        from hsgprof.memory import estimate_memory

        fed = self.fed_shape(key, shape)
        cache = self.estimates(key, tuple(fed[1:]), mode, precision, optimizer)
        if fed[0] not in cache:
            t0 = time.perf_counter()
            cache[fed[0]] = estimate_memory(key.target, fed, mode=mode, optimizer=optimizer, precision=precision,
                                            device="cuda", **self._build_overrides(key))
            self._logged("memory estimate", key, f"{mode} {precision} at {shape_text(fed)}", time.perf_counter() - t0)
        return cache[fed[0]]

    def max_batch(self, key: Key, shape: tuple[int, ...], mode: str, precision: str, optimizer: str | None,
                  card_name: str, cap: int = 64):
        """The estimator's largest batch that fits ``card_name`` (search result), sharing estimates by batch."""
        from hsgprof.memory.budget import card, predict_max_batch

        fed = self.fed_shape(key, shape)
        c = card(card_name)
        cache = self.estimates(key, tuple(fed[1:]), mode, precision, optimizer)

        def make():
            if fed[1] != 3:
                raise HsgprofError(f"the max-batch search feeds 3-channel images; input {shape_text(shape)} has "
                                   f"{fed[1]} channels")
            res, _ = predict_max_batch(key.target, tuple(fed[2:]), mode, precision, c.usable_bytes, optimizer,
                                       cap, cache=cache, **self._build_overrides(key))
            return res, c

        return self._cached("max batch (estimator)", key, f"{mode} {precision} on {card_name} at "
                            f"{shape_text(fed[1:])}", (fed, mode, precision, optimizer, card_name, cap), make)

    # ------------------------------------------------------------------ committed GPU results
    def gpu_rows(self, kind: str) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        """The GPU rows, each target named by the config it was measured on today: a row measured on an
        earlier meaning of a preset (hsgdet-l before issue 15) carries that reading's name (hsgdet-l-v8), so
        it is never attributed to today's hsgdet-l."""
        from hsgprof.claims.readings import measured_label

        doc = self.gpu.gpu.get(kind)
        if not doc:
            return [], None
        return [{**r, "target": measured_label(doc, r["target"])} if "target" in r else r for r in doc["rows"]], doc

    def gpu_source(self, doc: dict[str, Any]) -> str:
        return self.gpu.path_of(doc)


def _eval(target):
    target.model.eval()
    return target
