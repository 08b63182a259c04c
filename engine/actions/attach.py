"""Attach the runtime's functions to the built-in actions declared in ``builtin``.

The declarations (names, `with` schemas) live in ``engine.actions.builtin`` and carry no
function, so the language core stays free of the runtime; the runtime calls
``attach_builtin_funcs`` when its actors load.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from engine.actions import control, http, python_call, shell
from engine.actions.registry import ActionRegistry

BUILTIN_FUNCS: dict[str, Callable[..., Any]] = {
    "noop": control.noop,
    "fail": control.fail,
    "sleep": control.sleep,
    "approval": control.approval,
    "workflow": control.workflow,
    "shell": shell.shell,
    "http": http.http,
    "python": python_call.python,
}


def attach_builtin_funcs(registry: ActionRegistry) -> None:
    """Give each declared built-in its function (idempotent; missing declarations are skipped)."""
    for name, func in BUILTIN_FUNCS.items():
        if name in registry and registry.get(name).func is None:
            registry.attach(name, func)
