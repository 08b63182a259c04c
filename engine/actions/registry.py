"""The actions registry: a step's `uses` name -> its `with` schema and the function that runs it.

Pure Python. Built-ins register in ``engine.actions.builtin``; plugins register with the
``@action`` decorator or through the entry-point group ``flowyard.actions`` (each entry point
names a module, importing it registers its actions).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

ENTRY_POINT_GROUP = "flowyard.actions"

Kind = Literal["task", "wait"]


@dataclass(frozen=True)
class Action:
    name: str
    schema: dict[str, Any]  # JSON Schema (Draft 2020-12) of the step's `with` mapping
    func: Callable[..., Any] | None = None  # how it runs; its signature belongs to the runtime
    description: str = ""
    queue: str = "flowyard.default"
    time_limit_ms: int = 60 * 60 * 1000
    kind: Kind = "task"  # "wait" actions (sleep, approval, workflow) never hold a worker thread
    runs_code: bool = False  # shell and python: only users allowed to author code may save them
    outputs_schema: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> str:
        """The Dramatiq actor that executes steps of this action."""
        return "flowyard_" + self.name.replace(".", "_").replace("-", "_")


class UnknownAction(KeyError):
    pass


class ActionRegistry:
    def __init__(self) -> None:
        self._actions: dict[str, Action] = {}
        self._plugins_loaded = False

    def register(self, action: Action) -> Action:
        if action.name in self._actions:
            raise ValueError(f"an action named {action.name!r} is already registered")
        self._actions[action.name] = action
        return action

    def action(self, name: str, *, schema: dict[str, Any], **options: Any) -> Callable:
        """Decorator: register the decorated function as the action ``name``."""

        def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
            self.register(Action(name=name, schema=schema, func=func, **options))
            return func

        return decorate

    def attach(self, name: str, func: Callable[..., Any]) -> Action:
        """Give the declared action ``name`` the function that runs it (the runtime's side of
        a declaration made without one, e.g. the built-ins). Raises UnknownAction."""
        from dataclasses import replace

        current = self._actions.get(name)
        if current is None:
            raise UnknownAction(name)
        attached = self._actions[name] = replace(current, func=func)
        return attached

    def load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            ep.load()

    def get(self, name: str) -> Action:
        self._ensure_loaded()
        try:
            return self._actions[name]
        except KeyError:
            raise UnknownAction(name) from None

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._actions)

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._actions

    def __iter__(self) -> Iterator[Action]:
        self._ensure_loaded()
        return iter(sorted(self._actions.values(), key=lambda a: a.name))

    def _ensure_loaded(self) -> None:
        import engine.actions.builtin  # noqa: F401  (registers the built-ins)

        self.load_plugins()


registry = ActionRegistry()
action = registry.action
