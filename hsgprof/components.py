"""Grouping a model's modules into named components by module path (never by hand-kept layer lists).

A :class:`ComponentMap` names components (each one or more module paths) and groups of
components (e.g. Backbone = Stem + P3 + ...). Any model can get one; HSG-Det's comes from
:mod:`hsgprof.adapters.hsgdet`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
from torch import nn

from hsgprof.errors import HsgprofError


@dataclass(frozen=True)
class Component:
    """A named part of a model: the module paths it owns and the group it belongs to."""

    name: str
    paths: tuple[str, ...]
    group: str = ""


@dataclass(frozen=True)
class ComponentMap:
    """Components of a model, in table order, and the groups that sum them."""

    components: tuple[Component, ...]
    groups: tuple[str, ...] = field(default=())

    @classmethod
    def top_level(cls, model: nn.Module) -> "ComponentMap":
        """A map for a model without an adapter: each top-level child module is a component."""
        return cls(tuple(Component(n, (n,), "") for n, _ in model.named_children()))

    def present(self, model: nn.Module) -> "ComponentMap":
        """Only the components whose every path exists in ``model`` (variants drop some)."""
        names = dict(model.named_modules())
        kept = tuple(c for c in self.components if all(p in names for p in c.paths))
        return ComponentMap(kept, tuple(g for g in self.groups if any(c.group == g for c in kept)))

    def component_of(self, module_path: str) -> str | None:
        """The component owning a module path (a path equal to or below one of its paths)."""
        for c in self.components:
            for p in c.paths:
                if module_path == p or module_path.startswith(p + "."):
                    return c.name
        return None

    def validate(self, model: nn.Module) -> None:
        """Raise unless every path names a module of ``model`` and no two components overlap."""
        names = dict(model.named_modules())
        for c in self.components:
            for p in c.paths:
                if p not in names:
                    raise HsgprofError(f"component {c.name!r} names module {p!r}, which the model lacks")
        owners: dict[str, str] = {}
        for c in self.components:
            for p in c.paths:
                for q, other in owners.items():
                    if p == q or p.startswith(q + ".") or q.startswith(p + "."):
                        raise HsgprofError(f"components {other!r} and {c.name!r} overlap at {p!r}")
                owners[p] = c.name


def components_of(model: nn.Module, cmap: ComponentMap | None) -> ComponentMap:
    """The components every per-component table of ``model`` uses: ``cmap``'s present in the model,
    else one component per top-level child (named by its module path).

    A model without an adapter (e.g. ``torchvision.models:resnet50``) is thus grouped by its
    top-level modules (conv1, bn1, ..., layer1..layer4, fc) by ``count``, ``memory`` and the
    CPU memory truth alike.
    """
    if cmap is not None:
        return cmap.present(model)
    return ComponentMap.top_level(model)


def param_count(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared tensors counted once)."""
    seen, total = set(), 0
    for p in module.parameters():
        if id(p) in seen or (trainable_only and not p.requires_grad):
            continue
        seen.add(id(p))
        total += p.numel()
    return total


def params_by_component(model: nn.Module, cmap: ComponentMap) -> pd.DataFrame:
    """One row per component, then per group, then Total (and the params no component owns)."""
    cmap = cmap.present(model)
    rows = []
    for c in cmap.components:
        n = sum(param_count(model.get_submodule(p)) for p in c.paths)
        rows.append({"component": c.name, "group": c.group, "kind": "component",
                     "modules": ", ".join(c.paths), "params": n})
    for g in cmap.groups:
        n = sum(r["params"] for r in rows if r["group"] == g and r["kind"] == "component")
        rows.append({"component": g, "group": g, "kind": "group", "modules": "", "params": n})
    total = param_count(model)
    owned = sum(r["params"] for r in rows if r["kind"] == "component")
    if total != owned:
        rows.append({"component": "(not in a component)", "group": "", "kind": "component",
                     "modules": "", "params": total - owned})
    rows.append({"component": "Total", "group": "", "kind": "total", "modules": "", "params": total})
    return pd.DataFrame(rows)


def module_tree(model: nn.Module, depth: int = 2) -> pd.DataFrame:
    """Modules down to ``depth`` levels: path, type, depth, params (own subtree)."""
    if depth < 0:
        raise HsgprofError(f"depth={depth} is not accepted; it must be >= 0")
    rows = [{"path": "(model)", "type": type(model).__name__, "depth": 0, "params": param_count(model)}]
    for path, mod in model.named_modules():
        if not path:
            continue
        d = path.count(".") + 1
        if d <= depth:
            rows.append({"path": path, "type": type(mod).__name__, "depth": d, "params": param_count(mod)})
    return pd.DataFrame(rows)
