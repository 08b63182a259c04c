"""The workflow language: YAML text in, a Plan (or every problem, located) out.

Pure Python, no Django. The public entry points are imported lazily, so modules that only need
``engine.dsl.plan`` (the runtime) do not load the YAML, schema and cron libraries.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from engine.dsl.compiler import compile_workflow, validate_workflow
    from engine.dsl.durations import DurationError, parse_duration
    from engine.dsl.loader import Document, load_yaml
    from engine.dsl.schema import workflow_schema

_EXPORTS = {
    "compile_workflow": "engine.dsl.compiler",
    "validate_workflow": "engine.dsl.compiler",
    "workflow_schema": "engine.dsl.schema",
    "load_yaml": "engine.dsl.loader",
    "Document": "engine.dsl.loader",
    "parse_duration": "engine.dsl.durations",
    "DurationError": "engine.dsl.durations",
}

__all__ = [
    "Document",
    "DurationError",
    "compile_workflow",
    "load_yaml",
    "parse_duration",
    "validate_workflow",
    "workflow_schema",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine.dsl' has no attribute {name!r}")
    return getattr(import_module(module), name)
