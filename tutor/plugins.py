"""The plugin manager: built-ins, entry points (group "tutor"), plugin folders, one registry.

Built-in tools are the modules of the `tutor.builtin` package (the files in plugins/), registered
through the same hooks as a user's --plugins-dir files and entry points. Every hook
receives a `register` callback; this module records which plugin registered what and settles
name clashes in one place. A plugin that fails to import or whose hook raises is recorded in
`Registry.failures` and everything else keeps working.
"""

from __future__ import annotations

import importlib
import dataclasses
import importlib.metadata
import importlib.util
import logging
import os
import stat
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import pluggy

from . import hookspecs
from .hub_ids import is_hub_id
from .tools import Tool

log = logging.getLogger("tutor.plugins")
HOOKS = ("register_tools", "register_models", "register_tokenizers", "register_lessons", "register_turn_handlers")
_PACKAGE = Path(__file__).parent
HUB_KINDS = ("models", "tokenizers")


def builtin_dir(kind: str) -> Path:
    """plugins/ or lessons/: inside the installed wheel, or beside the package in a checkout."""
    inside = _PACKAGE / "builtin" / kind
    return inside if inside.is_dir() else _PACKAGE.parent / kind


@dataclass
class PluginInfo:
    name: str
    source: str  # "built-in", "entry point DIST VERSION", "plugins dir PATH"
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)  # kind -> names


@dataclass
class PluginFailure:
    name: str
    source: str
    error: str
    traceback: str = ""


@dataclass
class Registry:
    """What all plugins registered, by name. `add_model` registers one more while running."""

    tools: dict[str, Tool] = field(default_factory=dict)
    models: dict[str, Any] = field(default_factory=dict)
    tokenizers: dict[str, Any] = field(default_factory=dict)
    lessons: list[tuple[str, Path]] = field(default_factory=list)
    turn_handlers: list[tuple[str, Callable]] = field(default_factory=list)  # (plugin, handler), in order
    plugins: list[PluginInfo] = field(default_factory=list)
    failures: list[PluginFailure] = field(default_factory=list)
    clashes: list[str] = field(default_factory=list)
    aliases: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> alias -> name

    def names(self, kind: str) -> list[str]:
        """The names a registry holds ("tools", "models", "tokenizers"), aliases included."""
        table = getattr(self, kind)
        return sorted(table) + sorted(self.aliases.get(kind, {}))

    def accepts(self, kind: str, word: str) -> bool:
        """A name this registry holds, or a hub id ("owner/name"), which the model cache and
        the tokenizer lookup load through transformers when the hub or its local cache has it."""
        return self.lookup(kind, word) is not None or (kind in HUB_KINDS and is_hub_id(word, namespaced=True))

    def add_model(self, spec: Any, plugin: str = "runtime") -> None:
        """Register a model while the app runs (e.g. one a learner just fine-tuned)."""
        spec.plugin = spec.plugin or plugin
        self.models = {**self.models, spec.id: spec}  # a new dict: readers iterating the old one are safe

    def lookup(self, kind: str, name: str) -> Any | None:
        table = getattr(self, kind)
        return table.get(name) or table.get(self.aliases.get(kind, {}).get(name, ""))


def _load_file(path: Path, prefix: str) -> Any:
    name = f"{prefix}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # so dataclasses and pickling inside the plugin work
    spec.loader.exec_module(module)
    return module


def _candidates(plugins_dirs: Iterable[Path], entry_points: bool) -> Iterable[tuple[str, str, Callable[[], Any]]]:
    """(name, source, loader) for every plugin we might load, built-ins first."""
    for path in sorted(builtin_dir("plugins").glob("*.py")):
        if not path.name.startswith("_"):
            yield path.stem, "built-in", lambda n=path.stem: importlib.import_module(f"tutor.builtin.{n}")
    if entry_points:
        for ep in importlib.metadata.entry_points(group="tutor"):
            dist = f"{ep.dist.name} {ep.dist.version}" if ep.dist else "unknown distribution"
            yield ep.name, f"entry point {dist}", ep.load
    for folder in plugins_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            yield folder.name, f"plugins dir {folder}", lambda f=folder: _raise(f"{f} is not a folder")
            continue
        if folder.stat().st_mode & stat.S_IWOTH:  # anyone on the machine could add code we would run
            yield folder.name, f"plugins dir {folder}", lambda f=folder: _raise(
                f"{f} is writable by every user, so anyone on this machine could put code in it; its plugins "
                f"were not loaded. Make it yours alone: chmod o-w {f}", PermissionError)
            continue
        for path in sorted(folder.glob("*.py")):
            yield path.stem, f"plugins dir {folder}", lambda p=path: _load_file(p, "tutor_plugins_dir")


def _raise(message: str, kind: type[Exception] = FileNotFoundError) -> Any:
    raise kind(message)


def build_registry(plugins_dirs: Iterable[Path] = (), allow: Iterable[str] | None = None,
                   extra: Iterable[tuple[str, Any]] = (), settings: Any = None) -> Registry:
    """Load every plugin and collect what it registers.

    `allow` (or TUTOR_PLUGINS, comma-separated) keeps only the named plugins. `extra` adds
    (name, module-or-object) pairs, which tests use to register plugins without files.
    `settings` reaches hooks that name a `settings` argument (default: from the environment).
    TUTOR_ENTRY_POINTS=0 skips installed plugins (the test suite sets it for isolation).
    """
    if allow is None and os.environ.get("TUTOR_PLUGINS"):
        allow = [n.strip() for n in os.environ["TUTOR_PLUGINS"].split(",") if n.strip()]
    allowed = set(allow) if allow is not None else None
    use_eps = os.environ.get("TUTOR_ENTRY_POINTS", "1") != "0"
    pm = pluggy.PluginManager("tutor")
    pm.add_hookspecs(hookspecs)
    reg = Registry()
    sources: dict[str, str] = {}
    loaded = [(n, s, load) for n, s, load in _candidates(plugins_dirs, use_eps)]
    loaded += [(n, "registered in code", lambda o=o: o) for n, o in extra]
    for name, source, load in loaded:
        if allowed is not None and name not in allowed:
            continue
        if name in sources:
            reg.clashes.append(f"plugin name {name!r} from {source} clashes with the one from "
                               f"{sources[name]}; kept the first")
            continue
        try:
            module = load()
            pm.register(module, name=name)
        except Exception as e:  # a broken plugin is reported, never fatal
            reg.failures.append(PluginFailure(name, source, f"{type(e).__name__}: {e}", traceback.format_exc()))
            log.warning("plugin %s (%s) failed to load: %s", name, source, e)
            continue
        sources[name] = source
    while True:  # check_pending: a misspelled hook name is an error, not a silent no-op
        try:
            pm.check_pending()
            break
        except pluggy.PluginValidationError as e:
            bad = pm.get_name(e.plugin)
            reg.failures.append(PluginFailure(bad, sources.pop(bad), str(e)))
            pm.unregister(name=bad)
    for name, plugin in pm.list_name_plugin():
        info = PluginInfo(name, sources[name])
        reg.plugins.append(info)
        for hook in HOOKS:
            if any(impl.plugin_name == name for impl in getattr(pm.hook, hook).get_hookimpls()):
                info.hooks.append(hook)
    for hook in HOOKS:
        # in registration order (built-ins first), so "first registration wins" is predictable
        for impl in getattr(pm.hook, hook).get_hookimpls():
            _call(reg, impl, hook, sources[impl.plugin_name], settings)
    return reg


def _call(reg: Registry, impl: Any, hook: str, source: str, settings: Any = None) -> None:
    info = next(p for p in reg.plugins if p.name == impl.plugin_name)
    kind = hook.removeprefix("register_")
    added: list[str] = []

    def register(item: Any, name: str | None = None, example: str = "", phrases: Iterable[str] = (),
                 lane: Any = "") -> None:
        if kind == "lessons":
            reg.lessons.append((info.name, Path(item)))
            added.append(str(item))
            return
        if kind == "turn_handlers":
            reg.turn_handlers.append((info.name, item))
            added.append(getattr(item, "__name__", repr(item)))
            return
        if kind == "tools" and not isinstance(item, Tool):
            item = Tool.from_function(item, name=name, example=example, phrases=tuple(phrases))
        elif kind == "tools" and phrases:  # a ready Tool may get more phrases at registration
            item = dataclasses.replace(item, phrases=item.phrases + tuple(p.lower() for p in phrases))
        if kind == "tools" and lane:
            item.lane = lane
        key = item.name if kind in ("tools", "tokenizers") else item.id
        table = getattr(reg, kind)
        if key in table:
            old = table[key]
            keep_new = old.plugin != info.name and _builtin(reg, old.plugin) and not _builtin(reg, info.name)
            reg.clashes.append(f"{kind[:-1]} {key!r} registered by {old.plugin} and by {info.name}; "
                               f"kept {info.name if keep_new else old.plugin}'s")
            if not keep_new:
                return
        item.plugin = info.name
        table[key] = item
        for alias in getattr(item, "aliases", ()):
            reg.aliases.setdefault(kind, {})[alias] = key
        added.append(key)

    if os.environ.get("TUTOR_TRACE_HOOKS"):
        log.warning("hook %s -> plugin %s (%s)", hook, info.name, source)
    try:
        if "settings" in impl.argnames:  # asked for only by hooks that need it
            if settings is None:
                from .settings import Settings
                settings = Settings()
            impl.function(register=register, settings=settings)
        else:
            impl.function(register=register)
    except Exception as e:
        reg.failures.append(PluginFailure(info.name, source, f"{hook} raised {type(e).__name__}: {e}",
                                          traceback.format_exc()))
        log.warning("plugin %s: %s raised %s", info.name, hook, e)
    if added:
        info.registered[kind] = added


def _builtin(reg: Registry, plugin: str) -> bool:
    return any(p.name == plugin and p.source == "built-in" for p in reg.plugins)
