"""Recording what a step allocates, frees and saves for backward, op by op, without real compute.

:class:`StepTracer` is a ``TorchDispatchMode`` (as ``torch.distributed._tools.mem_tracker.MemTracker``
is): every op's outputs are looked at, each new storage on the modelled device is an
allocation, and a weak reference on the storage turns its death into a free. Python keeps one
storage object per C++ storage alive as long as the storage lives, so frees are seen at the
moment they happen, in the order they happen: the event trace is the allocation order of the
same program on a real device (kernel-internal workspaces excepted).

The tracer also installs saved-tensor hooks (``torch.autograd.graph.saved_tensors_hooks``): a
tensor autograd saves for backward is counted once per storage, attributed to the component
whose module was running, and (for the manual backward in :mod:`hsgprof.memory.backward`) held
in a small box that is emptied once its node has run, which is when autograd releases it.
Module paths come from global forward hooks, removed on exit.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

OTHER = "(other)"
LOSS = "(loss)"
_TO_COPY = torch.ops.aten._to_copy.default


class _Box:
    """A tensor saved for backward, released when its node has run (see :meth:`StepTracer.end_node`).

    ``keep`` holds the fake tensor a real stand-in stands for (see :mod:`hsgprof.memory.materialize`),
    so that output stays alive exactly as long as the loss's graph keeps it.
    """

    __slots__ = ("t", "keep")

    def __init__(self, t: torch.Tensor, keep: Any = None) -> None:
        self.t = t
        self.keep = keep


@dataclass
class _Rec:
    id: int
    nbytes: int
    phase: str
    component: str
    category: str
    ref: Any = None


def storage_key(t: torch.Tensor) -> int:
    """Identity of a tensor's storage (the C++ StorageImpl address, valid while it lives)."""
    return t.untyped_storage()._cdata


class StepTracer(TorchDispatchMode):
    """Allocation/free trace, live-bytes peaks and saved-for-backward bytes of one step.

    ``device_type``: the device whose tensors count ("cuda" or "cpu"; the tensors themselves are
    fake or meta). ``model``: module paths for attribution; ``component_of`` maps a module path
    to a component name (``None``: not in a component).
    """

    def __init__(self, device_type: str, model: nn.Module | None = None,
                 component_of: Callable[[str], str | None] | None = None) -> None:
        super().__init__()
        self.device_type = device_type
        self._names = {id(m): n for n, m in model.named_modules()} if model is not None else {}
        self._component_of = component_of or (lambda path: None)
        self._comp_cache: dict[str, str] = {}
        self.static_events: list[tuple] = []
        self.step_events: list[tuple] = []
        self._records: dict[int, _Rec] = {}
        self._next_id = 0
        self.phase = "static"
        self.live = 0
        self.peak = 0
        self.phase_peak: dict[str, int] = defaultdict(int)
        self.category_live: dict[str, int] = defaultdict(int)
        self._paused = 0
        self.accept_cpu = False          # inside a materialised region: real CPU tensors count
        self.stack: list[str] = []
        self.saved: dict[object, tuple[int, str]] = {}      # storage identity -> (bytes, component)
        self.saved_casts: dict[object, tuple[int, str]] = {}  # saved low-precision copies of weights
        self.saved_excluded: set[int] = set()               # parameter/buffer storage keys
        self.alias: dict[int, tuple[int, int, Any]] = {}   # stand-in key -> (key, bytes, weakref)
        self.release_saved = False       # box saved tensors (manual backward releases them)
        self._unpacked: list[_Box] = []
        self.component_alloc: dict[str, int] = defaultdict(int)
        self.component_peak: dict[str, int] = defaultdict(int)
        self._hooks: list[Any] = []
        self.closed = False

    # ------------------------------------------------------------------ attribution
    def component(self) -> str:
        for path in reversed(self.stack):
            comp = self._comp_cache.get(path)
            if comp is None:
                comp = self._component_of(path) or ""
                if not comp and path.startswith("detection.loss"):
                    comp = LOSS
                self._comp_cache[path] = comp
            if comp:
                return comp
        return OTHER

    def _pre_hook(self, module: nn.Module, args: Any) -> None:
        name = self._names.get(id(module))
        if name is not None:
            self.stack.append(name)

    def _post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        name = self._names.get(id(module))
        if name is not None and self.stack and self.stack[-1] == name:
            self.stack.pop()

    @contextmanager
    def region(self, name: str) -> Iterator[None]:
        """Attribute what runs inside to the pseudo-module path ``name`` (e.g. the loss)."""
        self.stack.append(name)
        try:
            yield
        finally:
            if self.stack and self.stack[-1] == name:
                self.stack.pop()

    # ------------------------------------------------------------------ tracking
    def _counts(self, t: torch.Tensor) -> bool:
        dev = t.device.type
        return dev == self.device_type or (self.accept_cpu and dev == "cpu")

    def _emit(self, ev: tuple) -> None:
        (self.static_events if self.phase == "static" else self.step_events).append(ev)

    def track(self, t: torch.Tensor, category: str = "activation") -> None:
        """Count ``t``'s storage as allocated now (no-op if already tracked or off-device)."""
        if not isinstance(t, torch.Tensor) or not self._counts(t):
            return
        st = t.untyped_storage()
        key = st._cdata
        if key in self._records:
            return
        nbytes = st.nbytes()
        if nbytes <= 0:
            return
        comp = self.component()
        rec = _Rec(self._next_id, nbytes, self.phase, comp, category)
        self._next_id += 1
        rec.ref = weakref.ref(st, lambda _r, key=key, rec=rec: self._on_free(key, rec))
        self._records[key] = rec
        self._emit(("alloc", rec.id, nbytes))
        self.live += nbytes
        self.category_live[category] += nbytes
        if self.live > self.peak:
            self.peak = self.live
        if self.live > self.phase_peak[self.phase]:
            self.phase_peak[self.phase] = self.live
        if self.phase == "forward":
            self.component_alloc[comp] += nbytes
            if self.live > self.component_peak[comp]:
                self.component_peak[comp] = self.live

    def _on_free(self, key: int, rec: _Rec) -> None:
        if self.closed or self._records.get(key) is not rec:
            return
        del self._records[key]
        self._emit(("free", rec.id))
        self.live -= rec.nbytes
        self.category_live[rec.category] -= rec.nbytes

    def adopt(self, old: torch.Tensor, new: torch.Tensor) -> None:
        """``new`` takes over ``old``'s allocation (a stand-in swapped for the tensor it stands for)."""
        if not self._counts(old):
            return
        rec = self._records.pop(storage_key(old), None)
        if rec is None:
            self.track(new, "activation")
            return
        st = new.untyped_storage()
        key = st._cdata
        if key in self._records:          # already counted: drop the duplicate allocation
            self._emit(("free", rec.id))
            self.live -= rec.nbytes
            self.category_live[rec.category] -= rec.nbytes
            return
        rec.ref = weakref.ref(st, lambda _r, key=key, rec=rec: self._on_free(key, rec))
        self._records[key] = rec

    def recategorize(self, t: torch.Tensor, category: str) -> None:
        rec = self._records.get(storage_key(t)) if isinstance(t, torch.Tensor) else None
        if rec is not None and rec.category != category:
            self.category_live[rec.category] -= rec.nbytes
            self.category_live[category] += rec.nbytes
            rec.category = category

    def record_of(self, t: torch.Tensor) -> _Rec | None:
        return self._records.get(storage_key(t))

    def set_phase(self, name: str) -> None:
        self.phase = name
        if name != "static":
            self.step_events.append(("phase", name))
            self.phase_peak[name] = max(self.phase_peak[name], self.live)

    @contextmanager
    def paused(self) -> Iterator[None]:
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not self._paused:
            category = "activation"
            if (func is _TO_COPY and args and isinstance(args[0], torch.Tensor)
                    and args[0].untyped_storage()._cdata in self.saved_excluded):
                category = "param_cast"            # autocast's low-precision copy of a weight
            for t in tree_flatten(out)[0]:
                if isinstance(t, torch.Tensor):
                    self.track(t, category)
        return out

    # ------------------------------------------------------------------ saved tensors
    def _pack(self, t: torch.Tensor) -> Any:
        keep = None
        if self._counts(t):
            st = t.untyped_storage()
            key = st._cdata
            if key in self.alias:
                key, nbytes, ref = self.alias[key]
                keep = ref()
            else:
                nbytes = st.nbytes()
            if key not in self.saved_excluded:
                rec = self._records.get(key)
                ident = ("rec", rec.id) if rec is not None else ("key", key)
                bucket = self.saved_casts if rec is not None and rec.category == "param_cast" else self.saved
                if ident not in bucket:
                    bucket[ident] = (nbytes, self.component())
        if self.release_saved or keep is not None:
            return _Box(t.detach(), keep)    # owned by autograd only: dies with the graph
        return t

    def _unpack(self, packed: Any) -> torch.Tensor:
        if isinstance(packed, _Box):
            if packed.t is None:
                raise RuntimeError("hsgprof: a saved tensor was used after its node released it")
            if self.release_saved:
                self._unpacked.append(packed)
            return packed.t
        return packed

    def begin_node(self) -> None:
        self._unpacked = []

    def end_node(self) -> None:
        """Release the saved tensors the node just used (autograd frees them after the node runs)."""
        for box in self._unpacked:
            box.t = None
            box.keep = None
        self._unpacked = []

    def saved_bytes(self) -> int:
        return sum(b for b, _ in self.saved.values())

    def saved_by_component(self) -> dict[str, int]:
        out: dict[str, int] = defaultdict(int)
        for b, comp in self.saved.values():
            out[comp] += b
        return dict(out)

    # ------------------------------------------------------------------ context
    def __enter__(self) -> "StepTracer":
        from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook

        self._hooks = [register_module_forward_pre_hook(self._pre_hook),
                       register_module_forward_hook(self._post_hook, always_call=True)]
        self._saved_ctx = torch.autograd.graph.saved_tensors_hooks(self._pack, self._unpack)
        self._saved_ctx.__enter__()
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        try:
            super().__exit__(*exc)
        finally:
            self._saved_ctx.__exit__(*exc)
            for h in self._hooks:
                h.remove()
            self._hooks = []

    def close(self) -> None:
        """Stop listening to frees (the step is over; later frees are not part of it)."""
        self.closed = True
