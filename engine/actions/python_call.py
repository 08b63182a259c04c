"""The `python` action: call a function registered by name, and nothing else.

Only callables registered with ``@flowyard_callable("name")`` can run, so a workflow can never
reach arbitrary importable code. Register them in a module your plugin's ``flowyard.actions``
entry point (or your app's ``ready()``) imports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from engine.errors import StepFailed

if TYPE_CHECKING:
    from engine.runtime.execute import StepCall
    from engine.runtime.logs import LogWriter

_callables: dict[str, Callable[..., Any]] = {}
_current = threading.local()


def flowyard_callable(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: make the function callable from workflows as ``function: <name>``."""

    def register(func: Callable[..., Any]) -> Callable[..., Any]:
        existing = _callables.get(name)
        if existing is not None and existing is not func:
            raise ValueError(f"a python callable named {name!r} is already registered")
        _callables[name] = func
        return func

    return register


def callable_names() -> list[str]:
    return sorted(_callables)


class _StepLogHandler(logging.Handler):
    """Sends log records emitted while a python step runs (in its thread) to the step's logs."""

    def emit(self, record: logging.LogRecord) -> None:
        writer: LogWriter | None = getattr(_current, "writer", None)
        if writer is None or record.name.startswith("flowyard.runtime"):
            return
        try:
            writer.write(self.format(record) + "\n")
        except Exception:
            self.handleError(record)


_handler = _StepLogHandler()
_handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))


def python(call: StepCall) -> dict[str, Any]:
    """Run the registered callable `function` with `args` / `kwargs`.

    A dict result is the step's outputs; any other value is ``{"value": result}``. Log records
    emitted in the call's thread (any logger at INFO or above) go to the step's logs.
    """
    from engine.actions.registry import registry

    registry.load_plugins()
    name = call.with_.get("function")
    func = _callables.get(name)
    if func is None:
        known = ", ".join(callable_names()) or "none"
        raise StepFailed(
            f"no python callable registered as {name!r} (registered: {known}); "
            "register it with @flowyard_callable",
            permanent=True,
        )
    root = logging.getLogger()
    if _handler not in root.handlers:
        _handler.setLevel(logging.INFO)
        root.addHandler(_handler)
    _current.writer = call.log
    try:
        result = func(*call.with_.get("args", []), **call.with_.get("kwargs", {}))
    finally:
        _current.writer = None
    return result if isinstance(result, dict) else {"value": result}
