"""The built-in actions, declared: name, the JSON Schema of their `with`, queue and time limit.

Declarations only: ``func`` is left empty here so the language core can validate workflows
without importing the runtime; ``engine.actions.attach`` gives each one its function.

Every value that is evaluated at run time may also be written as one whole expression
(``${{ … }}``): ``or_expression`` allows that next to the value's real type.
"""

from __future__ import annotations

from typing import Any

from engine.actions.registry import Action, ActionRegistry, registry
from engine.dsl.durations import DURATION_PATTERN

# [\s\S] rather than `.`: an expression may span lines (a YAML block scalar).
EXPRESSION_PATTERN = r"^\s*\$\{\{[\s\S]*\}\}\s*$"
FUNCTION_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$"

DEFAULT_QUEUE = "flowyard.default"
CONTROL_QUEUE = "flowyard.control"  # short bookkeeping actors: never blocked behind user code

EXPRESSION: dict[str, Any] = {
    "type": "string",
    "pattern": EXPRESSION_PATTERN,
    "description": "An expression, ${{ … }}, evaluated when the step runs.",
}


def or_expression(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, or a string that is one whole ``${{ … }}`` expression."""
    return {"description": schema["description"], "anyOf": [schema, EXPRESSION]}


def duration(description: str) -> dict[str, Any]:
    """A duration (``30s``, ``1h30m``, seconds as a number) or an expression."""
    return or_expression(
        {
            "title": "duration",
            "description": description,
            "type": ["number", "string"],
            "minimum": 0,
            "pattern": DURATION_PATTERN,
            "examples": ["30s", "10m", "1h30m", "1d", "500ms"],
        }
    )


def mapping(description: str, values: dict[str, Any] | None = None) -> dict[str, Any]:
    """A mapping (with values of the given schema) or an expression."""
    schema: dict[str, Any] = {"type": "object", "description": description}
    if values is not None:
        schema["additionalProperties"] = values
    return or_expression(schema)


def object_schema(
    description: str,
    properties: dict[str, Any],
    required: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A JSON Schema object that refuses unknown keys (typos are caught, with a suggestion)."""
    schema: dict[str, Any] = {
        "type": "object",
        "description": description,
        "properties": properties,
        "additionalProperties": False,
        **extra,
    }
    if required:
        schema["required"] = required
    return schema


_SCALAR_TEXT = {
    "type": ["string", "number", "boolean"],
    "description": "A value, passed as text.",
}
_HTTP_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
_STATUS_CODE = {"type": "integer", "minimum": 100, "maximum": 599, "description": "A status code."}

# name -> the JSON Schema of its `with`. Kept as one table so the runtime (or a test) can
# read the declarations without building Actions.
SCHEMAS: dict[str, dict[str, Any]] = {
    "noop": {
        "type": "object",
        "description": "Any values; they become the step's outputs once evaluated.",
    },
    "fail": object_schema(
        "Fails the step on purpose.",
        {"message": {"type": "string", "description": "The error the step fails with."}},
    ),
    "shell": object_schema(
        "Runs a script. Its outputs are `exit_code` plus the key=value lines (or one JSON "
        "object) it writes to the file named by $FLOWYARD_OUTPUT.",
        {
            "run": {"type": "string", "minLength": 1, "description": "The script to run."},
            "env": mapping("Environment variables for the script.", _SCALAR_TEXT),
            "cwd": {"type": "string", "description": "The folder to run in."},
            "shell": {
                "type": "string",
                "description": "bash (the default: -e -o pipefail), sh, python, or a command "
                "line that takes the script as its last argument.",
                "examples": ["bash", "sh", "python"],
            },
        },
        ["run"],
    ),
    "http": object_schema(
        "Makes one HTTP request. Outputs: status, headers, and json (or text).",
        {
            "method": or_expression(
                {
                    "enum": _HTTP_METHODS,
                    "default": "GET",
                    "description": "The HTTP method (default GET).",
                }
            ),
            "url": {"type": "string", "minLength": 1, "description": "The URL to call."},
            "headers": mapping("Request headers.", _SCALAR_TEXT),
            "params": mapping("Query string parameters."),
            "json": {"description": "A body sent as JSON (any value)."},
            "body": {"type": "string", "description": "A body sent as text."},
            "timeout": duration("How long to wait for the response (default 30s)."),
            "expected_status": or_expression(
                {
                    "description": "The status code(s) that mean success (default: any 2xx).",
                    "anyOf": [
                        _STATUS_CODE,
                        {"type": "array", "items": _STATUS_CODE, "minItems": 1},
                    ],
                }
            ),
            "follow_redirects": or_expression(
                {"type": "boolean", "default": True, "description": "Follow redirects."}
            ),
        },
        ["url"],
    )
    | {"not": {"required": ["json", "body"]}},
    "python": object_schema(
        "Calls a Python function registered with @flowyard_callable.",
        {
            "function": {
                "type": "string",
                "pattern": FUNCTION_NAME_PATTERN,
                "description": "The registered name of the function, e.g. reports.build.",
            },
            "args": or_expression({"type": "array", "description": "Positional arguments."}),
            "kwargs": mapping("Keyword arguments."),
        },
        ["function"],
    ),
    "sleep": object_schema(
        "Waits, without holding a worker.",
        {"duration": duration("How long to wait.")},
        ["duration"],
    ),
    "approval": object_schema(
        "Waits until someone approves or rejects the step in the dashboard or the API.",
        {
            "message": {"type": "string", "description": "The question shown to approvers."},
            "timeout": duration("Fail the step when nobody decides within this time."),
            "approvers": or_expression(
                {
                    "type": "array",
                    "items": {"type": "string", "description": "A user name."},
                    "description": "Who may decide (default: anyone allowed to run it).",
                }
            ),
        },
    ),
    "workflow": object_schema(
        "Starts a run of another workflow and waits for it; its outputs become the step's.",
        {
            "workflow": {
                "type": "string",
                "minLength": 1,
                "description": "The name of the workflow to run.",
            },
            "name": {
                "type": "string",
                "minLength": 1,
                "description": "Another spelling of `workflow`.",
            },
            "inputs": mapping("The child run's inputs."),
            "wait": or_expression(
                {
                    "type": "boolean",
                    "default": True,
                    "description": "Wait for the child run to end (default true).",
                }
            ),
        },
    )
    | {"anyOf": [{"required": ["workflow"]}, {"required": ["name"]}]},
}

DESCRIPTIONS = {
    "noop": "Does nothing; its outputs are its `with`.",
    "fail": "Fails the step with a message.",
    "shell": "Runs a shell script.",
    "http": "Makes an HTTP request.",
    "python": "Calls a registered Python function.",
    "sleep": "Waits for a duration without holding a worker.",
    "approval": "Waits for a person to approve or reject.",
    "workflow": "Runs another workflow as a child run.",
}

_MINUTE_MS = 60 * 1000
OPTIONS: dict[str, dict[str, Any]] = {
    "noop": {"queue": CONTROL_QUEUE, "time_limit_ms": _MINUTE_MS},
    "fail": {"queue": CONTROL_QUEUE, "time_limit_ms": _MINUTE_MS},
    "shell": {"queue": DEFAULT_QUEUE, "time_limit_ms": 60 * _MINUTE_MS, "runs_code": True},
    "http": {"queue": DEFAULT_QUEUE, "time_limit_ms": 5 * _MINUTE_MS},
    "python": {"queue": DEFAULT_QUEUE, "time_limit_ms": 60 * _MINUTE_MS, "runs_code": True},
    # Waits end in a delayed message or an API call: the actor itself only takes a moment.
    "sleep": {"queue": CONTROL_QUEUE, "time_limit_ms": _MINUTE_MS, "kind": "wait"},
    "approval": {"queue": CONTROL_QUEUE, "time_limit_ms": _MINUTE_MS, "kind": "wait"},
    "workflow": {"queue": CONTROL_QUEUE, "time_limit_ms": _MINUTE_MS, "kind": "wait"},
}


def builtin_actions() -> list[Action]:
    """The built-in actions, without their functions."""
    return [
        Action(name=name, schema=schema, description=DESCRIPTIONS[name], **OPTIONS[name])
        for name, schema in SCHEMAS.items()
    ]


def register_builtins(target: ActionRegistry) -> None:
    """Declare the built-ins in ``target`` (a test's own registry, say)."""
    for declared in builtin_actions():
        target.register(declared)


register_builtins(registry)
