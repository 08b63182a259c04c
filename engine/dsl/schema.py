"""The JSON Schema (Draft 2020-12) of a workflow file, built from a base and the actions registry.

Editors use it for completion and hover help (every property has a ``description``), and the
compiler validates with it, so a plugin's actions are checked the same way as the built-ins:
each action's `with` schema is composed in, chosen by the step's `uses`.

Names, decided here and documented in docs/language.md:

- a workflow ``name`` is a slug: lower case letters, digits, ``-`` and ``_``;
- a step id matches ``STEP_ID_PATTERN``: lower case letters, digits, ``_`` and ``-``, starting
  with a letter or ``_``. A step id with ``-`` is read in expressions as ``steps['my-step']``
  (``steps.my-step`` would be a subtraction);
- inputs, outputs, matrix and environment variable names are identifiers, so that
  ``inputs.day`` and ``matrix.size`` read naturally in expressions.

Run ``python -m engine.dsl.schema`` to print the schema of the built-in actions; the checked-in
``engine/schema/workflow.schema.json`` is that output.
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from engine.actions.builtin import (
    EXPRESSION,
    EXPRESSION_PATTERN,
    FUNCTION_NAME_PATTERN,
    object_schema,
    register_builtins,
)
from engine.actions.registry import ActionRegistry
from engine.actions.registry import registry as default_registry
from engine.dsl.durations import DURATION_PATTERN

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
STEP_ID_PATTERN = r"^[a-z_][a-z0-9_-]*$"
IDENTIFIER_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
MAX_NAME_LENGTH = 100
MAX_STEP_ID_LENGTH = 64

# What a failed pattern means, in the words an error message should use.
PATTERN_HELP = {
    NAME_PATTERN: "use lower case letters, digits, - and _ (e.g. nightly-report)",
    STEP_ID_PATTERN: "use lower case letters, digits, _ and -, starting with a letter or _",
    IDENTIFIER_PATTERN: "use letters, digits and _, not starting with a digit",
    EXPRESSION_PATTERN: "expected one whole expression ${{ … }}",
    FUNCTION_NAME_PATTERN: "use the name the function was registered with, e.g. reports.build",
}

INPUT_TYPES = ["string", "number", "integer", "boolean", "object", "array"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def _text(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _defs() -> dict[str, Any]:
    scalar = {"type": ["string", "number", "boolean"], "description": "A value, used as text."}
    return {
        "expression": EXPRESSION,
        "duration": {
            "title": "duration",
            "description": "A duration: 30s, 10m, 1h30m, 1d, 500ms, or a number of seconds.",
            "type": ["number", "string"],
            "minimum": 0,
            "pattern": DURATION_PATTERN,
            "examples": ["30s", "10m", "1h30m", "1d"],
        },
        "step_id": {
            "type": "string",
            "description": "A step id: lower case letters, digits, _ and -.",
            "pattern": STEP_ID_PATTERN,
            "maxLength": MAX_STEP_ID_LENGTH,
        },
        "env": {
            "type": "object",
            "description": "Environment variables: NAME: value (values are passed as text).",
            "propertyNames": {"pattern": IDENTIFIER_PATTERN},
            "additionalProperties": scalar,
        },
        "outputs": {
            "type": "object",
            "description": "Named outputs; values are usually expressions.",
            "propertyNames": {"pattern": IDENTIFIER_PATTERN},
        },
        "retry": object_schema(
            "How often and how patiently to retry a failed attempt.",
            {
                "max_attempts": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 100,
                    "description": "Attempts in all, the first included (1 = no retry).",
                },
                "delay": {**_ref("duration"), "description": "Wait before the 2nd attempt."},
                "backoff": {
                    "enum": ["constant", "exponential"],
                    "description": "constant: always `delay`; exponential: doubled each time.",
                },
                "max_delay": {**_ref("duration"), "description": "The longest wait."},
                "jitter": {
                    "type": "boolean",
                    "description": "Draw each wait between half of it and all of it.",
                },
            },
        ),
        "runs_on": object_schema(
            "Where the step runs: a device by name, or any online device with all the labels.",
            {
                "device": _text("A device name (may be an expression, e.g. ${{ item.name }})."),
                "labels": {
                    "type": "array",
                    "description": "Labels the device must all have.",
                    "items": _text("A device label."),
                    "minItems": 1,
                },
            },
            minProperties=1,
        ),
        "input": object_schema(
            "A typed input: its JSON Schema, plus `required`.",
            {
                "type": {"enum": INPUT_TYPES, "description": "The type (default string)."},
                "description": _text("What the input is for; shown in the run form."),
                "default": {"description": "The value when none is given; makes it optional."},
                "required": {
                    "type": "boolean",
                    "description": "Must a run give it? (default: yes, unless it has a default)",
                },
                "format": _text("A format hint, e.g. date, date-time, email, uri."),
                "enum": {
                    "type": "array",
                    "minItems": 1,
                    "description": "The allowed values.",
                },
                "minimum": {"type": "number", "description": "The smallest allowed number."},
                "maximum": {"type": "number", "description": "The largest allowed number."},
                "exclusiveMinimum": {"type": "number", "description": "Numbers must be above."},
                "exclusiveMaximum": {"type": "number", "description": "Numbers must be below."},
                "minLength": {"type": "integer", "minimum": 0, "description": "Shortest text."},
                "maxLength": {"type": "integer", "minimum": 0, "description": "Longest text."},
                "pattern": _text("A regular expression text must match."),
                "items": {"type": "object", "description": "The JSON Schema of each item."},
                "minItems": {"type": "integer", "minimum": 0, "description": "Fewest items."},
                "maxItems": {"type": "integer", "minimum": 0, "description": "Most items."},
                "properties": {
                    "type": "object",
                    "description": "JSON Schemas of an object's properties.",
                },
                "examples": {"type": "array", "description": "Example values."},
            },
        ),
        "schedule": object_schema(
            "A cron schedule.",
            {
                "cron": _text(
                    "Five cron fields (minute hour day month weekday), or @daily, @hourly …",
                    examples=["0 3 * * *", "*/15 * * * *", "@daily"],
                ),
                "timezone": _text(
                    "The IANA time zone the cron is read in (default UTC).",
                    examples=["UTC", "Europe/London"],
                ),
                "inputs": {"type": "object", "description": "Inputs for scheduled runs."},
            },
            required=["cron"],
        ),
    }


def input_declaration_schema() -> dict[str, Any]:
    """The JSON Schema of one declared input (``inputs.<name>``)."""
    return _defs()["input"]


def _step(action_names: list[str]) -> dict[str, Any]:
    needs_item = {**_ref("step_id"), "description": "A step that must finish first."}
    return object_schema(
        "A step: one action, with its arguments, dependencies and policies.",
        {
            "uses": {
                "type": "string",
                "enum": action_names,
                "description": "The action the step runs: " + ", ".join(action_names) + ".",
            },
            "with": {
                "type": "object",
                "description": "The action's arguments; values may contain ${{ }} expressions.",
            },
            "needs": {
                "description": "Steps that must finish first (steps referenced in expressions "
                "are added automatically).",
                "anyOf": [
                    needs_item,
                    {"type": "array", "items": needs_item, "uniqueItems": True},
                ],
            },
            "if": {
                "description": "Run only when this is true; ${{ }} is optional. A failed or "
                "skipped dependency skips the step unless it calls always() or failure().",
                "type": ["string", "boolean"],
            },
            "for_each": {
                "description": "Run one instance per item of this list (`item`, `index`).",
                "anyOf": [{"type": "array"}, _ref("expression")],
            },
            "matrix": {
                "type": "object",
                "description": "Run one instance per combination of these lists (`matrix.<name>`).",
                "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                "additionalProperties": {
                    "description": "The values of one matrix dimension.",
                    "anyOf": [{"type": "array", "minItems": 1}, _ref("expression")],
                },
                "minProperties": 1,
            },
            "max_parallel": {
                "type": "integer",
                "minimum": 1,
                "description": "At most this many instances of a fanned-out step at once.",
            },
            "runs_on": {**_ref("runs_on"), "description": "Where the step runs."},
            "retry": {**_ref("retry"), "description": "How the step's attempts are retried."},
            "timeout": {**_ref("duration"), "description": "The longest one attempt may take."},
            "continue_on_error": {
                "type": "boolean",
                "description": "A failure does not fail the run; dependants see a success.",
            },
            "outputs": {
                **_ref("outputs"),
                "description": "The step's outputs, computed from `result` (the action's own "
                "outputs); without it the step's outputs are the action's.",
            },
            "env": {**_ref("env"), "description": "Environment variables for this step."},
            "name": _text("A display name."),
            "description": _text("What the step does."),
        },
        required=["uses"],
    )


def _pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _with_schema(name: str, schema: dict[str, Any]) -> dict[str, Any]:
    schema = copy.deepcopy(schema)
    if "$id" not in schema and ("$defs" in schema or '"$ref"' in json.dumps(schema)):
        # Its own `#/…` references must keep resolving inside the workflow schema.
        schema["$id"] = f"urn:flowyard:action:{name}"
    return schema


def _dispatch(registry: ActionRegistry) -> list[dict[str, Any]]:
    """One if/then per action: the `with` of a step using it must match the action's schema."""
    rules = []
    for action in registry:
        then: dict[str, Any] = {"properties": {"with": _ref(f"with.{_pointer(action.name)}")}}
        if action.schema.get("required") or action.schema.get("anyOf"):
            then["required"] = ["with"]
        rules.append(
            {
                "if": {"properties": {"uses": {"const": action.name}}, "required": ["uses"]},
                "then": then,
            }
        )
    return rules


def workflow_schema(registry: ActionRegistry | None = None) -> dict[str, Any]:
    """The JSON Schema of a workflow file using the actions of ``registry`` (default: all)."""
    registry = default_registry if registry is None else registry
    names = registry.names()
    defs = _defs()
    for action in registry:
        defs[f"with.{action.name}"] = _with_schema(action.name, action.schema)
    defs["step"] = _step(names) | {"allOf": _dispatch(registry)}
    steps_map = {
        "type": "object",
        "propertyNames": _ref("step_id"),
        "additionalProperties": _ref("step"),
    }
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "Flowyard workflow",
        **object_schema(
            "A Flowyard workflow: a graph of steps, its inputs, triggers and policies.",
            {
                "name": _text(
                    "The workflow's name: lower case letters, digits, - and _.",
                    pattern=NAME_PATTERN,
                    maxLength=MAX_NAME_LENGTH,
                ),
                "description": _text("What the workflow does."),
                "labels": {
                    "type": "object",
                    "description": "Free-form key: value labels, shown in the dashboard.",
                    "propertyNames": {"maxLength": 63},
                    "additionalProperties": {
                        "type": ["string", "number", "boolean"],
                        "description": "A label value.",
                    },
                },
                "inputs": {
                    "type": "object",
                    "description": "Typed inputs, checked before a run is created.",
                    "propertyNames": {"pattern": IDENTIFIER_PATTERN},
                    "additionalProperties": _ref("input"),
                },
                "env": {**_ref("env"), "description": "Environment variables of every step."},
                "on": object_schema(
                    "Triggers (manual runs are always allowed).",
                    {
                        "schedule": {
                            "type": "array",
                            "description": "Cron schedules.",
                            "items": _ref("schedule"),
                        },
                        "webhook": {
                            "description": "Start runs from a webhook URL; with a secret, "
                            "calls must be signed (HMAC).",
                            "anyOf": [
                                {"type": "boolean"},
                                object_schema(
                                    "A webhook whose calls are signed.",
                                    {
                                        "secret": _text(
                                            "The name of the secret that signs calls.",
                                            pattern=IDENTIFIER_PATTERN,
                                        )
                                    },
                                    required=["secret"],
                                ),
                            ],
                        },
                    },
                ),
                "concurrency": object_schema(
                    "How many runs of this workflow may be active at once.",
                    {
                        "limit": {
                            "type": "integer",
                            "minimum": 1,
                            "description": "At most this many active runs (default 1).",
                        },
                        "on_limit": {
                            "enum": ["queue", "cancel_running", "skip"],
                            "description": "What a new run does at the limit: wait (queue), "
                            "cancel the running ones, or not start (skip).",
                        },
                    },
                ),
                "timeout": {
                    **_ref("duration"),
                    "description": "The longest the whole run may take.",
                },
                "defaults": object_schema(
                    "Defaults for every step that does not set its own.",
                    {
                        "retry": {**_ref("retry"), "description": "How attempts are retried."},
                        "timeout": {**_ref("duration"), "description": "Per attempt."},
                        "runs_on": {**_ref("runs_on"), "description": "Where steps run."},
                    },
                ),
                "steps": {
                    **steps_map,
                    "description": "The steps: a mapping of step id to step. A graph, not a "
                    "list: steps without a dependency between them run in parallel.",
                    "minProperties": 1,
                },
                "finally": {
                    **steps_map,
                    "description": "Steps that run after the graph, whatever happened.",
                },
                "outputs": {**_ref("outputs"), "description": "The run's outputs."},
            },
            required=["name", "steps"],
        ),
        "$defs": defs,
    }


def builtin_registry() -> ActionRegistry:
    """A registry holding only the built-in actions (what the checked-in schema describes)."""
    builtins = ActionRegistry()
    builtins._plugins_loaded = True  # the checked-in schema must not depend on what is installed
    register_builtins(builtins)
    return builtins


def schema_json(registry: ActionRegistry | None = None) -> str:
    """The schema as the text of ``engine/schema/workflow.schema.json``."""
    return json.dumps(workflow_schema(registry), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(schema_json(builtin_registry()))
