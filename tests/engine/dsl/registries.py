"""Action registries for tests: the built-ins plus plugins, as other apps would register them."""

from __future__ import annotations

from engine.actions.builtin import register_builtins
from engine.actions.registry import Action, ActionRegistry


def with_devices() -> ActionRegistry:
    """The built-ins plus a plugin action, as the devices app would register it."""
    registry = ActionRegistry()
    register_builtins(registry)
    registry.register(
        Action(
            name="devices.list",
            schema={
                "type": "object",
                "additionalProperties": False,
                "properties": {"labels": {"type": "array", "description": "Labels to match."}},
            },
            queue="flowyard.control",
            time_limit_ms=30_000,
        )
    )
    return registry
