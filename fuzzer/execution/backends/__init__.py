"""Backend registry: every module in this package contributes its ``BACKENDS`` list.

Adding a compiler is one file here. A backend from elsewhere is named ``module:Class``.
Backend modules are light to import; heavy imports happen in the worker's ``setup``.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from fuzzer.execution.backends.base import Backend, Unsupported, check_backend_class

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
    """A built-in backend by name, or a plugin given as ``module:Class``; ``NAME@LABEL`` is
    that backend again under its own name (the same compiler from another environment);
    ``timed/NAME`` is NAME timed against its baseline (``fuzzer.execution.backends.timed``)."""
    if name.startswith("timed/"):
        from fuzzer.execution.backends.timed import timed

        try:
            return timed(load_backend(name.removeprefix("timed/")))
        except TypeError as error:
            raise UnknownBackend(str(error)) from None
    base_name, at, label = name.partition("@")
    if at:
        if not label.replace("-", "").replace(".", "").replace("_", "").isalnum():
            raise UnknownBackend(f"backend label in {name!r} must be letters, digits, '.', '-' or '_'")
        return labelled(load_backend(base_name), label)
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


@cache
def labelled(base: type[Backend], label: str) -> type[Backend]:
    """``base`` named ``NAME@LABEL``, its package versions keyed ``PACKAGE@LABEL``, so that two
    versions of one compiler (``--backend-python``) are told apart in outcomes and reports."""

    class Labelled(base):
        name = f"{base.name}@{label}"

        @classmethod
        def versions(cls) -> dict[str, str]:
            return {f"{package}@{label}": version for package, version in base.versions().items()}

    Labelled.__name__ = Labelled.__qualname__ = f"{base.__name__}At{label.replace('-', '_').replace('.', '_')}"
    return Labelled
