"""The SDK, loaded lean: what wrapupd calls, and only the models an answer actually needs.

Importing the package ``PureCloudPlatformClientV2`` runs its ``__init__``, which imports every one
of its ~6,650 model modules and 89 API modules (~190 MB, ~2 s) — wrapupd uses four API classes and
a few dozen models. Every other SDK import in wrapupd goes through this module, which loads the SDK
one of two ways, chosen once per process:

- **lean** (the default): the three package ``__init__`` files (the SDK's, ``models``' and
  ``apis``') consist only of ``from .<module> import <Name>`` lines. Instead of running them, each
  package is built from its own file by a loader that reads those lines into a name -> module
  table and imports a module the first time one of its names is asked for (a module
  ``__getattr__``, PEP 562). ``ApiClient`` finds the model of an answer by name on
  ``PureCloudPlatformClientV2.models`` (``eval('models.' + name)``), which the table serves, so the
  SDK's own deserialiser works unchanged and loads only the models present in the answer. The API
  modules import a few hundred models each by name but use them only in string annotations: while
  one of them is imported here, each such name is bound to a :class:`DeferredModel`, which loads
  the real class the first time it is used.
- **full**: ``import PureCloudPlatformClientV2``, as the SDK's own documentation does. Chosen with
  ``GENESYS_SDK_IMPORT=full``, and automatically when a precondition of the lean path does not hold
  (an ``__init__`` line of another form, ``ApiClient`` not reading models from the package): a
  warning names the reason. If some other code imported the SDK first, it is used as it is.

``tests/unit/genesys/test_genesys_sdk.py`` checks every precondition against the installed SDK, so
a release in the pinned range that changes them fails loudly there, not quietly in production.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "IMPORT_MODE",
    "MODE_ENV",
    "SDK_PACKAGE",
    "DeferredModel",
    "LeanImportUnavailable",
    "SdkLogger",
    "load_sdk",
    "model",
    "read_package_table",
]

SDK_PACKAGE = "PureCloudPlatformClientV2"
MODE_ENV = "GENESYS_SDK_IMPORT"  # "lean" (default) or "full"
_MODELS = f"{SDK_PACKAGE}.models"
_APIS = f"{SDK_PACKAGE}.apis"
_LINE = re.compile(r"from \.([\w.]+) import (\w+)")
# The only lines of the three __init__ files that are not ``from .x import Name``. The SDK's
# ``configuration = Configuration()`` builds the settings singleton at import; wrapupd builds (and
# pins) it itself before the first ApiClient, so it is not run here.
_IGNORED_LINES = frozenset(
    {"from __future__ import absolute_import", "configuration = Configuration()"}
)

log = logging.getLogger(__name__)
_deferring = threading.local()


class LeanImportUnavailable(Exception):
    """A precondition of the lean import does not hold for the installed SDK (the message says which)."""


def read_package_table(init_file: Path) -> dict[str, str]:
    """``Name -> dotted submodule`` from one SDK package ``__init__``; any other statement raises."""
    table: dict[str, str] = {}
    text = init_file.read_text(encoding="utf-8")
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#") or line in _IGNORED_LINES:
            continue
        match = _LINE.fullmatch(line)
        if match is None:
            raise LeanImportUnavailable(f"{init_file.name} line {number} is {line[:80]!r}")
        table[match.group(2)] = match.group(1)
    return table


class DeferredModel:
    """An SDK model class bound by an API module but not used yet: loads the class on first use."""

    __slots__ = ("_name", "_package")

    def __init__(self, package: ModuleType, name: str) -> None:
        self._package = package
        self._name = name

    def _real(self) -> Any:
        return getattr(self._package, self._name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._real()(*args, **kwargs)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._real(), attribute)

    def __instancecheck__(self, instance: object) -> bool:
        return isinstance(instance, self._real())

    def __subclasscheck__(self, subclass: type) -> bool:
        return issubclass(subclass, self._real())

    def __mro_entries__(self, _bases: tuple[object, ...]) -> tuple[type, ...]:
        return (self._real(),)

    def __repr__(self) -> str:
        return f"<deferred SDK model {self._name}>"


class _LazyPackageLoader(importlib.abc.Loader):
    """Builds an SDK package whose names are imported on first access instead of all at once."""

    def __init__(self, table: dict[str, str]) -> None:
        self._table = table

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        table = self._table

        def __getattr__(name: str) -> Any:
            return _resolve(module, table, name)

        def __dir__() -> list[str]:
            return sorted({*module.__dict__, *table})

        module.__getattr__ = __getattr__  # type: ignore[method-assign]
        module.__dir__ = __dir__  # type: ignore[method-assign]


def _resolve(package: ModuleType, table: dict[str, str], name: str) -> Any:
    submodule = table.get(name)
    if submodule is None:
        raise AttributeError(f"module {package.__name__!r} has no attribute {name!r}")
    if package.__name__ == _MODELS and getattr(_deferring, "active", False):
        return DeferredModel(package, name)
    value = getattr(importlib.import_module(f"{package.__name__}.{submodule}"), name)
    setattr(package, name, value)
    return value


@contextmanager
def _models_deferred() -> Iterator[None]:
    """In this thread only: names imported from the models package are bound as stand-ins."""
    _deferring.active = True
    try:
        yield
    finally:
        _deferring.active = False


def _package_dir() -> Path:
    spec = importlib.util.find_spec(SDK_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the {SDK_PACKAGE} package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _install_lazy_package(name: str, directory: Path, table: dict[str, str]) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        name,
        directory / "__init__.py",
        loader=_LazyPackageLoader(table),
        submodule_search_locations=[str(directory)],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    parent, _, child = name.rpartition(".")
    if parent:
        setattr(sys.modules[parent], child, module)
    return module


def _load_lean() -> None:
    root = _package_dir()
    tables = {
        SDK_PACKAGE: read_package_table(root / "__init__.py"),
        _MODELS: read_package_table(root / "models" / "__init__.py"),
        _APIS: read_package_table(root / "apis" / "__init__.py"),
    }
    installed = {
        name: _install_lazy_package(name, root / name.partition(".")[2].replace(".", "/"), table)
        for name, table in tables.items()
    }
    api_client = importlib.import_module(f"{SDK_PACKAGE}.api_client")
    if getattr(api_client, "models", None) is not installed[_MODELS]:
        raise LeanImportUnavailable("ApiClient does not read models from the models package")


def _forget_sdk() -> None:
    for name in [n for n in sys.modules if n == SDK_PACKAGE or n.startswith(SDK_PACKAGE + ".")]:
        del sys.modules[name]


def load_sdk(requested: str) -> str:
    """Load the SDK ``lean`` or ``full``; returns how it was loaded (with the reason for a fallback).

    ``preloaded`` when other code imported the SDK first (then it is used as it is).
    """
    if SDK_PACKAGE in sys.modules:
        return "preloaded"
    if requested == "full":
        importlib.import_module(SDK_PACKAGE)
        return "full"
    if requested != "lean":
        log.warning("%s=%r is neither 'lean' nor 'full': loading lean", MODE_ENV, requested)
    try:
        _load_lean()
    except (LeanImportUnavailable, OSError, ImportError) as exc:
        _forget_sdk()
        log.warning("the SDK is imported in full (~200 MB): lean import unavailable: %s", exc)
        importlib.import_module(SDK_PACKAGE)
        return f"full (fallback: {exc})"
    return "lean"


def _api_class(module: str, name: str) -> Any:
    with _models_deferred():
        return getattr(importlib.import_module(f"{_APIS}.{module}"), name)


def model(name: str) -> Any:
    """The SDK model class ``name`` (``WrapupInput``, ...), loaded on first use."""
    return getattr(importlib.import_module(_MODELS), name)


IMPORT_MODE = load_sdk(os.environ.get(MODE_ENV, "lean").strip().lower() or "lean")

_rest = importlib.import_module(f"{SDK_PACKAGE}.rest")
ApiException: Any = _rest.ApiException
ApiClient: Any = importlib.import_module(f"{SDK_PACKAGE}.api_client").ApiClient
AbstractHttpClient: Any = importlib.import_module(
    f"{SDK_PACKAGE}.abstract_http_client"
).AbstractHttpClient
HttpRequestOptions: Any = importlib.import_module(
    f"{SDK_PACKAGE}.http_request_options"
).HttpRequestOptions
Configuration: Any = importlib.import_module(f"{SDK_PACKAGE}.configuration").Configuration
LogLevel: Any = importlib.import_module(f"{SDK_PACKAGE}.logger").LogLevel
SdkLogger: Any = importlib.import_module(f"{SDK_PACKAGE}.logger").Logger
AnalyticsApi: Any = _api_class("analytics_api", "AnalyticsApi")
ConversationsApi: Any = _api_class("conversations_api", "ConversationsApi")
NotificationsApi: Any = _api_class("notifications_api", "NotificationsApi")
RoutingApi: Any = _api_class("routing_api", "RoutingApi")
UsersApi: Any = _api_class("users_api", "UsersApi")
