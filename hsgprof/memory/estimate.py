"""Device-agnostic memory estimate of one inference or training step, on fake tensors.

The model is built inside a ``FakeTensorMode`` on the device being predicted ("cuda" or "cpu"):
tensors have shapes, dtypes and a device but no data, so nothing is computed and no GPU is
needed. One step runs under a :class:`~hsgprof.memory.tracker.StepTracer`:

- static: parameters, buffers, optimizer state (initialised by one untraced step, as after
  warm-up), the input batch (and, for fp16 AMP, the gradient scaler's scale);
- forward: the network (under CUDA autocast for the AMP precisions: PyTorch's own autocast
  kernels run on fake CUDA tensors), then the loss (real stand-in values where the loss needs
  them, :mod:`hsgprof.memory.materialize`);
- backward: the autograd graph walked in the engine's order (:mod:`hsgprof.memory.backward`);
- optimizer: gradient unscaling (AMP) and the optimizer step (``foreach`` kernels on CUDA, as
  PyTorch picks by default there; per-parameter loops on CPU);
- end: gradients set to None, outputs dropped.

For "cuda", scaled-dot-product attention is routed to the kernel PyTorch picks on an sm80+ GPU
(flash attention for fp16/bf16, memory-efficient attention for fp32); the trace is replayed
through the caching-allocator model (:mod:`hsgprof.memory.allocator`) for the figures
``torch.cuda.max_memory_allocated`` / ``max_memory_reserved`` report for a step after warm-up.
"""

from __future__ import annotations

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Iterator

import pandas as pd
import torch
import torch.nn.functional as F
from torch._subclasses.fake_tensor import FakeTensorMode

from hsgprof.errors import HsgprofError
from hsgprof.memory.allocator import Replay, replay
from hsgprof.memory.backward import run_backward
from hsgprof.memory.materialize import materialized_loss
from hsgprof.memory.steps import (check_mode, check_optimizer, get_precision, make_optimizer,
                                  step_functions)
from hsgprof.memory.tracker import LOSS, OTHER, StepTracer, storage_key
from hsgprof.targets import load_target

DEVICES = ("cuda", "cpu")
PHASES = ("forward", "backward", "optimizer")
GRAD_SCALE = 65536.0            # torch.amp.GradScaler's initial scale (a value only; memory is 1 float)


@dataclass
class MemoryEstimate:
    """One step's predicted memory (bytes). See docs/memory.md for what each number means."""

    target: str
    input_shape: tuple[int, int, int, int]
    mode: str
    optimizer: str | None
    precision: str
    device: str
    params_bytes: int
    buffers_bytes: int
    grads_bytes: int
    optimizer_bytes: int
    input_bytes: int
    saved_bytes: int
    saved_weight_casts_bytes: int
    activation_peak_bytes: int
    peak_bytes: int
    peak_allocated_bytes: int
    peak_reserved_bytes: int | None
    static_bytes: int
    per_component: pd.DataFrame
    per_phase: pd.DataFrame
    elapsed_s: float
    static_events: list[tuple] = field(repr=False, default_factory=list)
    step_events: list[tuple] = field(repr=False, default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def activations_bytes(self) -> int:
        """Training: activations saved for backward (weight copies apart).

        Inference: peak live bytes above the static ones.
        """
        return self.saved_bytes if self.mode == "train" else self.activation_peak_bytes

    def replay(self, limit_bytes: int | None = None, iterations: int = 2) -> Replay:
        """Replay the step through the caching-allocator model (optionally under a memory limit)."""
        return replay(self.static_events, self.step_events, iterations, limit_bytes)

    def summary(self) -> dict[str, Any]:
        """The headline numbers (bytes) and the per-component rows, JSON-ready."""
        return {
            "target": self.target, "input": "x".join(map(str, self.input_shape)), "batch": self.input_shape[0],
            "mode": self.mode, "optimizer": self.optimizer, "precision": self.precision,
            "device": self.device, "params_bytes": self.params_bytes, "buffers_bytes": self.buffers_bytes,
            "grads_bytes": self.grads_bytes, "optimizer_bytes": self.optimizer_bytes,
            "input_bytes": self.input_bytes, "saved_bytes": self.saved_bytes,
            "saved_weight_casts_bytes": self.saved_weight_casts_bytes,
            "activation_peak_bytes": self.activation_peak_bytes, "activations_bytes": self.activations_bytes,
            "peak_bytes": self.peak_allocated_bytes, "peak_tensor_bytes": self.peak_bytes,
            "peak_reserved_bytes": self.peak_reserved_bytes, "static_bytes": self.static_bytes,
            "estimator_seconds": round(self.elapsed_s, 3),
            "per_phase": self.per_phase.to_dict(orient="records"),
            "per_component": self.per_component.to_dict(orient="records"),
            "notes": list(self.notes),
        }


@contextmanager
def cuda_attention_kernels() -> Iterator[None]:
    """Route scaled-dot-product attention on (fake) CUDA tensors to the fused kernels.

    On a GPU, ``F.scaled_dot_product_attention`` picks flash attention (fp16/bf16, head dim a
    multiple of 8 up to 256) or memory-efficient attention (fp32); without a GPU the fake
    tensors would take the math path, which saves the full attention matrix. Restored on exit.
    """
    orig = F.scaled_dot_product_attention

    def sdpa(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False):
        if (attn_mask is not None or enable_gqa or query.dim() != 4 or query.device.type != "cuda"
                or key.shape[-2] != value.shape[-2]):
            return orig(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p, is_causal=is_causal,
                        scale=scale, enable_gqa=enable_gqa)
        dt = torch.get_autocast_dtype("cuda") if torch.is_autocast_enabled("cuda") else query.dtype
        q, k, v = (t if t.dtype == dt else t.to(dt) for t in (query, key, value))
        head_dim = q.shape[-1]
        if dt in (torch.float16, torch.bfloat16) and head_dim % 8 == 0 and head_dim <= 256:
            return torch.ops.aten._scaled_dot_product_flash_attention(
                q, k, v, dropout_p, is_causal, False, scale=scale)[0]
        need_lse = torch.is_grad_enabled() and any(t.requires_grad for t in (q, k, v))
        return torch.ops.aten._scaled_dot_product_efficient_attention(
            q, k, v, None, need_lse, dropout_p, is_causal, scale=scale)[0]

    F.scaled_dot_product_attention = sdpa
    try:
        yield
    finally:
        F.scaled_dot_product_attention = orig


@contextmanager
def _autocast(device: str, dtype: torch.dtype | None) -> Iterator[None]:
    """Autocast on fake tensors: CUDA's autocast kernels, enabled without the availability check."""
    if dtype is None:
        yield
        return
    if device == "cpu":
        with torch.autocast("cpu", dtype=dtype):
            yield
        return
    prev_enabled, prev_dtype = torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda")
    torch.set_autocast_enabled("cuda", True)
    torch.set_autocast_dtype("cuda", dtype)
    torch.autocast_increment_nesting()
    try:
        yield
    finally:
        if torch.autocast_decrement_nesting() == 0:
            torch.clear_autocast_cache()
        torch.set_autocast_enabled("cuda", prev_enabled)
        torch.set_autocast_dtype("cuda", prev_dtype)


def _convert_dtype(model: torch.nn.Module, dtype: torch.dtype) -> None:
    """Cast floating parameters and buffers in place (``Module.to`` cannot swap fake tensors)."""
    for mod in model.modules():
        for name, p in list(mod._parameters.items()):
            if p is not None and p.is_floating_point() and p.dtype != dtype:
                mod._parameters[name] = torch.nn.Parameter(p.detach().to(dtype), requires_grad=p.requires_grad)
        for name, b in list(mod._buffers.items()):
            if b is not None and b.is_floating_point() and b.dtype != dtype:
                mod._buffers[name] = b.to(dtype)


def _refake(model: torch.nn.Module, device: str, fake_mode: FakeTensorMode) -> None:
    """Replace a meta-built model's parameters and buffers by fake tensors on ``device``."""
    done: dict[int, torch.Tensor] = {}
    with fake_mode:
        for mod in model.modules():
            for name, p in list(mod._parameters.items()):
                if p is not None:
                    if id(p) not in done:
                        done[id(p)] = torch.nn.Parameter(
                            torch.empty_strided(tuple(p.shape), p.stride(), dtype=p.dtype, device=device),
                            requires_grad=p.requires_grad)
                    mod._parameters[name] = done[id(p)]
            for name, b in list(mod._buffers.items()):
                if b is not None:
                    if id(b) not in done:
                        done[id(b)] = torch.empty_strided(tuple(b.shape), b.stride(), dtype=b.dtype, device=device)
                    mod._buffers[name] = done[id(b)]


def build_fake_target(target: str, device: str, fake_mode: FakeTensorMode, **overrides: Any) -> Any:
    """The target built with fake tensors on ``device``.

    Built inside the fake mode when its initialisation allows; a model whose initialisation
    reads values (``.item()``, e.g. torchvision's ViT) is built on the meta device and its
    parameters and buffers are then replaced by fake ones.
    """
    try:
        with fake_mode:
            return load_target(target, device=device, **overrides)
    except HsgprofError as exc:
        if "DataDependent" not in str(exc) and "_local_scalar_dense" not in str(exc):
            raise
    tg = load_target(target, device="meta", **overrides)
    _refake(tg.model, device, fake_mode)
    return tg


def _nbytes(t: torch.Tensor) -> int:
    return t.untyped_storage().nbytes()


def validate_request(input_shape: Any, mode: str, optimizer: str | None, precision: str,
                     device: str) -> tuple[int, int, int, int]:
    """Check the arguments of a step request; bad values raise :class:`HsgprofError`."""
    check_mode(mode)
    get_precision(precision)
    if mode == "train":
        check_optimizer(optimizer or "")
    if device not in DEVICES:
        raise HsgprofError(f"unknown device {device!r} for the estimate; accepted: {', '.join(DEVICES)}")
    try:
        shape = tuple(int(d) for d in input_shape)
    except (TypeError, ValueError):
        raise HsgprofError(f"input shape {input_shape!r} is not a tuple of integers") from None
    if len(shape) != 4:
        raise HsgprofError(f"input shape {shape} is not accepted; give (B, C, H, W)")
    if shape[0] <= 0:
        raise HsgprofError(f"batch {shape[0]} is not accepted; the batch must be >= 1")
    if any(d <= 0 for d in shape[1:]):
        raise HsgprofError(f"input shape {shape} is not accepted; every dimension must be >= 1")
    return shape  # type: ignore[return-value]


def estimate_memory(target: str, input_shape: tuple[int, int, int, int], mode: str = "inference",
                    optimizer: str | None = "adamw", precision: str = "fp32", device: str = "cuda",
                    seed: int = 0, engine_backward: bool = False, **overrides: Any) -> MemoryEstimate:
    """Predict one step's memory for ``target`` (preset or ``module:factory``) without a GPU.

    ``device="cuda"`` predicts a CUDA step (allocator rounding and caching, CUDA autocast and
    attention kernels); ``device="cpu"`` predicts the tensor bytes of a CPU step (what the CPU
    validation compares with the tensors a real CPU run saves). ``engine_backward`` (CPU only)
    runs backward with PyTorch's engine instead of the Python walk, to check one against the other.
    """
    shape = validate_request(input_shape, mode, optimizer, precision, device)
    if engine_backward and device != "cpu":
        raise HsgprofError("engine_backward needs device='cpu' (the engine needs a real CUDA context)")
    prec = get_precision(precision)
    train = mode == "train"
    t0 = time.perf_counter()
    fake_mode = FakeTensorMode(allow_non_fake_inputs=True)
    tg = build_fake_target(target, device, fake_mode, **overrides)
    model = tg.model
    steps = step_functions(tg)
    in_dtype = prec.param_dtype
    steps.check_input(model, shape, in_dtype)
    model.train(train)
    if prec.param_dtype != torch.float32:
        with fake_mode:
            _convert_dtype(model, prec.param_dtype)
    cmap = tg.components.present(model) if tg.components is not None else None
    tracer = StepTracer(device, model, cmap.component_of if cmap is not None else None)
    params = [p for p in model.parameters()]
    notes: list[str] = []
    sdpa = cuda_attention_kernels() if device == "cuda" else nullcontext()
    opt = None
    try:
        with fake_mode, sdpa, tracer:
            # ---- static: parameters, buffers, optimizer state, input
            for p in params:
                tracer.track(p, "param")
                tracer.saved_excluded.add(storage_key(p))
            for b in model.buffers():
                tracer.track(b, "buffer")
                tracer.saved_excluded.add(storage_key(b))
            trainable = [p for p in params if p.requires_grad]
            if train:
                opt = make_optimizer(optimizer, trainable, foreach=(device == "cuda"))
                with tracer.paused():
                    for p in trainable:
                        p.grad = torch.zeros_like(p)
                    opt.step()
                    opt.zero_grad(set_to_none=True)
                for state in opt.state.values():
                    for v in state.values():
                        if isinstance(v, torch.Tensor):
                            tracer.track(v, "optimizer")
            x = torch.empty(shape, dtype=in_dtype, device=device)
            tracer.recategorize(x, "input")
            scale = (torch.full((), GRAD_SCALE, dtype=torch.float32, device=device)
                     if prec.grad_scaler and train else None)
            static_bytes = tracer.live
            opt_bytes = tracer.category_live["optimizer"]
            # ---- forward (+ loss)
            tracer.set_phase("forward")
            tracer.release_saved = not engine_backward
            try:
                with _autocast(device, prec.autocast_dtype):
                    if not train:
                        with torch.no_grad():
                            out = steps.network(model, x)
                    else:
                        out = steps.network(model, x)
                        if steps.loss_needs_values:
                            loss = materialized_loss(lambda o: steps.loss(model, o, x), out, tracer, seed,
                                                     prec.autocast_dtype)
                        else:
                            with tracer.region("detection.loss"):
                                loss = steps.loss(model, out, x)
            except HsgprofError:
                raise
            except Exception as exc:     # the model refused the input (or cannot run on fake tensors)
                raise HsgprofError(f"{target} could not run a {mode} step on input "
                                   f"{'x'.join(map(str, shape))}: {type(exc).__name__}: "
                                   f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
            saved_bytes = tracer.saved_bytes()
            saved_casts = sum(b for b, _ in tracer.saved_casts.values())
            saved_by_comp = tracer.saved_by_component()
            forward_peak = tracer.phase_peak["forward"]
            grads_bytes = 0
            grads_by_param: dict[int, int] = {}
            if train:
                del out
                if scale is not None:
                    loss = loss * scale
                # ---- backward
                tracer.set_phase("backward")
                if engine_backward:
                    loss.backward()
                else:
                    run_backward(loss, tracer)
                del loss
                for p in trainable:
                    if p.grad is not None and p.grad.device.type == device:
                        tracer.recategorize(p.grad, "grad")
                        grads_by_param[id(p)] = _nbytes(p.grad)
                grads_bytes = sum(grads_by_param.values())
                # ---- optimizer
                tracer.set_phase("optimizer")
                grads = [p.grad for p in trainable if p.grad is not None]
                if scale is not None and grads:
                    torch._foreach_mul_(grads, 1.0 / GRAD_SCALE)      # GradScaler.unscale_ (in place)
                del grads
                opt.step()
                tracer.set_phase("end")
                opt.zero_grad(set_to_none=True)
            else:
                tracer.set_phase("end")
                del out
            peak = tracer.peak
            phase_peak = dict(tracer.phase_peak)
            input_bytes = _nbytes(x)
    finally:
        tracer.close()
    elapsed = time.perf_counter() - t0

    params_bytes = sum(_nbytes(p) for p in params if p.device.type == device)
    buffers_bytes = sum(_nbytes(b) for b in model.buffers() if b.device.type == device)
    state_by_param = {}
    if opt is not None:
        for p, state in opt.state.items():
            state_by_param[id(p)] = sum(_nbytes(v) for v in state.values()
                                        if isinstance(v, torch.Tensor) and v.device.type == device)
    per_component = _per_component(model, cmap, tracer, saved_by_comp, grads_by_param, state_by_param)
    if device == "cuda":
        rep = replay(tracer.static_events, tracer.step_events)
        peak_alloc, peak_res = rep.peak_allocated, rep.peak_reserved
    else:
        rep, peak_alloc, peak_res = None, peak, None
    phases = []
    for ph in (PHASES if train else ("forward",)):
        row = {"phase": ph, "peak_tensor_bytes": phase_peak.get(ph, 0)}
        if rep is not None and ph in rep.phases:
            st = rep.phases[ph]
            row.update(peak_allocated_bytes=st.peak_allocated, peak_reserved_bytes=st.peak_reserved,
                       end_allocated_bytes=st.end_allocated)
        else:
            row.update(peak_allocated_bytes=phase_peak.get(ph, 0), peak_reserved_bytes=None,
                       end_allocated_bytes=None)
        phases.append(row)
    if steps.loss_needs_values and train:
        notes.append("loss evaluated on random stand-ins for the network outputs (data-dependent branches "
                     "follow those values)")
    if device == "cuda":
        notes.append("kernel workspaces (cuDNN, cuBLAS) are not in the trace")
    return MemoryEstimate(
        target=target, input_shape=shape, mode=mode, optimizer=optimizer if train else None,
        precision=precision, device=device, params_bytes=params_bytes, buffers_bytes=buffers_bytes,
        grads_bytes=grads_bytes, optimizer_bytes=opt_bytes, input_bytes=input_bytes,
        saved_bytes=saved_bytes, saved_weight_casts_bytes=saved_casts,
        activation_peak_bytes=max(forward_peak - static_bytes, 0),
        peak_bytes=peak, peak_allocated_bytes=peak_alloc, peak_reserved_bytes=peak_res,
        static_bytes=static_bytes, per_component=per_component, per_phase=pd.DataFrame(phases),
        elapsed_s=elapsed, static_events=tracer.static_events, step_events=tracer.step_events, notes=notes)


def _per_component(model: torch.nn.Module, cmap: Any, tracer: StepTracer, saved: dict[str, int],
                   grads: dict[int, int], states: dict[int, int]) -> pd.DataFrame:
    """One row per component: parameters, gradients, optimizer state, saved activations (bytes)."""
    names = [c.name for c in cmap.components] if cmap is not None else []
    rows = {n: {"component": n, "params_bytes": 0, "grads_bytes": 0, "optimizer_bytes": 0,
                "saved_bytes": 0, "forward_alloc_bytes": 0, "forward_peak_live_bytes": 0}
            for n in names + [LOSS, OTHER]}
    seen: set[int] = set()
    for pname, p in model.named_parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        path = pname.rsplit(".", 1)[0] if "." in pname else ""
        comp = (cmap.component_of(path) if cmap is not None else None) or OTHER
        r = rows[comp]
        r["params_bytes"] += _nbytes(p) if p.device.type == tracer.device_type else 0
        r["grads_bytes"] += grads.get(id(p), 0)
        r["optimizer_bytes"] += states.get(id(p), 0)
    for comp, b in saved.items():
        rows.setdefault(comp, {"component": comp, "params_bytes": 0, "grads_bytes": 0, "optimizer_bytes": 0,
                               "saved_bytes": 0, "forward_alloc_bytes": 0, "forward_peak_live_bytes": 0})
        rows[comp]["saved_bytes"] += b
    for comp, b in tracer.component_alloc.items():
        if comp in rows:
            rows[comp]["forward_alloc_bytes"] = b
            rows[comp]["forward_peak_live_bytes"] = tracer.component_peak.get(comp, 0)
    df = pd.DataFrame(list(rows.values()))
    keep = df[[c for c in df.columns if c.endswith("bytes")]].sum(axis=1) > 0
    return df[keep | df.component.isin(names)].reset_index(drop=True)
