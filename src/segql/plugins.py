"""Loading packs: discovery, registration, isolation of failures.

A :class:`PluginHost` holds everything programs can call or reference: the
function registry, the library of pack-provided segments and features, and
the packs' conventions.  segql's own built-in functions are registered first,
through the same hook as any pack.

Packs come from the ``segql`` entry-point group (``discover=True``, the
default) and from ``packs={name: module_or_object}``; ``block`` skips packs by
name.  A pack that fails — it cannot be imported, its hooks raise, it
registers something invalid — is recorded in :attr:`PluginHost.failures`
and rolled back; every other pack keeps working, and a source that calls the
failed pack gets a :class:`~segql.errors.PluginError` naming it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any

import attrs
import pluggy

from segql import aggregates, ast, builtins, hookspecs
from segql.errors import PluginError, describe_exception
from segql.library import Conventions, Library, rename
from segql.parse import parse
from segql.registry import FunctionRegistry

ENTRY_POINT_GROUP = "segql"
BUILTIN_PACK = "segql"


class _BuiltinPack:
    """segql's own pack: the built-in functions (:mod:`segql.builtins`) and
    aggregates (:mod:`segql.aggregates`), registered through the hook packs use."""

    @hookspecs.hookimpl
    def segql_register_functions(self, registry: FunctionRegistry) -> None:
        builtins.segql_register_functions(registry)
        aggregates.segql_register_functions(registry)


@attrs.frozen
class PackInfo:
    """What the host knows about one pack."""

    name: str
    version: str | None
    origin: str  # "builtin" | "entry point" | "explicit"
    error: PluginError | None = None
    functions: tuple[str, ...] = ()
    library: tuple[str, ...] = ()
    conventions: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.error is None


class PluginHost:
    """The functions, ready-made segments and conventions available to programs."""

    def __init__(
        self,
        *,
        discover: bool = True,
        packs: Mapping[str, Any] | None = None,
        block: Iterable[str] = (),
        conventions: Mapping[str, Mapping[str, str]] | None = None,
    ) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.functions = FunctionRegistry()
        self.library = Library()
        self.conventions = Conventions()
        self.packs: dict[str, PackInfo] = {}
        self.blocked = frozenset(block)
        self._defaults: dict[tuple[str, str], ast.Node] = {}
        self._lock = threading.Lock()

        candidates: list[tuple[str, str, str | None, Any]] = [(BUILTIN_PACK, "builtin", None, _BuiltinPack())]
        if discover:
            candidates.extend(self._discovered())
        for name, obj in (packs or {}).items():
            candidates.append((name, "explicit", _version_of(obj), obj))
        for name, origin, version, obj in candidates:
            self._load(name, origin, version, obj)
        self._apply_conventions(conventions or {})

    # ---------------------------------------------------------------- loading
    def _discovered(self) -> list[tuple[str, str, str | None, Any]]:
        found: list[tuple[str, str, str | None, Any]] = []
        for ep in sorted(metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if ep.name in self.blocked:
                continue
            version = ep.dist.version if ep.dist is not None else None
            try:
                obj = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # an import that calls sys.exit() fails only its pack
                self._fail(ep.name, "entry point", version, f"could not be imported: {describe_exception(exc)}")
                continue
            found.append((ep.name, "entry point", version, obj))
        return found

    def _load(self, name: str, origin: str, version: str | None, obj: Any) -> None:
        if name in self.blocked:
            return
        if not isinstance(name, str) or not name.isidentifier():
            self._fail(str(name), origin, version, "a pack name must be an identifier")
            return
        if name in self.packs:
            self._fail(name, origin, version, f"a pack named {name!r} is already loaded")
            return
        try:
            self.manager.register(obj, name=name)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            self._fail(name, origin, version, f"is not a valid pack: {describe_exception(exc)}")
            return
        try:
            self._call(name, "segql_register_conventions", self.conventions)
            self._call(name, "segql_register_functions", self.functions)
            self._call(name, "segql_register_library", self.library)
            functions = [f.name for f in self.functions if f.pack == name]
            for fn in [*functions, *(a.name for a in self.functions.aggregates() if a.pack == name)]:
                self._check_namespace(name, fn)
            library = [e.name for e in self.library if e.pack == name]
        except PluginError as exc:
            self._rollback(name)
            self._fail(name, origin, version, exc.message)
            return
        except KeyboardInterrupt:
            self._rollback(name)
            raise
        except BaseException as exc:  # also sys.exit() in a hook: contained, the pack fails
            self._rollback(name)
            self._fail(name, origin, version, f"failed while registering: raised {describe_exception(exc)}")
            return
        self.packs[name] = PackInfo(
            name=name,
            version=version,
            origin=origin,
            functions=tuple(functions),
            library=tuple(library),
            conventions=tuple(c.name for c in self.conventions.of(name)),
        )

    def _call(self, pack: str, hook_name: str, target: Any) -> None:
        """Call one pack's implementation of a hook (not the others')."""
        caller = getattr(self.manager.hook, hook_name)
        for impl in caller.get_hookimpls():
            if impl.plugin_name != pack:
                continue
            target.current_pack = pack
            try:
                impl.function(**{caller.spec.argnames[0]: target})
            finally:
                target.current_pack = BUILTIN_PACK

    def _check_namespace(self, pack: str, function: str) -> None:
        if pack == BUILTIN_PACK:
            if "." in function:
                raise PluginError(f"built-in function {function!r} must not be namespaced", pack=pack)
            return
        if not function.startswith(pack + "."):
            raise PluginError(
                f"pack {pack!r} registers {function!r}; its functions must be named {pack}.<name>",
                pack=pack,
                function=function,
            )

    def _rollback(self, pack: str) -> None:
        self.functions.remove_pack(pack)
        self.library.remove_pack(pack)
        self.conventions.remove_pack(pack)
        plugin = self.manager.get_plugin(pack)
        if plugin is not None:
            self.manager.unregister(plugin, name=pack)

    def _fail(self, name: str, origin: str, version: str | None, reason: str) -> None:
        if name == BUILTIN_PACK and origin == "builtin":  # pragma: no cover - segql's own code
            raise PluginError(f"segql's built-in functions failed to register: {reason}")
        error = PluginError(f"pack {name!r} {reason}" if not reason.startswith("pack ") else reason, pack=name)
        self.packs[name] = PackInfo(name=name, version=version, origin=origin, error=error)

    def _apply_conventions(self, overrides: Mapping[str, Mapping[str, str]]) -> None:
        for pack, mapping in overrides.items():
            declared = {c.name for c in self.conventions.of(pack)}
            if pack not in self.packs or not self.packs[pack].ok:
                raise PluginError(f"conventions given for pack {pack!r}, which is not loaded", pack=pack)
            for key, value in mapping.items():
                if key not in declared:
                    raise PluginError(
                        f"pack {pack!r} declares no convention {key!r}",
                        pack=pack,
                        hint=f"its conventions: {', '.join(sorted(declared)) or 'none'}",
                    )
                if not isinstance(value, str) or not value.isidentifier():
                    raise PluginError(f"convention {pack}.{key} must be renamed to an identifier, not {value!r}")
            self.library.rename(pack, mapping)
        self._renames = {pack: dict(m) for pack, m in overrides.items()}

    # ------------------------------------------------------------------ query
    @property
    def failures(self) -> dict[str, PluginError]:
        """Packs that failed to load, with why."""
        return {name: info.error for name, info in self.packs.items() if info.error is not None}

    def default_tree(self, function: str, parameter: str, text: str) -> ast.Node:
        """The parsed (and convention-renamed) default expression of a function parameter."""
        key = (function, parameter)
        tree = self._defaults.get(key)
        if tree is None:
            fn = self.functions.get(function)
            pack = fn.pack if fn is not None else BUILTIN_PACK
            parsed = parse(text, source_name=f"default of {function}({parameter})")
            if not parsed.bare:
                raise PluginError(f"the default of {function}({parameter}) must be an expression", pack=pack)
            decl = parsed.decls[0]
            assert isinstance(decl, ast.SegmentDecl)
            tree = rename(decl.expr, self._renames.get(pack, {}))
            with self._lock:
                self._defaults[key] = tree
        return tree

    def unavailable(self, name: str) -> PluginError | None:
        """Why a namespaced function or library name is unavailable, if its pack failed or is blocked."""
        namespace = name.split(".", 1)[0] if "." in name else None
        if namespace is None:
            return None
        if namespace in self.blocked:
            return PluginError(f"{name} belongs to pack {namespace!r}, which this host blocks", pack=namespace)
        info = self.packs.get(namespace)
        if info is not None and info.error is not None:
            return PluginError(
                f"{name} is unavailable: {info.error.message}", pack=namespace, hint="other packs keep working"
            )
        return None


def _version_of(obj: Any) -> str | None:
    version = getattr(obj, "__version__", None)
    return version if isinstance(version, str) else None


_default: PluginHost | None = None
_default_lock = threading.Lock()


def default_host() -> PluginHost:
    """The process-wide host (entry-point discovery on) used when a program is
    compiled without ``plugins=``."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = PluginHost()
    return _default
