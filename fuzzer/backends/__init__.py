"""Backend registry: every module in this package contributes its ``BACKENDS`` list.

Adding a compiler is one file here. A backend from elsewhere is named ``module:Class``.
Backend modules are light to import; heavy imports happen in the worker's ``setup``.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from fuzzer.backends.base import Backend, Unsupported, check_backend_class

__all__ = ["Backend", "Unsupported", "UnknownBackend", "builtin_backends", "load_backend"]


class UnknownBackend(ValueError):
    pass


@cache
def builtin_backends() -> dict[str, type[Backend]]:
    found: dict[str, type[Backend]] = {}
    for module_info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for candidate in getattr(module, "BACKENDS", ()):
            backend = check_backend_class(f"{module.__name__}.{candidate.__name__}", candidate)
            if backend.name in found:
                raise TypeError(f"backend name {backend.name!r} is registered twice")
            found[backend.name] = backend
    return found


def load_backend(name: str) -> type[Backend]:
    """A built-in backend by name, or a plugin given as ``module:Class``."""
    if ":" in name:
        module_name, _, class_name = name.partition(":")
        try:
            candidate = getattr(importlib.import_module(module_name), class_name)
        except (ImportError, AttributeError) as error:
            raise UnknownBackend(f"backend plugin {name!r} cannot be loaded ({error}); "
                                 "check the module is importable and the class exists") from None
        return check_backend_class(name, candidate)
    backends = builtin_backends()
    if name not in backends:
        raise UnknownBackend(f"unknown backend {name!r}; choose from {', '.join(sorted(backends))} "
                             "(see `tcfuzz backends`) or give a plugin as module:Class")
    return backends[name]
