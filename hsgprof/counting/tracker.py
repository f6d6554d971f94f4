"""Which module is running: a stack of module paths kept by global forward hooks, removed on exit.

Unlike ``torch.utils.module_tracker.ModuleTracker`` this registers no autograd hooks on tensors
(FlopCounterMode's tracker raises under ``torch.no_grad()`` when a module receives a view of a
parameter, which HSG-Det's sparse head does), and its post-hook is ``always_call``, so the stack
unwinds even when a forward raises.
"""

from __future__ import annotations

from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook


class ModuleStack:
    """Context manager: ``current`` is the path of the innermost module whose forward is running."""

    ROOT = ""

    def __init__(self, root: nn.Module) -> None:
        self._names = {id(m): name for name, m in root.named_modules()}
        self._stack: list[str] = [self.ROOT]
        self._handles: list = []

    @property
    def current(self) -> str:
        return self._stack[-1]

    def _pre(self, module: nn.Module, args: tuple) -> None:
        name = self._names.get(id(module))
        if name is None:                      # a module outside the tree (built during forward)
            parent = self._stack[-1]
            name = f"{parent}.<{type(module).__name__}>" if parent else f"<{type(module).__name__}>"
        self._stack.append(name)

    def _post(self, module: nn.Module, args: tuple, output: object) -> None:
        if len(self._stack) > 1:
            self._stack.pop()

    def __enter__(self) -> "ModuleStack":
        self._stack = [self.ROOT]
        self._handles = [register_module_forward_pre_hook(self._pre),
                         register_module_forward_hook(self._post, always_call=True)]
        return self

    def __exit__(self, *exc: object) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self._stack = [self.ROOT]


class CalledModules:
    """Context manager: the set of module ids whose forward ran (a global pre-hook, removed on exit)."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self._handle = None

    def _pre(self, module: nn.Module, args: tuple) -> None:
        self.ids.add(id(module))

    def __enter__(self) -> "CalledModules":
        self._handle = register_module_forward_pre_hook(self._pre)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
