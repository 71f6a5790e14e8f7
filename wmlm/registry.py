"""Plugin manager, lazy plugin loading and name lookups with helpful errors.

Built-in modalities, heads and readers register through exactly the same hooks as third-party
distributions. Nothing is imported or registered until the first lookup (``load_plugins``).
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata
import os
import threading
import warnings
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

from wmlm import hookspecs
from wmlm.version import __version__

if TYPE_CHECKING:
    from wmlm.data.readers import FieldReader
    from wmlm.heads.base import TaskHead
    from wmlm.modalities.base import Modality


class DataEngine(Protocol):
    """What ``wmlm_register_data_engines`` registers: a named ``wmlm data synth`` back end."""

    name: str

    def synth(self, argv: list[str]) -> int:
        """Run ``wmlm data synth --engine NAME`` with the remaining arguments; returns the exit code."""
        ...


ENTRY_POINT_GROUP = "wmlm"
ENV_LOAD_PLUGINS = "WMLM_LOAD_PLUGINS"
# the built-in plugin modules: every built-in @hookimpl lives in wmlm.builtins
DEFAULT_PLUGINS: tuple[str, ...] = ("wmlm.builtins",)
HOOK_KINDS: dict[str, str] = {
    "wmlm_register_modalities": "modality",
    "wmlm_register_heads": "head",
    "wmlm_register_readers": "reader",
}
# data engines (``wmlm data synth --engine NAME``) are collected by their own hook, kept apart from
# HOOK_KINDS: a plugin record lists them in ``data_engines``, and wmlm's own simulator is ``builtin``
ENGINE_HOOK = "wmlm_register_data_engines"
BUILTIN_ENGINE = "builtin"


class UnknownNameError(KeyError):
    """A modality, head or reader name that no loaded plugin registered."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@dataclass
class PluginRecord:
    """What one plugin module contributed, for ``wmlm plugins``."""

    name: str
    distribution: str
    version: str
    status: str = "ok"  # ok | failed
    error: str = ""
    registered: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in HOOK_KINDS.values()})
    data_engines: list[str] = field(default_factory=list)


@dataclass
class Registry:
    """Everything the loaded plugins registered, keyed by name."""

    modalities: dict[str, type[Modality]] = field(default_factory=dict)
    heads: dict[str, type[TaskHead]] = field(default_factory=dict)
    readers: dict[str, FieldReader] = field(default_factory=dict)
    data_engines: dict[str, DataEngine] = field(default_factory=dict)
    records: list[PluginRecord] = field(default_factory=list)


_lock = threading.Lock()
_registry: Registry | None = None
_pm: pluggy.PluginManager | None = None


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, with built-ins and allowed entry points registered."""
    global _pm
    if _pm is None:
        pm = pluggy.PluginManager("wmlm")
        pm.add_hookspecs(hookspecs)
        _pm = pm
        _register_builtins(pm)
        _register_entry_points(pm)
    return _pm


def _register_builtins(pm: pluggy.PluginManager) -> None:
    for module_name in DEFAULT_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
        _meta[module_name] = ("wmlm", __version__, "", "")


def _allowed_entry_points() -> set[str] | None:
    """Names allowed by ``WMLM_LOAD_PLUGINS`` (entry-point or distribution names); None = all."""
    raw = os.environ.get(ENV_LOAD_PLUGINS)
    if raw is None:
        return None
    return {part.strip() for part in raw.split(",") if part.strip()}


def _register_entry_points(pm: pluggy.PluginManager) -> None:
    allowed = _allowed_entry_points()
    installed: list[str] = []
    matched: set[str] = set()
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist_name = ep.dist.name if ep.dist is not None else "?"
        version = ep.dist.version if ep.dist is not None else "?"
        installed.append(f"{ep.name} ({dist_name})")
        if allowed is not None and ep.name not in allowed and dist_name not in allowed:
            continue
        matched.update(allowed & {ep.name, dist_name} if allowed is not None else ())
        try:
            plugin: ModuleType = ep.load()
            pm.register(plugin, name=ep.name)
            _meta[ep.name] = (dist_name, version, "", "")
        except (Exception, SystemExit) as exc:  # a broken plugin (even one calling sys.exit) never stops wmlm
            _meta[ep.name] = (dist_name, version, "failed", f"{type(exc).__name__}: {exc}")
            warnings.warn(f"wmlm plugin {ep.name!r} ({dist_name}) failed to load: {exc!r}", stacklevel=2)
    unmatched = sorted(allowed - matched) if allowed else []
    if unmatched:
        warnings.warn(
            f"{ENV_LOAD_PLUGINS} names {', '.join(unmatched)}, which no installed wmlm plugin is called "
            f"(names are separated by commas); installed: {', '.join(installed) or 'none'}",
            stacklevel=2,
        )


# plugin name -> (distribution, version, status override, error)
_meta: dict[str, tuple[str, str, str, str]] = {}


def load_plugins() -> Registry:
    """Load every plugin once and collect what it registers. Idempotent and thread-safe."""
    global _registry
    with _lock:
        if _registry is None:
            _registry = _collect(plugin_manager())
        return _registry


def reset() -> None:
    """Forget all plugins; the next lookup loads them again (used by tests and long sessions)."""
    global _registry, _pm
    with _lock:
        _registry = None
        _pm = None
        _meta.clear()


def _collect(pm: pluggy.PluginManager) -> Registry:
    registry = Registry()
    records: dict[str, PluginRecord] = {}
    for name, (dist, version, status, error) in _meta.items():
        records[name] = PluginRecord(name, dist, version, status or "ok", error)
    for hook_name, kind in HOOK_KINDS.items():
        hook = getattr(pm.hook, hook_name)
        # get_hookimpls() lists plugins in registration order (built-ins first), so on a name clash
        # the earlier registration wins and the later one is reported
        for impl in hook.get_hookimpls():
            record = records.setdefault(impl.plugin_name, PluginRecord(impl.plugin_name, "?", "?"))
            register = _make_register(registry, kind, record)
            try:
                impl.function(register=register)
            except (Exception, SystemExit) as exc:
                record.status = "failed"
                record.error = f"{hook_name}: {type(exc).__name__}: {exc}"
                warnings.warn(f"wmlm plugin {record.name!r} failed in {hook_name}: {exc}", stacklevel=2)
    _collect_engines(pm, registry, records)
    registry.records = list(records.values())
    return registry


def _collect_engines(pm: pluggy.PluginManager, registry: Registry, records: dict[str, PluginRecord]) -> None:
    """Call every ``wmlm_register_data_engines``; a broken engine marks its plugin failed, as above."""
    for impl in getattr(pm.hook, ENGINE_HOOK).get_hookimpls():
        record = records.setdefault(impl.plugin_name, PluginRecord(impl.plugin_name, "?", "?"))

        def register(engine: Any, record: PluginRecord = record) -> None:
            name = getattr(engine, "name", None)
            if not isinstance(name, str) or not name:
                raise TypeError(f"a registered data engine needs a non-empty string 'name', got {engine!r}")
            if not callable(getattr(engine, "synth", None)):
                raise TypeError(f"data engine {name!r} needs a method synth(argv: list[str]) -> int")
            if name == BUILTIN_ENGINE or name in registry.data_engines:
                record.status = "failed"
                record.error = (
                    record.error + "; " if record.error else ""
                ) + f"duplicate data engine {name!r}"
                warnings.warn(
                    f"wmlm plugin {record.name!r} registers data engine {name!r}, which is already taken; "
                    "keeping the first one",
                    stacklevel=2,
                )
                return
            registry.data_engines[name] = engine
            record.data_engines.append(name)

        try:
            impl.function(register=register)
        except (Exception, SystemExit) as exc:
            record.status = "failed"
            record.error = f"{ENGINE_HOOK}: {type(exc).__name__}: {exc}"
            warnings.warn(f"wmlm plugin {record.name!r} failed in {ENGINE_HOOK}: {exc}", stacklevel=2)


def _make_register(registry: Registry, kind: str, record: PluginRecord) -> Any:
    table: dict[str, Any] = {
        "modality": registry.modalities,
        "head": registry.heads,
        "reader": registry.readers,
    }[kind]

    def register(item: Any) -> None:
        name = getattr(item, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"a registered {kind} needs a non-empty string 'name', got {item!r}")
        if name in table:
            record.status = "failed"
            record.error = (record.error + "; " if record.error else "") + f"duplicate {kind} name {name!r}"
            warnings.warn(
                f"wmlm plugin {record.name!r} registers {kind} {name!r}, which is already registered; "
                "keeping the first one",
                stacklevel=2,
            )
            return
        table[name] = item
        record.registered[kind].append(name)

    return register


def _lookup(table: dict[str, Any], kind: str, name: str) -> Any:
    if name not in table:
        available = ", ".join(sorted(table)) or "(none)"
        raise UnknownNameError(
            f"unknown {kind} {name!r}; available: {available}. Install or enable the plugin that provides it "
            f"(see `wmlm plugins`)."
        )
    return table[name]


def get_modality(name: str) -> type[Modality]:
    """The registered ``Modality`` class called ``name``."""
    return _lookup(load_plugins().modalities, "modality", name)


def get_head(name: str) -> type[TaskHead]:
    """The registered ``TaskHead`` class called ``name``."""
    return _lookup(load_plugins().heads, "head", name)


def get_reader(name: str) -> FieldReader:
    """The registered ``FieldReader`` for field ``name``."""
    return _lookup(load_plugins().readers, "reader (data field)", name)


def data_engine_names() -> list[str]:
    """``builtin`` and the names of the registered data engines, sorted after it."""
    return [BUILTIN_ENGINE, *sorted(load_plugins().data_engines)]


def get_data_engine(name: str) -> DataEngine:
    """The registered data engine called ``name`` (not ``builtin``: that is ``wmlm data synth`` itself).

    Raises ``UnknownNameError`` listing every engine, ``builtin`` included.
    """
    engines = load_plugins().data_engines
    if name not in engines:
        raise UnknownNameError(
            f"unknown data engine {name!r}; available: {', '.join(data_engine_names())}. Install or enable the "
            "plugin that provides it (see `wmlm plugins`), e.g. pip install ./plugins/wmlm-sionna for 'sionna'."
        )
    return engines[name]


def register_plugin(plugin: object, name: str) -> None:
    """Register a plugin object at run time (e.g. from a notebook or a test); lookups see it at once."""
    global _registry
    pm = plugin_manager()
    with _lock:
        pm.register(plugin, name=name)
        _meta[name] = ("(runtime)", "", "", "")
        _registry = None


def unregister_plugin(name: str) -> None:
    """Undo ``register_plugin``."""
    global _registry
    pm = plugin_manager()
    with _lock:
        pm.unregister(name=name)
        _meta.pop(name, None)
        _registry = None
