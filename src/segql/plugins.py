"""Loading packs: the pluggy plugin manager and the function registry it fills."""

from __future__ import annotations

import threading

import pluggy

from segql import builtins, hookspecs
from segql.registry import FunctionRegistry


class PluginHost:
    """The functions available to programs: segql's built-ins plus packs."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.functions = FunctionRegistry()
        self.manager.register(builtins, name="segql")
        self.functions.current_pack = "segql"
        self.manager.hook.segql_register_functions(registry=self.functions)


_default: PluginHost | None = None
_default_lock = threading.Lock()


def default_host() -> PluginHost:
    """The process-wide host used when a program is compiled without one."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = PluginHost()
    return _default
