"""Package attributes imported on first use (PEP 562), so importing a package stays cheap.

``hsgprof.counting`` and ``hsgprof.memory`` re-export functions whose modules import torch; with
:func:`lazy_exports` a light submodule of theirs (e.g. :mod:`hsgprof.memory.cards`, which the CLI
reads to print ``--help``) can be imported without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``; ``exports`` maps a name to ``"module"`` or ``"module:attr"``.

    A name is imported from its module the first time it is read and then cached in the package,
    so later reads cost nothing. Unknown names raise ``AttributeError`` as usual (which is also
    how ``from package import submodule`` falls through to importing the submodule).
    """

    def __getattr__(name: str) -> Any:
        target = exports.get(name)
        if target is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, _, attr = target.partition(":")
        value = getattr(importlib.import_module(module), attr or name)
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(exports))

    return __getattr__, __dir__
